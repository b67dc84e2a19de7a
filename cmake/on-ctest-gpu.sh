#!/bin/sh
# on-ctest-gpu.sh COMMAND [ARG]...: run a GPU test on the GPU that CTest allotted to it.
#
# Every gpu-labelled test carries RESOURCE_GROUPS "gpus:1" and is started through this script
# (pa_add_test, cmake/pacheck.cmake). Under `ctest --resource-spec-file F` CTest passes the
# allotment as CTEST_RESOURCE_GROUP_0_GPUS, e.g. "id:3,slots:1" ("id:1,slots:1;id:3,slots:1" when
# a group holds several GPUs). The script makes exactly those GPUs visible and execs COMMAND:
#
#   CUDA_VISIBLE_DEVICES  the ids (NVIDIA; HIP on AMD reads it too when HIP_VISIBLE_DEVICES is unset)
#   HIP_VISIBLE_DEVICES   the ids (AMD)
#
# An id is an index into the GPUs this process can already see: when CUDA_VISIBLE_DEVICES
# (HIP_VISIBLE_DEVICES) is set already -- by Slurm, a container, a user -- id N picks its N-th
# entry, so a job given GPUs 4-7 with gpus-4.json runs on 4-7, not on 0-3.
# ROCR_VISIBLE_DEVICES is left alone: ROCr filters first and HIP_VISIBLE_DEVICES then indexes what
# remains, so setting both to "3" would leave no GPU at all.
#
# Without CTEST_RESOURCE_GROUP_0_GPUS (no spec file, or the test run by hand) COMMAND runs
# unchanged. A malformed value, or an id outside an inherited list, exits 2 naming the variable.
me=on-ctest-gpu.sh
if [ $# -eq 0 ]; then
  echo "$me: usage: $me COMMAND [ARG]..." >&2
  exit 2
fi
[ -n "${CTEST_RESOURCE_GROUP_0_GPUS+set}" ] || exec "$@"

value=$CTEST_RESOURCE_GROUP_0_GPUS
malformed() {
  echo "$me: malformed CTEST_RESOURCE_GROUP_0_GPUS='$value'" \
       "(expected id:N,slots:M[;id:N,slots:M]... with N a GPU index and M >= 1)${1:+: $1}" >&2
  exit 2
}

# The ids, in order, without repeats: "3" or "1,3".
ids=
rest=$value
while :; do
  case $rest in
    *\;*) entry=${rest%%;*}; rest=${rest#*;}; more=1 ;;
    *) entry=$rest; more= ;;
  esac
  case $entry in id:*,slots:*) ;; *) malformed ;; esac
  body=${entry#id:}
  id=${body%%,*}
  slots=${body#*,slots:}
  [ "$body" = "$id,slots:$slots" ] || malformed
  case $id in '' | *[!0-9]*) malformed "id '$id' is not a GPU index" ;; esac
  case $slots in '' | *[!0-9]* | 0 | 0*) malformed "slots '$slots' is not a positive count" ;; esac
  case ,$ids, in *,$id,*) ;; *) ids=${ids:+$ids,}$id ;; esac
  [ -n "$more" ] || break
done

# pick NAME LIST: the entries of LIST (comma-separated, from the variable NAME) at the positions in
# $ids, or $ids itself when LIST is empty.
pick() {
  if [ -z "$2" ]; then
    printf '%s' "$ids"
    return 0
  fi
  out=
  old_ifs=$IFS
  IFS=,
  for want in $ids; do
    n=0
    found=
    for dev in $2; do
      if [ "$n" -eq "$want" ]; then found=$dev; break; fi
      n=$((n + 1))
    done
    if [ -z "$found" ]; then
      IFS=$old_ifs
      echo "$me: CTEST_RESOURCE_GROUP_0_GPUS='$value' names GPU $want, but $1='$2' lists only $n" >&2
      return 2
    fi
    out=${out:+$out,}$found
  done
  IFS=$old_ifs
  printf '%s' "$out"
}

set -f  # the inherited lists are split on commas below; never glob them
if [ -n "${HIP_VISIBLE_DEVICES:-}" ]; then
  hip=$(pick HIP_VISIBLE_DEVICES "$HIP_VISIBLE_DEVICES") || exit 2
else
  hip=$(pick CUDA_VISIBLE_DEVICES "${CUDA_VISIBLE_DEVICES:-}") || exit 2
fi
cuda=$(pick CUDA_VISIBLE_DEVICES "${CUDA_VISIBLE_DEVICES:-}") || exit 2
set +f
CUDA_VISIBLE_DEVICES=$cuda
HIP_VISIBLE_DEVICES=$hip
export CUDA_VISIBLE_DEVICES HIP_VISIBLE_DEVICES
# The allotment goes into the test's log (stderr), with the GPUs' bus ids where nvidia-smi can
# name them, so a log shows which physical GPU ran which test.
bus=
if command -v nvidia-smi > /dev/null 2>&1; then
  bus=$(nvidia-smi --query-gpu=index,pci.bus_id --format=csv,noheader -i "$cuda" 2> /dev/null | paste -sd ';' -)
fi
echo "$me: $value -> CUDA_VISIBLE_DEVICES=$cuda HIP_VISIBLE_DEVICES=$hip${bus:+ (GPU index, bus id: $bus)}" >&2
exec "$@"
