// reshape_and_cache: [T, Hkv, D] K/V rows plus a slot mapping (slot = page * B + token-in-page,
// slot < 0 skipped) into any page layout, honouring page strides larger than the dense page.
// Quantisation: none (code = encode(x)), per-tensor (code = sat(x / scale[0])) or per-token
// (scale = amax / format max of the (token, head) row, stored at the *physical* slot).
#include "kernels/common/dispatch.hpp"
#include "core/gpu_runtime.hpp"
#include "kernels/launch.hpp"

namespace pa::gpu {
namespace {

constexpr int kThreads = 128;

template <DType KV>
__device__ void write_one(const float* x, void* cache, float* scales, const PageLayout& L,
                          const ScaleLayout& sl, int64_t blk, int32_t h, int32_t tok, int32_t D,
                          float* red) {
  using S = typename codec::Codec<KV>::Storage;
  const int tid = threadIdx.x;
  float scale = 1.f;
  if (is_per_token(sl.mode)) {
    float amax = 0.f;
    for (int d = tid; d < D; d += kThreads) amax = fmaxf(amax, fabsf(x[d]));
    red[tid] = amax;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w >>= 1) {
      if (tid < w) red[tid] = fmaxf(red[tid], red[tid + w]);
      __syncthreads();
    }
    amax = red[0];
    scale = amax > 0.f ? amax / codec::max_finite(KV) : 1.f;
    if (tid == 0) scales[sl(blk, h, tok)] = scale;
    __syncthreads();  // red[] is reused by the V row
  } else if (sl.mode == ScaleMode::per_tensor) {
    scale = scales[0];
  }
  for (int d = tid; d < D; d += kThreads) static_cast<S*>(cache)[L(blk, h, tok, d)] = codec::Codec<KV>::encode(x[d] / scale);
}

template <DType KV>
__device__ void reshape_and_cache_body(const CacheWriteParams& p) {
  __shared__ float red[kThreads];
  const int64_t t = blockIdx.x;
  const int32_t h = blockIdx.y;
  const int64_t slot = p.slot_mapping[t];
  if (slot < 0) return;  // padding token: nothing written
  const int64_t blk = slot / p.block_size;
  const int32_t tok = int32_t(slot - blk * p.block_size);
  const int32_t dv = p.head_size_v > 0 ? p.head_size_v : p.head_size;
  write_one<KV>(p.key + (t * p.num_kv_heads + h) * p.head_size, p.k_cache, p.k_scales, p.k_layout, p.scale_layout, blk,
                h, tok, p.head_size, red);
  write_one<KV>(p.value + (t * p.num_kv_heads + h) * dv, p.v_cache, p.v_scales, p.v_layout, p.scale_layout, blk, h, tok,
                dv, red);
}

template <DType KV>
__global__ void reshape_and_cache_kernel(const CacheWriteParams p) {
  reshape_and_cache_body<KV>(p);
}

}  // namespace

LaunchStatus launch_reshape_and_cache(const CacheWriteParams& p) {
  if (p.num_tokens == 0) return {};
  if (p.scale_layout.mode == ScaleMode::per_head)
    return {"launch_reshape_and_cache: per_head scales are not written by this writer"};
  const dim3 grid(unsigned(p.num_tokens), unsigned(p.num_kv_heads));
  std::string err = "launch_reshape_and_cache: unsupported kv dtype";
#if defined(PA_KERNELS_MINIMAL)
  if (p.kv_dtype != DType::bf16) return {err};
  hipLaunchKernelGGL((reshape_and_cache_kernel<DType::bf16>), grid, dim3(kThreads), 0, 0, p);
#else
  PA_DISPATCH_KV_DTYPE(p.kv_dtype, KV, return {err},
    hipLaunchKernelGGL((reshape_and_cache_kernel<KV>), grid, dim3(kThreads), 0, 0, p);)
#endif
  const hipError_t e = hipGetLastError();
  if (e != hipSuccess) return {std::string("reshape_and_cache_kernel: ") + hipGetErrorString(e)};
  return {};
}

}  // namespace pa::gpu
