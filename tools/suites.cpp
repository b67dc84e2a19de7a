#include "tools/suites.hpp"

#include <algorithm>
#include <cmath>

#include "core/models.hpp"
#include "core/prng.hpp"
#include "kernels/kernel.hpp"
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

// The declarations the random draws aim at: the built-in kernels' (kernels/builtin_capability.hpp,
// their one home), read through the registry like any kernel's.
const Registry& builtin_declarations() {
  static const Registry r = builtin_kernels(Backend::host);
  return r;
}

// The device a suite draws for: the model that decodes the suite's fp8 flavour.
Device draw_device(DType fp8) { return device_reading(fp8); }

// How the suites' random draws lean: options, padded pages and MTP often enough that each path's
// variants are met within a suite, one case in five with LLM-like values, no huge pools (the one
// page-id case of `ci` covers them).
gen::Weights suite_weights() { return gen::Weights::leaning(30, 20, 50, 20); }

gen::Limits suite_limits(int32_t max_ctx, int32_t max_seqs) {
  gen::Limits lim;
  lim.max_seqs = max_seqs;
  lim.max_context = max_ctx;
  lim.long_context = max_ctx;
  lim.max_q_heads = 32;
  lim.big_pools = false;
  return lim;
}

// A draw anywhere that passes the generic Case rules (any_case may combine a layout with a head
// size it cannot split); others are discarded and drawn again.
rc::Gen<Case> valid_case(const gen::Limits& lim) {
  const rc::Gen<Case> any = gen::any_case(lim);
  return rc::gen::exec([any]() {
    Case c = *any;
    if (const auto errs = validate(c); !errs.empty()) throw rc::GenerationFailure("invalid: " + errs.front());
    return c;
  });
}

// One random case through the property suite's generator: inside one built-in kernel's
// declaration (three draws in four), or anywhere (the dispatcher's refusals). Every draw comes
// from the suite's Rng.
Case random_case(Rng& r, const std::string& prefix, int index, int32_t max_ctx, int32_t max_seqs, DType fp8) {
  // The ragged family in proportion to its use: 45% of the draws go to a kernel that
  // takes ragged batches, nine in ten of them ragged; the rest to the classic kernels or anywhere.
  std::vector<KernelPtr> ragged, classic;
  for (const KernelPtr& k : builtin_declarations().all()) (k->info().capability.ragged ? ragged : classic).push_back(k);
  const bool family22 = !ragged.empty() && chance(r, 0.45);
  const std::vector<KernelPtr>& kernels = family22 ? ragged : classic;
  size_t family = size_t(r.uniform_int(0, int64_t(kernels.size()) - (family22 ? 1 : 0)));  // == size: anywhere
  // The latent (MLA) kernels take half the weight of the other ragged ones: about one draw in nine.
  const auto latent = [](const KernelPtr& k) { return reads_latent(k->info().capability); };
  if (family22 && family < kernels.size() && latent(kernels[family]) && chance(r, 0.5)) {
    std::vector<size_t> others;
    for (size_t i = 0; i < kernels.size(); ++i)
      if (!latent(kernels[i])) others.push_back(i);
    if (!others.empty()) family = others[size_t(r.uniform_int(0, int64_t(others.size()) - 1))];
  }
  gen::Limits lim = suite_limits(max_ctx, max_seqs);
  const bool inside = family < kernels.size();
  const std::string name = prefix + "r" + std::to_string(index) + "-" + (inside ? kernels[family]->name() : "any");
  gen::Weights w = suite_weights();
  if (family22) {
    // Batches of up to 8 sequences, extend rows of up to 24 tokens, contexts up to 1100 (the
    // long ones stay with the classic draws): a ragged case then costs
    // about what a classic one does (the sum over sequences of q_len * context), which keeps the
    // suites' throughput; the property suite draws longer extend rows (gen::Limits).
    w.ragged = 90;
    lim.max_extend = 24;
    lim.max_seqs = std::min<int32_t>(max_seqs, 8);
    lim.max_context = lim.long_context = std::min<int32_t>(max_ctx, 1100);
    // An MLA case (a latent cache) reads 576 + 512 values per key for each of its many heads:
    // at most 16 heads, 4 sequences and 600 tokens keep it near a classic case's cost.
    if (inside && latent(kernels[family])) {
      lim.max_q_heads = 16;
      lim.max_seqs = std::min<int32_t>(lim.max_seqs, 4);
      lim.max_extend = 16;
      lim.max_context = lim.long_context = std::min<int32_t>(lim.max_context, 600);
    }
  }
  Case c = gen::sample(inside ? gen::case_in(*kernels[family], draw_device(fp8), lim, w) : valid_case(lim),
                       r.next_u64(), "suite case " + name);
  // Some batches cross the asm threshold (S * Hq > 2 * CUs) so the dispatcher picks asm.
  if (inside && kernels[family]->name() == "asm" && chance(r, 0.3)) {
    const int32_t seqs = 700 / c.num_q_heads + 1;
    for (int32_t s = c.num_seqs; s < seqs; ++s) c.context_lens.push_back(std::min(40, c.context_lens[size_t(s % c.num_seqs)]));
    for (int32_t& ctx : c.context_lens) ctx = std::max(c.q_len, std::min(ctx, 40));
    c.num_seqs = seqs;
  }
  c.name = name;
  return c;
}

// `count` random draws from a stream of their own, so a change to the generator moves no named
// case drawn after them.
void random_cases(uint64_t seed, const std::string& prefix, int count, int32_t max_ctx, int32_t max_seqs, DType fp8,
                  std::vector<Case>& out) {
  Rng r(seed, Stream::kSuite);
  for (int i = 0; i < count; ++i) out.push_back(random_case(r, prefix, i, max_ctx, max_seqs, fp8));
}

// One case per KV dtype each built-in kernel declares and the suite's device decodes (fp8_e5m2
// included): a declared dtype is never left to chance.
void kv_dtype_cases(uint64_t seed, const std::string& prefix, int32_t max_ctx, DType fp8, std::vector<Case>& out) {
  Rng r(seed ^ 0xD7, Stream::kSuite);
  const Device dev = draw_device(fp8);
  for (const KernelPtr& k : builtin_declarations().all())
    for (DType kv : gen::drawable_kv_dtypes(k->info().capability, dev)) {
      const std::string name = prefix + "kv-" + k->name() + "-" + to_string(kv);
      Case c = gen::sample(gen::case_in(*k, dev, suite_limits(max_ctx, 2), suite_weights(), kv), r.next_u64(),
                           "suite case " + name);
      c.name = name;
      out.push_back(c);
    }
}

// What a larger suite adds to the smaller one: the model configs at its sizes, then random draws.
struct Growth {
  const char* prefix;
  int32_t model_seqs, max_ctx;
  int draws;
  int32_t max_seqs;
  uint64_t salt;  // the suite's Rng; salt + 1 the stream of its random draws
};
constexpr Growth kCi{"ci/", 4, 1100, 150, 6, 0xC1}, kNightly{"nightly/", 8, 4097, 800, 16, 0x9E};

// Appends `g`'s cases to `v`; returns the suite's Rng for named cases drawn after them.
Rng grow(std::vector<Case>& v, uint64_t seed, const Growth& g, DType fp8) {
  Rng r(seed ^ g.salt, Stream::kSuite);
  model_cases(r, g.prefix, g.model_seqs, g.max_ctx, fp8, v);
  random_cases(seed ^ (g.salt + 1), g.prefix, g.draws, g.max_ctx, g.max_seqs, fp8, v);
  return r;
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
  opts.alibi = opts.sinks = true;
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
  kv_dtype_cases(seed, "smoke/", 200, fp8, v);
  // mla, mla_split: both latent caches, the model's softmax scale (1/sqrt(192), never 1/sqrt(576)),
  // a padded head count (12 runs as 16 on mla_split), an 8-bit cache with its scale, MTP, a
  // context over two partitions on one-token pages. Appended: the draws above stay as they were.
  const auto mla = [&](const std::string& name, int32_t S, int32_t hq, int32_t b, KvLayout l, DType kv, ScaleMode sc,
                       int32_t max_ctx, int32_t q_len) {
    Case c = make(r, name, S, hq, 1, 576, b, l, kv, sc, max_ctx, q_len);
    c.head_size_v = 512;
    c.softmax_scale = 0.07216878364870322;  // DeepSeek-V3's 1/sqrt(128 + 64)
    return c;
  };
  v.push_back(mla("smoke/mla-joint-bf16-h16", 2, 16, 16, KvLayout::mla_joint, DType::bf16, ScaleMode::none, ctx, 1));
  v.push_back(mla("smoke/mla-split-fp8-per-tensor-h12-mtp2", 2, 12, 64, KvLayout::mla_split, fp8, ScaleMode::per_tensor,
                  ctx, 2));
  Case parts = mla("smoke/mla-split-bf16-h32-b1-partitions", 2, 32, 1, KvLayout::mla_split, DType::bf16, ScaleMode::none,
                   700, 1);
  parts.context_lens = {513, 257};
  v.push_back(parts);
  Case ragged = mla("smoke/mla-joint-fp8-ragged-csr", 3, 16, 16, KvLayout::mla_joint, fp8, ScaleMode::per_tensor, ctx, 4);
  set_q_lens(ragged, {1, 4, 2});
  ragged.page_table = PageTable::csr;
  v.push_back(ragged);
  return v;
}

std::vector<Case> ci_suite(uint64_t seed, DType fp8) {
  std::vector<Case> v = smoke_suite(seed, fp8);
  Rng r = grow(v, seed, kCi, fp8);
  // Page ids past 65535 (16-bit index truncation): a big pool of tiny pages.
  Case big = make(r, "ci/page-ids-over-65535", 2, 4, 1, 16, 1, KvLayout::nhd, DType::bf16, ScaleMode::none, 100);
  big.num_blocks = 70000;
  v.push_back(big);
  return v;
}

std::vector<Case> nightly_suite(uint64_t seed, DType fp8) {
  std::vector<Case> v = ci_suite(seed, fp8);
  grow(v, seed, kNightly, fp8);
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
