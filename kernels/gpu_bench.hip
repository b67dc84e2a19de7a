// Decode-attention timing on the present GPU (not a test: timing never goes in tests). For a
// head config and context, times each path's kernel(s) with GPU events and reports the effective
// bandwidth (bytes of KV read / time) next to a device-to-device copy measured in the same run.
// Inputs are filled on the device (hash of the index), so 256 x 8192-token sequences need no
// host-side generation; correctness is the gpu suite's job, not this program's.
//
//   pacheck_kernels_bench [num_seqs...]      (default: 8 256; Llama-3.3-70B TP1 64/8/128, ctx 8192)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

#include "core/prng.hpp"
#include "dispatch/capability.hpp"
#include "kernels/gpu_runtime.hpp"
#include "kernels/launch.hpp"

namespace pa {
namespace {

__global__ void fill_bf16(uint16_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = codec::float_to_bf16((float(h & 0xFFFF) / 32768.f - 1.f));
  }
}

void* dalloc(size_t bytes) {
  void* p = nullptr;
  if (hipMalloc(&p, bytes) != hipSuccess) {
    std::fprintf(stderr, "hipMalloc(%zu) failed\n", bytes);
    std::exit(1);
  }
  return p;
}

template <class F>
float time_ms(F&& f, int iters) {
  hipEvent_t a, b;
  (void)hipEventCreate(&a);
  (void)hipEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  (void)hipEventRecord(a, 0);
  for (int i = 0; i < iters; ++i) f();
  (void)hipEventRecord(b, 0);
  (void)hipEventSynchronize(b);
  float ms = 0;
  (void)hipEventElapsedTime(&ms, a, b);
  (void)hipEventDestroy(a);
  (void)hipEventDestroy(b);
  return ms / float(iters);
}

void bench(int32_t S, int32_t Hq, int32_t Hkv, int32_t D, int32_t ctx, int32_t B, double copy_gbs) {
  const int64_t blocks_per_seq = (ctx + B - 1) / B, nb = int64_t(S) * blocks_per_seq;
  const double kv_bytes = 2.0 * double(S) * ctx * Hkv * D * 2;  // K and V, bf16
  std::vector<int32_t> table(static_cast<size_t>(nb)), ctxs(static_cast<size_t>(S), ctx);
  std::iota(table.begin(), table.end(), 0);
  Rng rng(7, Stream::kPlacement);
  shuffle(table, rng);
  auto* d_table = static_cast<int32_t*>(dalloc(table.size() * 4));
  auto* d_ctx = static_cast<int32_t*>(dalloc(ctxs.size() * 4));
  (void)hipMemcpy(d_table, table.data(), table.size() * 4, hipMemcpyHostToDevice);
  (void)hipMemcpy(d_ctx, ctxs.data(), ctxs.size() * 4, hipMemcpyHostToDevice);
  const int64_t q_elems = int64_t(S) * Hq * D;
  auto* d_q = static_cast<uint16_t*>(dalloc(size_t(q_elems) * 2));
  auto* d_out = static_cast<uint16_t*>(dalloc(size_t(q_elems) * 2));
  auto* d_lse = static_cast<float*>(dalloc(size_t(S) * Hq * 4));
  float one = 1.f;
  auto* d_scale = static_cast<float*>(dalloc(4));
  (void)hipMemcpy(d_scale, &one, 4, hipMemcpyHostToDevice);
  hipLaunchKernelGGL(fill_bf16, dim3(1024), dim3(256), 0, 0, d_q, q_elems, 1u);
  std::printf("S=%d Hq=%d Hkv=%d D=%d ctx=%d B=%d: KV bytes %.3f GB\n", S, Hq, Hkv, D, ctx, B, kv_bytes / 1e9);
  for (PathId path : kAllPaths) {
    const KvLayout kind = path == PathId::v1 ? KvLayout::nhd : KvLayout::shuffled;
    gpu::AttentionParams p;
    p.k_layout = make_page_layout(kind, KvTensor::key, Hkv, B, D, 2);
    p.v_layout = make_page_layout(kind, KvTensor::value, Hkv, B, D, 2);
    const int64_t elems = p.k_layout.cosize(nb);
    auto* d_k = static_cast<uint16_t*>(dalloc(size_t(elems) * 2));
    auto* d_v = static_cast<uint16_t*>(dalloc(size_t(elems) * 2));
    hipLaunchKernelGGL(fill_bf16, dim3(4096), dim3(256), 0, 0, d_k, elems, 2u);
    hipLaunchKernelGGL(fill_bf16, dim3(4096), dim3(256), 0, 0, d_v, elems, 3u);
    p.q = d_q;
    p.k_cache = d_k;
    p.v_cache = d_v;
    p.k_scales = p.v_scales = d_scale;
    p.block_tables = d_table;
    p.context_lens = d_ctx;
    p.scale_layout.mode = ScaleMode::none;
    p.lt = make_logit_transform(1.0 / 11.3137, 0, 0, nullptr);
    p.num_seqs = S;
    p.num_q_heads = Hq;
    p.num_kv_heads = Hkv;
    p.head_size = D;
    p.block_size = B;
    p.max_blocks = int32_t(blocks_per_seq);
    p.max_context = ctx;
    p.gqa = Hq / Hkv;
    p.gqa_tile = path == PathId::asm_ ? padded_gqa(capability(path), p.gqa) : p.gqa;
    p.round_p = path != PathId::v1;
    p.out = d_out;
    p.lse = d_lse;
    float* ws[3] = {nullptr, nullptr, nullptr};
    if (path == PathId::hip) {
      p.partition = 256;
      p.num_partitions = (ctx + 255) / 256;
      const int64_t n = int64_t(S) * Hq * p.num_partitions;
      p.max_logits = ws[0] = static_cast<float*>(dalloc(size_t(n) * 4));
      p.exp_sums = ws[1] = static_cast<float*>(dalloc(size_t(n) * 4));
      p.tmp_out = ws[2] = static_cast<float*>(dalloc(size_t(n) * D * 4));
    }
    std::string err;
    const float ms = time_ms([&] { err = gpu::launch_attention(p).error; }, 20);
    const hipError_t e = hipDeviceSynchronize();
    if (!err.empty() || e != hipSuccess)
      std::printf("  %-4s error: %s %s\n", to_string(path), err.c_str(), hipGetErrorString(e));
    else
      std::printf("  %-4s %9.4f ms  %7.1f GB/s  (%.0f%% of the D2D copy's read+write rate)\n", to_string(path), ms,
                  kv_bytes / ms / 1e6, 100.0 * kv_bytes / ms / 1e6 / copy_gbs);
    for (float* w : ws) (void)hipFree(w);
    (void)hipFree(d_k);
    (void)hipFree(d_v);
  }
  for (void* ptr : {(void*)d_table, (void*)d_ctx, (void*)d_q, (void*)d_out, (void*)d_lse, (void*)d_scale}) (void)hipFree(ptr);
}

}  // namespace
}  // namespace pa

int main(int argc, char** argv) {
  std::vector<int> seqs;
  for (int i = 1; i < argc; ++i) seqs.push_back(std::atoi(argv[i]));
  if (seqs.empty()) seqs = {8, 256};
  hipDeviceProp_t prop;
  (void)hipGetDeviceProperties(&prop, 0);
  // Device-to-device copy of 2 GiB: bytes read + bytes written per second.
  const size_t bytes = size_t(2) << 30;
  void* a = pa::dalloc(bytes);
  void* b = pa::dalloc(bytes);
  (void)hipMemset(a, 1, bytes);
  const float copy_ms = pa::time_ms([&] { (void)hipMemcpy(b, a, bytes, hipMemcpyDeviceToDevice); }, 10);
  const double copy_gbs = 2.0 * double(bytes) / copy_ms / 1e6;
  (void)hipFree(a);
  (void)hipFree(b);
  std::printf("device %s (%d SMs/CUs, warp %d); D2D copy %.3f ms for 2 GiB: %.1f GB/s read+write (%.1f GB/s one way)\n",
              prop.name, prop.multiProcessorCount, prop.warpSize, copy_ms, copy_gbs, copy_gbs / 2);
  for (int S : seqs) pa::bench(S, 64, 8, 128, 8192, 16, copy_gbs);
  return 0;
}
