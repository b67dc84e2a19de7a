#!/bin/sh
# Tests of cmake/on-ctest-gpu.sh, the launcher of every gpu-labelled CTest test. No GPU needed:
# the command under the launcher only looks at its environment.
#
#   sh on_ctest_gpu_test.sh LAUNCHER assigned|unset|malformed
#   sh on_ctest_gpu_test.sh LAUNCHER resource_specs CMAKE CTEST SPEC_DIR
#
# resource_specs configures a throwaway CTest project of GPU-like tests (RESOURCE_GROUPS gpus:1,
# started through the launcher) and runs it under each spec file of SPEC_DIR: CTest must accept
# the file, and the GPUs the tests saw must be the ones it describes.
set -u
L=${1:?usage: on_ctest_gpu_test.sh LAUNCHER CASE [ARGS]}
CASE=${2:?usage: on_ctest_gpu_test.sh LAUNCHER CASE [ARGS]}
failed=0
fail() { echo "FAIL: $*"; failed=1; }
# The runner's own environment must not leak into the expectations.
unset CTEST_RESOURCE_GROUP_0_GPUS CTEST_RESOURCE_GROUP_COUNT CUDA_VISIBLE_DEVICES HIP_VISIBLE_DEVICES

# expect WANT_CUDA WANT_HIP [VAR=VALUE]...: the launcher, in that environment, shows the command
# these two values ("unset" for an unset variable).
expect() {
  want_cuda=$1 want_hip=$2
  shift 2
  got=$(env "$@" sh "$L" sh -c 'printf "%s %s" "${CUDA_VISIBLE_DEVICES-unset}" "${HIP_VISIBLE_DEVICES-unset}"')
  rc=$?
  [ $rc -eq 0 ] || fail "$* -> exit $rc"
  [ "$got" = "$want_cuda $want_hip" ] || fail "$* -> '$got', expected '$want_cuda $want_hip'"
}

case $CASE in
assigned)
  # The brief's check, verbatim: the allotted GPU and nothing else.
  CTEST_RESOURCE_GROUP_0_GPUS=id:3,slots:1 sh "$L" \
    sh -c 'test "$CUDA_VISIBLE_DEVICES" = 3 && test "$HIP_VISIBLE_DEVICES" = 3' ||
    fail "id:3,slots:1 does not make GPU 3 the only visible one"
  expect 0 0 CTEST_RESOURCE_GROUP_0_GPUS=id:0,slots:2
  expect 1,3 1,3 "CTEST_RESOURCE_GROUP_0_GPUS=id:1,slots:1;id:3,slots:1"
  expect 2 2 "CTEST_RESOURCE_GROUP_0_GPUS=id:2,slots:1;id:2,slots:1"
  # An id indexes the GPUs the job already sees (Slurm, a container): GPU 3 of 4,5,6,7 is 7.
  expect 7 7 CTEST_RESOURCE_GROUP_0_GPUS=id:3,slots:1 CUDA_VISIBLE_DEVICES=4,5,6,7
  expect 5 GPU-b CTEST_RESOURCE_GROUP_0_GPUS=id:1,slots:1 CUDA_VISIBLE_DEVICES=4,5 HIP_VISIBLE_DEVICES=GPU-a,GPU-b
  # Arguments and the exit status pass through the exec untouched.
  CTEST_RESOURCE_GROUP_0_GPUS=id:3,slots:1 sh "$L" sh -c 'test "$1" = "a b" && test "$2" = "*" && exit 7' - "a b" "*"
  rc=$?
  [ $rc -eq 7 ] || fail "arguments or exit status lost: exit $rc, expected 7"
  ;;
unset)
  # Without an allotment (no spec file, or run by hand) the command runs exactly as given.
  expect unset unset
  expect 5 unset CUDA_VISIBLE_DEVICES=5
  expect 4,5 GPU-a CUDA_VISIBLE_DEVICES=4,5 HIP_VISIBLE_DEVICES=GPU-a
  sh "$L" sh -c 'test "$1" = "a b" && test "$2" = "*" && exit 7' - "a b" "*"
  rc=$?
  [ $rc -eq 7 ] || fail "arguments or exit status lost: exit $rc, expected 7"
  ;;
malformed)
  # Exit 2 with a message naming the variable and its value; the command never runs.
  marker=${TMPDIR:-/tmp}/on_ctest_gpu_test.$$
  rm -f "$marker"
  for v in "" "3" "id:3" "id:,slots:1" "id:x,slots:1" "id:3,slots:" "id:3,slots:0" "id:3,slots:x" \
           "slots:1,id:3" "id:3,slots:1;" ";id:3,slots:1" "id:3,x,slots:1" "id:-1,slots:1" "gpu:3"; do
    err=$(env CTEST_RESOURCE_GROUP_0_GPUS="$v" sh "$L" touch "$marker" 2>&1)
    rc=$?
    [ $rc -eq 2 ] || fail "'$v' -> exit $rc, expected 2"
    case $err in
      *"CTEST_RESOURCE_GROUP_0_GPUS='$v'"*) ;;
      *) fail "'$v' -> message does not name the variable and its value: $err" ;;
    esac
    [ ! -e "$marker" ] || { fail "'$v' -> the command ran"; rm -f "$marker"; }
  done
  # An id beyond the GPUs the job sees is an error too, not a silently wrong GPU.
  err=$(env CTEST_RESOURCE_GROUP_0_GPUS=id:2,slots:1 CUDA_VISIBLE_DEVICES=4,5 sh "$L" touch "$marker" 2>&1)
  rc=$?
  [ $rc -eq 2 ] || fail "id 2 of CUDA_VISIBLE_DEVICES=4,5 -> exit $rc, expected 2"
  case $err in *CTEST_RESOURCE_GROUP_0_GPUS*CUDA_VISIBLE_DEVICES=\'4,5\'*) ;; *) fail "out of range -> $err" ;; esac
  [ ! -e "$marker" ] || { fail "out of range -> the command ran"; rm -f "$marker"; }
  # No command at all is a usage error.
  sh "$L" 2>/dev/null
  rc=$?
  [ $rc -eq 2 ] || fail "no command -> exit $rc, expected 2"
  ;;
resource_specs)
  CMAKE=${3:?CMAKE} CTEST=${4:?CTEST} SPECS=${5:?SPEC_DIR}
  work=$(mktemp -d) || exit 1
  trap 'rm -rf "$work"' EXIT
  # Each test records the GPUs it sees, then waits until WANT tests have recorded theirs: the
  # tests CTest lets share the node must really run at the same time (or the wait times out).
  cat > "$work/record.sh" <<'EOF'
printf '%s %s\n' "${CUDA_VISIBLE_DEVICES-unset}" "${HIP_VISIBLE_DEVICES-unset}" > "$1/$2"
i=0
while [ "$(ls "$1" | wc -l)" -lt "$3" ]; do
  i=$((i + 1))
  [ $i -le 300 ] || { echo "only $(ls "$1" | wc -l) of $3 tests ran at once"; exit 1; }
  sleep 0.1
done
EOF
  mkdir -p "$work/src"
  cat > "$work/src/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.25)
project(pa_resource_spec_check NONE)
enable_testing()
foreach(i RANGE 1 ${N})
  add_test(NAME t${i} COMMAND /bin/sh ${LAUNCHER} /bin/sh ${RECORD} ${OUT} t${i} ${WANT})
  set_tests_properties(t${i} PROPERTIES RESOURCE_GROUPS gpus:1 TIMEOUT 60)
endforeach()
EOF
  # run SPEC TESTS WANT EXPECTED_IDS: TESTS tests under `ctest -j TESTS`; every test must see one
  # GPU of EXPECTED_IDS (CUDA and HIP alike), and together they must have used all of them.
  run() {
    spec=$SPECS/$1 n=$2 want=$3 ids=$4
    b=$work/build-$1 out=$work/out-$1
    rm -rf "$b" "$out" && mkdir -p "$out"
    "$CMAKE" -S "$work/src" -B "$b" -DN="$n" -DWANT="$want" -DLAUNCHER="$L" -DRECORD="$work/record.sh" \
      -DOUT="$out" > "$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "$1: configure"; return; }
    "$CTEST" --test-dir "$b" -j "$n" --resource-spec-file "$spec" --output-on-failure > "$work/ctest.log" 2>&1 ||
      { cat "$work/ctest.log"; fail "$1: ctest -j $n --resource-spec-file failed"; return; }
    seen=
    for f in "$out"/*; do
      read -r cuda hip < "$f"
      [ "$cuda" = "$hip" ] || fail "$1: $(basename "$f") saw CUDA '$cuda' but HIP '$hip'"
      case " $ids " in *" $cuda "*) ;; *) fail "$1: $(basename "$f") saw GPU '$cuda', not one of: $ids" ;; esac
      case " $seen " in *" $cuda "*) ;; *) seen="$seen $cuda" ;; esac
    done
    for id in $ids; do
      case " $seen " in *" $id "*) ;; *) fail "$1: no test ran on GPU $id (seen:$seen)" ;; esac
    done
    echo "$1: $n tests on GPUs$seen"
  }
  run gpus-8.json 8 8 "0 1 2 3 4 5 6 7"       # 8 at once, one per GPU
  run gpus-4.json 8 4 "0 1 2 3"               # 4 at a time
  run gpus-2.json 4 2 "0 1"                   # 2 at a time
  run one-gpu-2-slots.json 2 2 "0"            # two tests share GPU 0
  ;;
*)
  echo "unknown case '$CASE'" >&2
  exit 2
  ;;
esac
[ $failed -eq 0 ] && echo "PASS: $CASE"
exit $failed
