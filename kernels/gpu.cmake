# GPU sources of pacheck_kernels, for the backend chosen by the top-level PACHECK_GPU block.
# They live in their own library so the CXX-only flags of pa_add_library (-ffp-contract=off,
# -Wall) are not handed to nvcc; nvcc gets its equivalents (--fmad=false: no FMA contraction,
# like the host code).
set(_pa_gpu_sources attention.hip cache_writer.hip gpu_backend.hip)
add_library(pacheck_kernels_gpu STATIC ${_pa_gpu_sources})
target_include_directories(pacheck_kernels_gpu PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(pacheck_kernels_gpu PUBLIC pacheck::core)
if(PACHECK_GPU_BACKEND STREQUAL "cuda")
  set_source_files_properties(${_pa_gpu_sources} PROPERTIES LANGUAGE CUDA)
  target_compile_options(pacheck_kernels_gpu PRIVATE --fmad=false -Xcompiler=-Wall,-Wextra)
  target_link_libraries(pacheck_kernels_gpu PUBLIC CUDA::cudart_static)
elseif(PACHECK_GPU_BACKEND STREQUAL "rocm")
  set_source_files_properties(${_pa_gpu_sources} PROPERTIES LANGUAGE HIP)
  target_compile_options(pacheck_kernels_gpu PRIVATE -ffp-contract=off -Wall -Wextra)
elseif(PACHECK_GPU_BACKEND STREQUAL "rocm-cxx")
  set(_pa_arch_flags "")
  foreach(a IN LISTS PACHECK_HIPCC_OFFLOAD_ARCHS)
    list(APPEND _pa_arch_flags --offload-arch=${a})
  endforeach()
  set_source_files_properties(${_pa_gpu_sources} PROPERTIES LANGUAGE CXX)
  target_compile_options(pacheck_kernels_gpu PRIVATE -x hip ${_pa_arch_flags} -ffp-contract=off -Wall -Wextra)
  target_link_options(pacheck_kernels_gpu PUBLIC ${_pa_arch_flags})
endif()
target_link_libraries(pacheck_kernels PUBLIC pacheck_kernels_gpu)

