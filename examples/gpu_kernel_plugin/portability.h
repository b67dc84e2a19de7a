// The few GPU names this plug-in uses, written in HIP and mapped onto the CUDA runtime under nvcc.
// It is the plug-in's own copy of the idea, not pacheck's header: a plug-in sees only
// <pacheck/kernel_abi.h>. pacheck has already allocated every buffer on the device and hands over
// the stream, so a decode kernel needs only launch syntax, the stream type and the error query.
//
// Nothing here (or in the kernel) assumes a warp of 32 lanes: CDNA wavefronts have 64. The kernel
// synchronises whole blocks with __syncthreads() and shares data through shared memory only.
#pragma once

#if defined(__CUDACC__)
// Under nvcc no HIP header is included at all (a HIP install need not be CUDA-compatible).
#include <cuda_runtime.h>
typedef cudaError_t hipError_t;
typedef cudaStream_t hipStream_t;
#define hipSuccess cudaSuccess
#define hipGetLastError cudaGetLastError
#define hipGetErrorString cudaGetErrorString
#define hipGetDevice cudaGetDevice
#define hipMalloc cudaMalloc
#define hipFree cudaFree
#define hipMemcpyAsync cudaMemcpyAsync
#define hipMemcpyHostToDevice cudaMemcpyHostToDevice
#define GPU_DECODE_VENDOR "cuda"
#elif defined(__HIPCC__) || defined(__HIP__)
#include <hip/hip_runtime.h>
#define GPU_DECODE_VENDOR "hip"
#else
#error "gpu_decode_plugin.hip is GPU code: compile it with nvcc (-x cu) or hipcc (-x hip)"
#endif

#define PA_GLOBAL __global__
#define PA_DEVICE __device__
// One spelling of a launch for both vendors (hipcc accepts the triple-chevron syntax too).
#define PA_LAUNCH(kernel, grid, block, shmem, stream, ...) \
  kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
