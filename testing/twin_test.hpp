#pragma once
// Shared by the host-twin tests: case generators inside each path's capability (RapidCheck) and
// a judge through the testbed's one judge (host twin vs CPU reference), plus the LSE bound.
#include <rapidcheck.h>

#include <cmath>

#include "kernels/kernel.hpp"
#include "reference/attention.hpp"
#include "regression/testbed.hpp"

namespace pa::twin_test {

inline Device device_for(DType kv, bool pick_mi355) {
  if (kv == DType::fp8_e4m3fnuz) return device_mi300x();
  if (kv == DType::fp8_e4m3fn) return device_mi355x();
  return pick_mi355 ? device_mi355x() : device_mi300x();
}

// Context lengths biased towards the boundaries of blocks and partitions.
inline std::vector<int32_t> gen_contexts(int32_t S, int32_t B, int32_t P, int32_t q_len, int32_t max_ctx) {
  std::vector<int32_t> ctx;
  for (int32_t s = 0; s < S; ++s) {
    const int32_t pick = *rc::gen::element<int32_t>(1, B - 1, B, B + 1, P - 1, P, P + 1, 2 * P + 1,
                                                    *rc::gen::inRange<int32_t>(1, max_ctx + 1));
    ctx.push_back(std::min(max_ctx, std::max(q_len, pick)));
  }
  return ctx;
}

inline int32_t gen_gqa(int32_t max_g) { return *rc::gen::inRange<int32_t>(1, max_g + 1); }

inline Case gen_v1_case() {
  Case c;
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  c.kv_layout = *rc::gen::element(KvLayout::nhd, KvLayout::vllm);
  c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8);
  c.kv_scale = *rc::gen::element(ScaleMode::per_tensor, ScaleMode::per_head,
                                 c.kv_dtype == DType::int8 ? ScaleMode::per_tensor : ScaleMode::none);
  c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
  c.head_size = *rc::gen::element(16, 64, 80, 128, 256);
  c.block_size = *rc::gen::element(1, 2, 8, 16, 32, 64);
  c.num_kv_heads = *rc::gen::inRange(1, 3);
  c.num_q_heads = c.num_kv_heads * gen_gqa(8);
  c.q_len = *rc::gen::inRange(1, 5);
  c.num_seqs = *rc::gen::inRange(1, 3);
  c.context_lens = gen_contexts(c.num_seqs, c.block_size, 256, c.q_len, 300);
  if (*rc::gen::arbitrary<bool>()) c.softmax_scale = *rc::gen::element(0.05, 0.125, 0.3);
  if (*rc::gen::arbitrary<bool>()) c.sliding_window = *rc::gen::inRange(1, 64);
  if (*rc::gen::arbitrary<bool>()) c.logit_softcap = *rc::gen::element(5.0, 30.0, 50.0);
  c.alibi = *rc::gen::arbitrary<bool>();
  c.sinks = *rc::gen::arbitrary<bool>();
  c.page_pad = *rc::gen::element<int64_t>(0, 0, 48);
  return c;
}

inline Case gen_hip_case() {
  Case c;
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  c.kv_layout = KvLayout::shuffled;
  c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz);
  c.kv_scale = *rc::gen::element(ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_token_block_major,
                                 ScaleMode::per_token_head_major);
  c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
  c.head_size = *rc::gen::element(64, 128, 256);
  c.block_size = *rc::gen::element(16, 32);
  c.partition_size = c.block_size * *rc::gen::element(1, 2, 4, 8, 16 / (c.block_size / 16));
  c.num_kv_heads = *rc::gen::inRange(1, 3);
  c.num_q_heads = c.num_kv_heads * gen_gqa(16);
  c.q_len = *rc::gen::inRange(1, 9);
  c.num_seqs = *rc::gen::inRange(1, 3);
  c.context_lens = gen_contexts(c.num_seqs, c.block_size, c.partition_size, c.q_len, 600);
  if (*rc::gen::arbitrary<bool>()) c.softmax_scale = *rc::gen::element(0.05, 0.125, 0.3);
  c.page_pad = *rc::gen::element<int64_t>(0, 0, 64);
  return c;
}

inline Case gen_asm_case() {
  Case c;
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  c.kv_layout = KvLayout::shuffled;
  c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8);
  c.kv_scale = is_8bit(c.kv_dtype) ? ScaleMode::per_token_block_major
                                   : *rc::gen::element(ScaleMode::none, ScaleMode::per_token_block_major);
  c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
  c.head_size = 128;
  c.block_size = 16;
  const int32_t g = gen_gqa(16);
  c.q_len = *rc::gen::inRange(1, 16 / g + 1);
  c.num_kv_heads = *rc::gen::inRange(1, 3);
  c.num_q_heads = c.num_kv_heads * g;
  c.num_seqs = *rc::gen::inRange(1, 4);
  c.context_lens = gen_contexts(c.num_seqs, c.block_size, 256, c.q_len, 400);
  c.page_pad = *rc::gen::element<int64_t>(0, 0, 32);
  return c;
}

inline Case gen_case(const std::string& p) {
  if (p == "v1") return gen_v1_case();
  if (p == "hip") return gen_hip_case();
  return gen_asm_case();
}

inline const Registry& host_twins() {
  static const Registry r = builtin_kernels(Backend::host);
  return r;
}
inline const Kernel& twin(const std::string& p) { return *host_twins().get(p); }


// |lse - ref| bound: lse is fp32, its error is a few ulps of the largest logit magnitude plus
// the fp32 denominator sum (sqrt(n) 2^-24 relative); 1e-3 is >100x that for |logit| < 100.
constexpr double kLseAtol = 1e-3;

/// Runs p's host twin on c and judges it against the reference; returns the failure message.
inline std::string judge(const std::string& p, const Case& c, const Device& dev) {
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  if (auto why = twin(p).decline_reason(c, dev)) return "path refused: " + *why;
  const KernelOutput got = twin(p).run(make_call(in, kv), dev);
  if (got.status != Status::Ok) return "path refused: " + got.reason;
  const ReferenceResult ref = reference_attention(in);
  const PathRecord v = pa::judge(twin(p), got, c, ref);
  if (v.status != Status::Ok) return v.message + " [" + v.tolerance.model + "]";
  for (size_t r = 0; r < ref.lse.size(); ++r)
    if (!(std::fabs(got.lse[r] - ref.lse[r]) <= kLseAtol * (1 + std::fabs(ref.lse[r]))))
      return "lse row " + std::to_string(r) + ": " + std::to_string(got.lse[r]) + " vs " + std::to_string(ref.lse[r]);
  return "";
}

inline void check_path(const std::string& p) {
  const Case c = gen_case(p);
  const Device dev = device_for(c.kv_dtype, *rc::gen::arbitrary<bool>());
  const auto why = twin(p).decline_reason(c, dev);
  RC_ASSERT(!why.has_value());  // the generator stays inside the capability
  const std::string err = judge(p, c, dev);
  RC_LOG() << vars(c) << "\n";
  RC_ASSERT(err == "");
}

}  // namespace pa::twin_test
