#include "tools/suites.hpp"

#include <algorithm>
#include <cmath>

#include "core/models.hpp"
#include "core/prng.hpp"
#include "property/generators.hpp"

namespace pa::tools {

namespace {

DType foreign_fp8(DType native) {
  return native == DType::fp8_e4m3fnuz ? DType::fp8_e4m3fn : DType::fp8_e4m3fnuz;
}

template <class T>
T pick(Rng& r, std::initializer_list<T> v) {
  return *(v.begin() + r.uniform_int(0, int64_t(v.size()) - 1));
}
bool chance(Rng& r, double p) { return r.uniform() < p; }

// Context lengths from the property suite's boundary-biased generator (property/generators.hpp:
// 1, 2, B-1, B, B+1, 2B+-1, partition +-1, ..., and uniform ones up to max_ctx), drawn from the
// suite's Rng, never below q_len.
std::vector<int32_t> contexts(Rng& r, const Case& c, int32_t max_ctx) {
  gen::Limits lim;
  lim.max_context = std::max(max_ctx, c.q_len);
  lim.long_context = lim.max_context;
  std::vector<int32_t> out;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx =
        gen::context_len(c.block_size, c.partition_size, c.q_len, lim)(rc::Random(r.next_u64()), 100).value();
    out.push_back(std::clamp(ctx, std::max(1, c.q_len), lim.max_context));
  }
  return out;
}

Case make(Rng& r, const std::string& name, int32_t S, int32_t hq, int32_t hkv, int32_t d, int32_t b,
          KvLayout layout, DType kv, ScaleMode scale, int32_t max_ctx, int32_t q_len = 1) {
  Case c;
  c.name = name;
  c.seed = r.next_u64() >> 32;  // 32-bit seeds stay readable in replay lines
  c.num_seqs = S;
  c.q_len = q_len;
  c.num_q_heads = hq;
  c.num_kv_heads = hkv;
  c.head_size = d;
  c.block_size = b;
  c.kv_layout = layout;
  c.kv_dtype = kv;
  c.kv_scale = scale;
  c.q_dtype = pick(r, {DType::bf16, DType::fp16});
  c.context_lens = contexts(r, c, max_ctx);
  return c;
}

// The real head configs of docs/kernels.md (per GPU), with their attention options.
void model_cases(Rng& r, const std::string& prefix, int32_t S, int32_t max_ctx, DType fp8, std::vector<Case>& out) {
  for (const ModelConfig& m : model_configs()) {
    if (m.needs_v1()) {
      // Options only v1 implements (the "silent drop" incident): non-shuffled layouts, 16-bit KV.
      Case c = make(r, prefix + m.name, S, m.num_q_heads, m.num_kv_heads, m.head_size, 16,
                    pick(r, {KvLayout::nhd, KvLayout::vllm}), pick(r, {DType::bf16, DType::fp16}),
                    ScaleMode::none, max_ctx);
      apply_model(m, c);
      out.push_back(c);
      continue;
    }
    // Plain models: the shuffled layout lets the dispatcher choose hip or asm; vllm forces v1.
    const bool shuffled = chance(r, 0.7);
    const DType kv = pick(r, {DType::bf16, fp8});
    const ScaleMode sc = is_8bit(kv) ? (shuffled ? ScaleMode::per_token_block_major : ScaleMode::per_tensor)
                                     : ScaleMode::none;
    Case c = make(r, prefix + m.name, S, m.num_q_heads, m.num_kv_heads, m.head_size, 16,
                  shuffled ? KvLayout::shuffled : KvLayout::vllm, kv, sc, max_ctx);
    apply_model(m, c);
    out.push_back(c);
  }
}

// One random case aimed inside a path's capability (core/capability.cpp), or anywhere.
Case draw_case(Rng& r, const std::string& prefix, int index, int32_t max_ctx, int32_t max_seqs, DType native) {
  const int family = int(r.uniform_int(0, 3));  // 0 v1, 1 hip, 2 asm, 3 anything (dispatcher refusals)
  const std::string name = prefix + "r" + std::to_string(index) + "-" +
                           (family == 0 ? "v1" : family == 1 ? "hip" : family == 2 ? "asm" : "any");
  const DType fp8 = chance(r, 0.8) ? native : foreign_fp8(native);  // a foreign flavour must be refused
  const int32_t S = int32_t(r.uniform_int(1, max_seqs));
  if (family == 0) {
    const DType kv = pick(r, {DType::bf16, DType::fp16, fp8, DType::int8});
    const ScaleMode sc = kv == DType::int8 ? pick(r, {ScaleMode::per_tensor, ScaleMode::per_head})
                                           : pick(r, {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head});
    const int32_t hkv = pick(r, {1, 2, 4}), g = pick(r, {1, 2, 4, 5, 8});
    Case c = make(r, name, S, hkv * g, hkv, pick(r, {64, 80, 96, 112, 128, 192, 256}), pick(r, {1, 4, 8, 16, 32, 64}),
                  pick(r, {KvLayout::nhd, KvLayout::vllm}), kv, sc, max_ctx, pick(r, {1, 1, 2, 4}));
    if (chance(r, 0.3)) c.sliding_window = int32_t(r.uniform_int(1, 200));
    if (chance(r, 0.3)) c.logit_softcap = pick(r, {30.0, 50.0});
    if (chance(r, 0.3)) c.alibi = true;
    if (chance(r, 0.3)) c.sinks = true;
    if (chance(r, 0.3)) c.softmax_scale = r.uniform(0.02, 0.2);
    if (chance(r, 0.2)) c.page_pad = r.uniform_int(1, 64);
    return c;
  }
  if (family == 1) {
    const DType kv = pick(r, {DType::bf16, DType::fp16, fp8});
    const ScaleMode sc = pick(r, {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_token_block_major,
                                  ScaleMode::per_token_head_major});
    const int32_t hkv = pick(r, {1, 2, 4}), g = pick(r, {1, 2, 4, 8, 16});
    Case c = make(r, name, S, hkv * g, hkv, pick(r, {64, 128, 256}), pick(r, {16, 32}), KvLayout::shuffled, kv, sc,
                  max_ctx, pick(r, {1, 1, 2, 4, 8}));
    c.partition_size = pick(r, {256, 256, 512});
    if (chance(r, 0.3)) c.softmax_scale = r.uniform(0.02, 0.2);
    if (chance(r, 0.2)) c.page_pad = r.uniform_int(1, 64);
    c.context_lens = contexts(r, c, max_ctx);
    return c;
  }
  if (family == 2) {
    const DType kv = pick(r, {DType::bf16, DType::fp16, fp8, DType::int8});
    const ScaleMode sc = is_8bit(kv) ? ScaleMode::per_token_block_major
                                     : pick(r, {ScaleMode::none, ScaleMode::per_token_block_major});
    const int32_t g = pick(r, {1, 2, 4, 8, 16});
    const int32_t q_len = g <= 8 ? pick(r, {1, 2}) : 1;  // q_len * padded G <= 16
    const int32_t hkv = pick(r, {1, 2, 8});
    // Some batches cross the asm threshold (S * Hq > 2 * CUs) so the dispatcher picks asm.
    const int32_t seqs = chance(r, 0.3) ? int32_t(700 / (hkv * g)) + 1 : S;
    return make(r, name, seqs, hkv * g, hkv, 128, 16, KvLayout::shuffled, kv, sc, chance(r, 0.3) ? 40 : max_ctx, q_len);
  }
  const DType kv = pick(r, {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8});
  const int32_t hkv = pick(r, {1, 2, 4}), g = pick(r, {1, 3, 4, 8, 32});
  Case c = make(r, name, S, hkv * g, hkv, pick(r, {64, 72, 128, 256}), pick(r, {8, 16, 32, 64}),
                pick(r, {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled}), kv,
                kv == DType::int8 ? ScaleMode::per_token_block_major
                                  : pick(r, {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                             ScaleMode::per_token_block_major, ScaleMode::per_token_head_major}),
                max_ctx, pick(r, {1, 2, 8}));
  if (c.kv_layout == KvLayout::shuffled && c.block_size < 16 && is_8bit(kv)) c.block_size = 16;  // stay valid
  if (chance(r, 0.3)) c.logit_softcap = 30;
  c.context_lens = contexts(r, c, max_ctx);
  return c;
}

// Draws until the case is valid (the "anything" family can combine a layout with a head size it
// cannot split); the loop is deterministic in the seed like every other draw.
Case random_case(Rng& r, const std::string& prefix, int index, int32_t max_ctx, int32_t max_seqs, DType fp8) {
  for (;;) {
    Case c = draw_case(r, prefix, index, max_ctx, max_seqs, fp8);
    // One case in five draws LLM-like values: outlier channels, logits in the hundreds.
    if (chance(r, 0.2)) c.values = Values::outliers;
    if (validate(c).empty()) return c;
  }
}

}  // namespace

std::vector<Case> smoke_suite(uint64_t seed, DType fp8) {
  Rng r(seed, Stream::kSuite);
  std::vector<Case> v;
  const int32_t ctx = 300;  // short: the whole suite runs in seconds on the host
  // v1: its layouts, every KV dtype and its scales, GQA, MTP, every option.
  v.push_back(make(r, "smoke/v1-nhd-bf16-gqa4", 3, 8, 2, 128, 16, KvLayout::nhd, DType::bf16, ScaleMode::none, ctx));
  v.push_back(make(r, "smoke/v1-vllm-fp16-mtp3", 2, 4, 4, 64, 32, KvLayout::vllm, DType::fp16, ScaleMode::none, ctx, 3));
  v.push_back(make(r, "smoke/v1-nhd-fp8-per-tensor", 2, 8, 1, 96, 8, KvLayout::nhd, fp8,
                   ScaleMode::per_tensor, ctx));
  v.push_back(make(r, "smoke/v1-vllm-int8-per-head", 2, 16, 4, 80, 16, KvLayout::vllm, DType::int8, ScaleMode::per_head, ctx));
  v.push_back(make(r, "smoke/v1-vllm-fp8-b32-per-head", 2, 8, 2, 192, 32, KvLayout::vllm, fp8,
                   ScaleMode::per_head, ctx));
  Case opts = make(r, "smoke/v1-all-options-mtp2", 2, 8, 2, 128, 16, KvLayout::nhd, DType::bf16, ScaleMode::none, ctx, 2);
  opts.sliding_window = 37;
  opts.logit_softcap = 30;
  opts.alibi = true;
  opts.sinks = true;
  opts.softmax_scale = 0.05;
  opts.page_pad = 24;
  v.push_back(opts);
  // hip: the shuffled layout, two-stage split-K across several partitions, its scale modes.
  Case hip = make(r, "smoke/hip-bf16-gqa8-partitions", 2, 8, 1, 128, 16, KvLayout::shuffled, DType::bf16,
                  ScaleMode::none, 700);
  hip.context_lens = {513, 257};  // partition + 1 and 2 partitions + 1
  v.push_back(hip);
  v.push_back(make(r, "smoke/hip-fp16-b32-mtp2", 2, 4, 2, 64, 32, KvLayout::shuffled, DType::fp16,
                   ScaleMode::per_tensor, ctx, 2));
  v.push_back(make(r, "smoke/hip-fp8-head-major-d256", 2, 4, 2, 256, 16, KvLayout::shuffled, fp8,
                   ScaleMode::per_token_head_major, ctx));
  Case part = make(r, "smoke/hip-partition512-strided", 1, 16, 2, 128, 32, KvLayout::shuffled, DType::bf16,
                   ScaleMode::none, 600);
  part.partition_size = 512;
  part.context_lens = {513};
  part.page_pad = 64;
  v.push_back(part);
  // asm: head 128, block 16, GQA tiles (G padded up), per-token block-major scales for 8-bit KV.
  v.push_back(make(r, "smoke/asm-fp8-gqa8", 2, 16, 2, 128, 16, KvLayout::shuffled, fp8,
                   ScaleMode::per_token_block_major, ctx));
  v.push_back(make(r, "smoke/asm-int8", 2, 8, 1, 128, 16, KvLayout::shuffled, DType::int8,
                   ScaleMode::per_token_block_major, ctx));
  v.push_back(make(r, "smoke/asm-bf16-gqa4-tile8-mtp2", 2, 8, 2, 128, 16, KvLayout::shuffled, DType::bf16,
                   ScaleMode::none, ctx, 2));
  v.push_back(make(r, "smoke/asm-high-concurrency", 40, 16, 1, 128, 16, KvLayout::shuffled, DType::bf16,
                   ScaleMode::none, 40));
  // Incident: block 32 at high concurrency must fall back to hip, not abort.
  v.push_back(make(r, "smoke/incident-block32-gqa4-fp8", 48, 16, 4, 128, 32, KvLayout::shuffled,
                   fp8, ScaleMode::per_token_block_major, 40));
  // Refusals the dispatcher must explain: hnd (no path), OCP fp8 on MI300, soft-cap on shuffled.
  v.push_back(make(r, "smoke/refuse-hnd", 1, 4, 1, 128, 16, KvLayout::hnd, DType::bf16, ScaleMode::none, ctx));
  v.push_back(make(r, "smoke/refuse-foreign-fp8-flavour", 1, 8, 1, 128, 16, KvLayout::shuffled, foreign_fp8(fp8),
                   ScaleMode::per_token_block_major, ctx));
  v.push_back(make(r, "smoke/v1-vllm-fp8-per-tensor", 2, 8, 2, 128, 16, KvLayout::vllm, fp8, ScaleMode::per_tensor, ctx));
  Case cap = make(r, "smoke/refuse-softcap-shuffled", 1, 8, 1, 128, 16, KvLayout::shuffled, DType::bf16, ScaleMode::none, ctx);
  cap.logit_softcap = 50;
  v.push_back(cap);
  model_cases(r, "smoke/", 2, 200, fp8, v);
  return v;
}

std::vector<Case> ci_suite(uint64_t seed, DType fp8) {
  std::vector<Case> v = smoke_suite(seed, fp8);
  Rng r(seed ^ 0xC1, Stream::kSuite);
  model_cases(r, "ci/", 4, 1100, fp8, v);
  for (int i = 0; i < 150; ++i) v.push_back(random_case(r, "ci/", i, 1100, 6, fp8));
  // Page ids past 65535 (16-bit index truncation): a big pool of tiny pages.
  Case big = make(r, "ci/page-ids-over-65535", 2, 4, 1, 16, 1, KvLayout::nhd, DType::bf16, ScaleMode::none, 100);
  big.num_blocks = 70000;
  v.push_back(big);
  return v;
}

std::vector<Case> nightly_suite(uint64_t seed, DType fp8) {
  std::vector<Case> v = ci_suite(seed, fp8);
  Rng r(seed ^ 0x9E, Stream::kSuite);
  model_cases(r, "nightly/", 8, 4097, fp8, v);
  for (int i = 0; i < 800; ++i) v.push_back(random_case(r, "nightly/", i, 4097, 16, fp8));
  return v;
}

const std::vector<std::string>& suite_names() {
  static const std::vector<std::string> kNames = {"smoke", "ci", "nightly"};
  return kNames;
}

std::vector<Case> suite(const std::string& name, uint64_t seed, DType fp8) {
  if (name == "smoke") return smoke_suite(seed, fp8);
  if (name == "ci") return ci_suite(seed, fp8);
  if (name == "nightly") return nightly_suite(seed, fp8);
  throw InputError("--suite " + name + ": unknown suite (smoke, ci, nightly)");
}

}  // namespace pa::tools
