#pragma once
// The one portability header (ggml's habit, reversed): kernels, launchers and the harness's own
// device code (inputs/inputs_device.hip, reference/attention_device.hip) are written in our HIP
// vocabulary, which maps onto HIP under hipcc and onto the CUDA runtime under nvcc. Nothing else
// spells a vendor API. Under nvcc no HIP header is included at all (Debian's
// HIP headers do not compile under CUDA 13).
//
// Warp size is never assumed to be 32: device code uses kWarpSize (compile-time, 64 on CDNA,
// 32 on NVIDIA and RDNA) and host code asks gpu_warp_size() (run time, from the device).
#include <cstdio>
#include <stdexcept>
#include <string>

#include "core/host_device.hpp"

#if defined(__CUDACC__)
#include <cuda_runtime.h>

using hipError_t = cudaError_t;
using hipStream_t = cudaStream_t;
using hipEvent_t = cudaEvent_t;
using hipDeviceProp_t = cudaDeviceProp;
#define hipSuccess cudaSuccess
#define hipGetErrorString cudaGetErrorString
#define hipGetLastError cudaGetLastError
#define hipGetDeviceCount cudaGetDeviceCount
#define hipGetDevice cudaGetDevice
#define hipSetDevice cudaSetDevice
#define hipGetDeviceProperties cudaGetDeviceProperties
#define hipRuntimeGetVersion cudaRuntimeGetVersion
#define hipDriverGetVersion cudaDriverGetVersion
#define hipDeviceSynchronize cudaDeviceSynchronize
#define hipStreamSynchronize cudaStreamSynchronize
#define hipStreamPerThread cudaStreamPerThread
#define hipMemGetInfo cudaMemGetInfo
#define hipMalloc cudaMalloc
#define hipFree cudaFree
#define hipHostMalloc cudaHostAlloc
#define hipHostMallocDefault cudaHostAllocDefault
#define hipHostFree cudaFreeHost
#define hipMemcpy cudaMemcpy
#define hipMemcpyAsync cudaMemcpyAsync
#define hipMemset cudaMemset
#define hipMemsetAsync cudaMemsetAsync
#define hipMemcpyHostToDevice cudaMemcpyHostToDevice
#define hipMemcpyDeviceToHost cudaMemcpyDeviceToHost
#define hipMemcpyDeviceToDevice cudaMemcpyDeviceToDevice
#define hipEventCreate cudaEventCreate
#define hipIpcMemHandle_t cudaIpcMemHandle_t
#define hipIpcGetMemHandle cudaIpcGetMemHandle
#define hipEventDestroy cudaEventDestroy
#define hipEventRecord cudaEventRecord
#define hipEventSynchronize cudaEventSynchronize
#define hipEventElapsedTime cudaEventElapsedTime
#define hipLaunchKernelGGL(kernel, grid, block, shmem, stream, ...) \
  kernel<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#define PA_GPU_VENDOR "cuda"
#define PA_MEMCPY memcpy
// Streams and graphs (the graph replay of a launch).
#define hipStreamCreateWithFlags cudaStreamCreateWithFlags
#define hipStreamNonBlocking cudaStreamNonBlocking
#define hipStreamDestroy cudaStreamDestroy
#define hipStreamBeginCapture cudaStreamBeginCapture
#define hipStreamEndCapture cudaStreamEndCapture
#define hipStreamCaptureModeThreadLocal cudaStreamCaptureModeThreadLocal
#define hipGraph_t cudaGraph_t
#define hipGraphExec_t cudaGraphExec_t
#define hipGraphInstantiateWithFlags cudaGraphInstantiateWithFlags
#define hipGraphLaunch cudaGraphLaunch
#define hipGraphDestroy cudaGraphDestroy
#define hipGraphExecDestroy cudaGraphExecDestroy
#define hipMemcpy2DAsync cudaMemcpy2DAsync
#define hipMemcpyDefault cudaMemcpyDefault

namespace pa::gpu {
inline constexpr int kWarpSize = 32;
// HIP's __shfl_xor(v, lane_mask, width) over the full warp.
template <class T>
__device__ inline T shfl_xor(T v, int lane_mask, int width = kWarpSize) {
  return __shfl_xor_sync(0xffffffffu, v, lane_mask, width);
}
}  // namespace pa::gpu

#elif defined(__HIPCC__)
#include <hip/hip_runtime.h>
#define PA_GPU_VENDOR "hip"
#define PA_MEMCPY __builtin_memcpy  // ROCm 5.x has no __device__ memcpy

namespace pa::gpu {
#if defined(__GFX9__) || defined(__gfx90a__) || defined(__gfx940__) || defined(__gfx941__) || \
    defined(__gfx942__) || defined(__gfx950__)
inline constexpr int kWarpSize = 64;  // CDNA wavefronts
#elif defined(__HIP_DEVICE_COMPILE__)
inline constexpr int kWarpSize = 32;  // RDNA (wave32)
#else
inline constexpr int kWarpSize = 64;  // host pass: only used for sizing, launchers ask the device
#endif
template <class T>
__device__ inline T shfl_xor(T v, int lane_mask, int width = kWarpSize) {
  return __shfl_xor(v, lane_mask, width);
}
}  // namespace pa::gpu
#else
#error "core/gpu_runtime.hpp is for GPU compilers (nvcc or hipcc) only"
#endif

namespace pa::gpu {

/// Sum over the lanes of one warp (butterfly: every lane ends with the total).
template <class T>
__device__ inline T warp_sum(T v) {
  for (int o = kWarpSize / 2; o > 0; o >>= 1) v += shfl_xor(v, o);
  return v;
}
template <class T>
__device__ inline T warp_max(T v) {
  for (int o = kWarpSize / 2; o > 0; o >>= 1) {
    const T w = shfl_xor(v, o);
    v = v > w ? v : w;
  }
  return v;
}

}  // namespace pa::gpu

namespace pa::gpu {

/// A failed runtime call, named: thrown by PA_GPU_CHECK, caught at each entry point of the harness's
/// device code and turned into that entry's error.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
inline void check(hipError_t e, const char* call) {
  if (e != hipSuccess) throw Error(std::string(call) + " failed: " + hipGetErrorString(e));
}
/// Release calls in destructors and after a result is read cannot throw; a failure is still
/// reported, on stderr, naming the call.
inline void release(hipError_t e, const char* call) {
  if (e != hipSuccess) std::fprintf(stderr, "pacheck: %s failed: %s\n", call, hipGetErrorString(e));
}

}  // namespace pa::gpu

#define PA_GPU_CHECK(call) ::pa::gpu::check((call), #call)
#define PA_GPU_RELEASE(call) ::pa::gpu::release((call), #call)
