#pragma once
// The sample of the dispatcher's cross-product that the entry tests run end to end (host twins in
// entry_test, the GPU kernels in entry_gpu_test): one generator, so both backends see the same cases.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/case.hpp"
#include "core/prng.hpp"
#include "core/device.hpp"

namespace pa::test {

template <class T, size_t N>
T pick(Rng& rng, const T (&v)[N]) { return v[size_t(rng.uniform_int(0, int64_t(N) - 1))]; }

inline std::vector<std::pair<std::string, int64_t>> out_shape(const Case& c) {
  return output_shape(c);
}

// A device model whose CU count puts this case on the requested side of the asm threshold, so
// both routes are reachable with the few sequences a host test can afford. The fp8 flavour stays
// the base device's, so flavour refusals are exercised too.
inline Device scaled(Device dev, const Case& c, bool high) {
  const int64_t work = int64_t(c.num_seqs) * c.num_q_heads;
  dev.cu_count = int32_t(high ? std::max<int64_t>(0, (work - 1) / 2) : (work + 1) / 2);
  dev.name += "-cu" + std::to_string(dev.cu_count);
  return dev;
}

struct Sampled {
  Case c;
  Device dev;
};

/// `fixed`, when given, replaces the drawn device model (the GPU test runs on the present GPU).
inline Sampled sample_case(Rng& rng, const Device* fixed = nullptr) {
  static const KvLayout kLayouts[] = {KvLayout::nhd, KvLayout::vllm, KvLayout::shuffled, KvLayout::shuffled};
  static const DType kKv[] = {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8};
  static const ScaleMode kScales[] = {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                      ScaleMode::per_token_block_major, ScaleMode::per_token_head_major};
  static const int32_t kHeads[] = {64, 80, 128, 128, 256};
  static const int32_t kBlocks[] = {1, 8, 16, 16, 32, 64};
  static const int32_t kGqa[] = {1, 2, 4, 5, 8, 16};
  static const int32_t kQLen[] = {1, 1, 2, 4, 8, 16};
  Case c;
  c.seed = rng.next_u64() >> 20;
  c.kv_layout = pick(rng, kLayouts);
  c.kv_dtype = pick(rng, kKv);
  c.kv_scale = pick(rng, kScales);
  if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none) c.kv_scale = ScaleMode::per_token_block_major;
  c.q_dtype = rng.uniform_int(0, 1) ? DType::bf16 : DType::fp16;
  c.head_size = pick(rng, kHeads);
  c.block_size = pick(rng, kBlocks);
  // 8-bit shuffled pages hold 16-token x-groups: a smaller page is invalid, not interesting.
  if (c.kv_layout == KvLayout::shuffled && is_8bit(c.kv_dtype) && c.block_size < 16) c.block_size = 16;
  c.num_kv_heads = int32_t(rng.uniform_int(1, 2));
  c.num_q_heads = c.num_kv_heads * pick(rng, kGqa);
  c.q_len = pick(rng, kQLen);
  c.num_seqs = int32_t(rng.uniform_int(1, 3));
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    // Short contexts around page and partition (256) boundaries.
    static const int32_t kCtx[] = {1, 15, 16, 17, 33, 100, 255, 256, 257};
    c.context_lens.push_back(std::max(c.q_len, pick(rng, kCtx)));
  }
  switch (rng.uniform_int(0, 7)) {
    case 0: c.softmax_scale = 1.0 / std::sqrt(168.0); break;
    case 1: c.sliding_window = 32; break;
    case 2: c.logit_softcap = 30; break;
    case 3: c.alibi = true; break;
    case 4: c.sinks = true; break;
    default: break;  // no option: the shuffled paths' home ground
  }
  static const Device kDevices[] = {device_mi300x(), device_mi355x(), device_h100()};
  const Device drawn = pick(rng, kDevices);
  const Device base = fixed ? *fixed : drawn;
  // Half the sample is drawn near the shuffled paths' home ground (a uniform draw over the
  // cross-product is mostly refusals, which the exhaustive selection test already covers).
  if (rng.uniform_int(0, 1)) {
    static const int32_t kShufHeads[] = {64, 128, 128, 256};
    static const int32_t kShufBlocks[] = {16, 16, 32};
    static const ScaleMode kShufScales[] = {ScaleMode::none, ScaleMode::per_tensor,
                                            ScaleMode::per_token_block_major, ScaleMode::per_token_head_major};
    c.kv_layout = KvLayout::shuffled;
    c.head_size = pick(rng, kShufHeads);
    c.block_size = pick(rng, kShufBlocks);
    if (is_fp8(c.kv_dtype)) c.kv_dtype = base.native_fp8;
    c.kv_scale = pick(rng, kShufScales);
    if (c.kv_dtype == DType::int8 && !is_per_token(c.kv_scale)) c.kv_scale = ScaleMode::per_token_block_major;
    c.sliding_window = 0;
    c.logit_softcap = 0;
    c.alibi = c.sinks = false;
    if (rng.uniform_int(0, 1)) {  // asm's contract: head 128, page 16, per-token scales
      c.head_size = 128;
      c.block_size = 16;
      c.softmax_scale = 0;
      c.kv_scale = c.kv_dtype == DType::bf16 ? ScaleMode::none : ScaleMode::per_token_block_major;
      while (c.q_len > 1 && c.q_len * c.gqa() > 16) c.q_len /= 2;
      for (int32_t& ctx : c.context_lens) ctx = std::max(ctx, c.q_len);
    }
  }
  return {c, scaled(base, c, rng.uniform_int(0, 1) == 1)};
}

}  // namespace pa::test
