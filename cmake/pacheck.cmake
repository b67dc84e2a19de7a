# Helpers shared by every folder. One line adds a library or a test.

# Numerics must not depend on the compiler's mood: no FMA contraction, no fast-math, so that the
# reference and the golden data are byte-stable across g++, clang and nvcc host code.
set(PA_STRICT_FP_FLAGS -ffp-contract=off -fno-fast-math)

# pa_add_library(name [STATIC|INTERFACE] SOURCES ... LIBS ...) -> target pacheck_<name>, alias pacheck::<name>
function(pa_add_library name)
  cmake_parse_arguments(A "INTERFACE" "" "SOURCES;LIBS" ${ARGN})
  set(t pacheck_${name})
  if(A_INTERFACE)
    add_library(${t} INTERFACE)
    target_include_directories(${t} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${t} INTERFACE ${A_LIBS})
  else()
    add_library(${t} STATIC ${A_SOURCES})
    target_include_directories(${t} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${t} PUBLIC ${A_LIBS})
    target_compile_options(${t} PRIVATE ${PA_STRICT_FP_FLAGS} -Wall -Wextra)
  endif()
  add_library(pacheck::${name} ALIAS ${t})
endfunction()

# pa_add_gpu_sources(name SOURCES a.hip ... FALLBACK none.cpp ... [LIBS ...])
# The GPU sources of pacheck_<name> (made by pa_add_library first). With a GPU backend
# (PACHECK_GPU_BACKEND, chosen by the top-level PACHECK_GPU block) they build as their own library
# pacheck_<name>_gpu, linked into pacheck_<name>, so the CXX-only flags of pa_add_library are not
# handed to the device compiler: nvcc gets its equivalent --fmad=false (no FMA contraction, like
# the host code), HIP gets -ffp-contract=off. Stream 0 is each host thread's own stream (per-thread
# default stream), so the cases `run -j` runs at once do not wait on each other's launches and
# copies. Without a backend the FALLBACK sources (each says why there is no GPU) join
# pacheck_<name> instead.
function(pa_add_gpu_sources name)
  cmake_parse_arguments(A "" "" "SOURCES;FALLBACK;LIBS" ${ARGN})
  set(t pacheck_${name})
  if(NOT PACHECK_GPU_BACKEND OR PACHECK_GPU_BACKEND STREQUAL "none")
    target_sources(${t} PRIVATE ${A_FALLBACK})
    return()
  endif()
  add_library(${t}_gpu STATIC ${A_SOURCES})
  target_include_directories(${t}_gpu PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${t}_gpu PUBLIC nlohmann_json::nlohmann_json ${A_LIBS})
  if(PACHECK_GPU_BACKEND STREQUAL "cuda")
    set_source_files_properties(${A_SOURCES} PROPERTIES LANGUAGE CUDA)
    target_compile_options(${t}_gpu PRIVATE --fmad=false --default-stream=per-thread -Xcompiler=-Wall,-Wextra)
    target_link_libraries(${t}_gpu PUBLIC CUDA::cudart_static)
  elseif(PACHECK_GPU_BACKEND STREQUAL "rocm")
    set_source_files_properties(${A_SOURCES} PROPERTIES LANGUAGE HIP)
    target_compile_options(${t}_gpu PRIVATE -ffp-contract=off -fgpu-default-stream=per-thread -Wall -Wextra)
  elseif(PACHECK_GPU_BACKEND STREQUAL "rocm-cxx")
    set(_pa_arch_flags "")
    foreach(a IN LISTS PACHECK_HIPCC_OFFLOAD_ARCHS)
      list(APPEND _pa_arch_flags --offload-arch=${a})
    endforeach()
    set_source_files_properties(${A_SOURCES} PROPERTIES LANGUAGE CXX)
    target_compile_options(${t}_gpu PRIVATE -x hip ${_pa_arch_flags} -ffp-contract=off -fgpu-default-stream=per-thread -Wall -Wextra)
    target_link_options(${t}_gpu PUBLIC ${_pa_arch_flags})
  endif()
  target_link_libraries(${t} PUBLIC ${t}_gpu)
endfunction()

# pa_add_test(name SOURCES ... [LIBS ...] [LABELS ...] [PREFIX p.])
# Each GoogleTest / RapidCheck test becomes one CTest test carrying LABELS
# (unit, property, gpu, slow, regression, fixtures). One label per executable: gtest discovery
# flattens a list. PREFIX keeps names unique when two executables share a source (CTest keeps
# only the last test of a name, silently).
# A gpu test asks CTest for one GPU (RESOURCE_GROUPS gpus:1) and runs through cmake/on-ctest-gpu.sh,
# which, under `ctest --resource-spec-file`, shows it only the GPU CTest allotted (docs/scaling.md).
# CMake 3.25 has no TEST_LAUNCHER, so the launcher is the target's CROSSCOMPILING_EMULATOR: gtest
# discovery runs the executable through it and prefixes every discovered test's command with it.
function(pa_add_test name)
  if(NOT PACHECK_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "TIMEOUT;PREFIX" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LIBS} GTest::gtest GTest::gtest_main rapidcheck_gtest)
  target_compile_options(${name} PRIVATE ${PA_STRICT_FP_FLAGS} -Wall -Wextra)
  set(_pa_props LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT})
  if("gpu" IN_LIST A_LABELS)
    set_property(TARGET ${name} PROPERTY CROSSCOMPILING_EMULATOR /bin/sh ${PROJECT_SOURCE_DIR}/cmake/on-ctest-gpu.sh)
    list(APPEND _pa_props RESOURCE_GROUPS gpus:1)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    TEST_PREFIX "${A_PREFIX}"
    PROPERTIES ${_pa_props}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endfunction()
