#include "property/generators.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace pa::gen {

namespace {

// Every choice is an index drawn with inRange, which shrinks toward 0: RapidCheck's element /
// elementOf / weightedElement do not shrink at all. Lists are ordered simplest first, so a
// failure shrinks toward the simplest option of every field.
// inRange scales its range with RapidCheck's size (small early cases), which would make the
// first options dominate; choices are drawn at full size, so every option is equally likely
// whatever the size, and still shrink toward index 0. (Extents such as context lengths stay
// size-scaled on purpose: small cases first.)
constexpr int kFullSize = 100;  // RapidCheck's nominal size: inRange spans its whole range
template <class T>
T pick(const std::vector<T>& v) {
  return v[*rc::gen::resize(kFullSize, rc::gen::inRange<size_t>(0, v.size()))];
}
template <class T>
T pick(std::initializer_list<T> v) {
  return pick(std::vector<T>(v));
}
// Weighted choice that still shrinks toward the first entry.
template <class T>
T pick_weighted(std::initializer_list<std::pair<int, T>> v) {
  int total = 0;
  for (const auto& e : v) total += e.first;
  int u = *rc::gen::resize(kFullSize, rc::gen::inRange(0, total));
  for (const auto& e : v) {
    if (u < e.first) return e.second;
    u -= e.first;
  }
  return v.begin()->second;
}

// Real GQA ratios first (shrinks toward MHA), then odd ones.
const std::vector<int32_t> kGqa = {1, 2, 4, 8, 5, 16, 3, 6, 7, 12, 32};

std::vector<int32_t> allowed_gqa(const Capability& cap, int32_t max_q_heads) {
  std::vector<int32_t> out;
  for (int32_t g : kGqa)
    if (g <= cap.max_gqa && g <= max_q_heads) out.push_back(g);
  return out;
}

template <class E, int N>
std::vector<E> mask_values(uint32_t mask) {
  std::vector<E> out;
  for (int i = 0; i < N; ++i)
    if (mask & (1u << i)) out.push_back(E(i));
  return out;
}

// Shared tail of both generators: contexts, pool, stride, options, seed.
void draw_shape_tail(Case& c, const Limits& lim, bool options_allowed[5]) {
  c.num_seqs = *rc::gen::inRange<int32_t>(1, lim.max_seqs + 1);
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s)
    c.context_lens.push_back(*context_len(c.block_size, c.partition_size, c.q_len, lim));
  c.page_pad = pick<int64_t>({0, 0, 16, 40});
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  if (options_allowed[0] && pick({false, true}))
    c.softmax_scale = pick({0.0883883476483184, 0.0771516749810460, 0.03125, 0.2});
  if (options_allowed[1] && pick({false, true}))
    c.sliding_window = pick<int32_t>({1, 2, 16, 127, 128, 1024});
  if (options_allowed[2] && pick({false, true}))
    c.logit_softcap = pick({50.0, 30.0, 5.0, 1.0});
  if (options_allowed[3]) c.alibi = pick({false, true});
  if (options_allowed[4]) c.sinks = pick({false, true});
}

}  // namespace

Limits limits_from_env() {
  Limits lim;
  const char* level = std::getenv("PACHECK_PROPERTY_LEVEL");
  if (!level || std::string(level).empty() || std::string(level) == "ci") return lim;
  if (std::string(level) == "nightly") {
    lim.max_seqs = 8;
    lim.max_context = 5000;
    lim.long_context = 16385;
    lim.max_q_heads = 64;
    lim.level = "nightly";
    return lim;
  }
  throw InputError(std::string("PACHECK_PROPERTY_LEVEL=") + level + ": expected ci or nightly");
}

rc::Gen<int32_t> context_len(int32_t block, int32_t partition, int32_t q_len, const Limits& lim) {
  return rc::gen::exec([=]() {
    const int32_t lo = std::max(1, q_len);
    const int32_t kind = pick_weighted<int32_t>({{3, 0}, {4, 1}, {1, 2}, {1, 3}, {1, 4}});
    int32_t ctx;
    switch (kind) {
      case 0: ctx = pick({1, 2, block - 1, block, block + 1}); break;
      case 1: ctx = *rc::gen::inRange<int32_t>(1, lim.max_context + 1); break;
      case 2: ctx = pick({2 * block - 1, 2 * block, 2 * block + 1, 3 * block + 1}); break;
      case 3: ctx = pick({partition - 1, partition, partition + 1, 2 * partition + 1}); break;
      default: ctx = pick({lim.max_context, lim.long_context}); break;
    }
    return std::max(lo, ctx);
  });
}

rc::Gen<Case> case_in(PathId p, const Device& dev, const Limits& lim) {
  return rc::gen::exec([=]() {
    const Capability& cap = capability(p);
    Case c;
    c.kv_layout = pick(mask_values<KvLayout, 4>(cap.layouts));
    std::vector<DType> dtypes;
    for (DType t : mask_values<DType, 6>(cap.kv_dtypes))
      if (!is_fp8(t) || t == dev.native_fp8) dtypes.push_back(t);
    c.kv_dtype = pick(dtypes);
    c.q_dtype = pick({DType::bf16, DType::fp16});
    std::vector<ScaleMode> scales;
    for (ScaleMode m : mask_values<ScaleMode, 5>(cap.scales)) {
      if (c.kv_dtype == DType::int8 && m == ScaleMode::none) continue;
      if (cap.needs_token_scales_for_8bit && is_8bit(c.kv_dtype) && !is_per_token(m)) continue;
      scales.push_back(m);
    }
    c.kv_scale = pick(scales);
    std::vector<int32_t> heads = cap.head_sizes;
    std::sort(heads.begin(), heads.end());
    c.head_size = pick(heads);
    std::vector<int32_t> blocks;
    for (int32_t b : cap.block_sizes)
      if (!layout_error(c.kv_layout, 1, b, c.head_size, dtype_bytes(c.kv_dtype))) blocks.push_back(b);
    std::sort(blocks.begin(), blocks.end(), [](int32_t a, int32_t b) {
      // 16 and 32 first (the common sizes), then by size.
      auto rank = [](int32_t x) { return x == 16 ? 0 : x == 32 ? 1 : 2 + x; };
      return rank(a) < rank(b);
    });
    c.block_size = pick(blocks);
    const int32_t g = pick(allowed_gqa(cap, lim.max_q_heads));
    const int32_t max_kv = std::max(1, lim.max_q_heads / g);
    c.num_kv_heads = *rc::gen::inRange<int32_t>(1, std::min(max_kv, 4) + 1);
    c.num_q_heads = c.num_kv_heads * g;
    int32_t max_q = cap.max_q_len;
    if (cap.max_q_len_x_gqa) max_q = std::min(max_q, cap.max_q_len_x_gqa / g);
    c.q_len = *rc::gen::inRange<int32_t>(1, std::min(max_q, 4) + 1);
    if (cap.partition_multiple_of_block)
      // One page first: the simplest split, so a split-K bug shrinks to a context of two pages.
      c.partition_size = c.block_size * pick<int32_t>({1, 2, 256 / c.block_size, 512 / c.block_size});
    bool opts[5] = {cap.custom_softmax_scale, cap.sliding_window, cap.logit_softcap, cap.alibi, cap.sinks};
    draw_shape_tail(c, lim, opts);
    // Now and then a pool big enough for page ids > 65535, only where pages are tiny.
    if (lim.big_pools && c.num_kv_heads * c.block_size * c.head_size <= 2048 &&
        pick_weighted<bool>({{19, false}, {1, true}}))
      c.num_blocks = 70000;
    RC_ASSERT(!decline_reason(p, c, dev));
    return c;
  });
}

rc::Gen<Case> any_case(const Limits& lim) {
  return rc::gen::exec([=]() {
    Case c;
    c.kv_layout = pick({KvLayout::nhd, KvLayout::shuffled, KvLayout::vllm, KvLayout::hnd});
    c.kv_dtype = pick({DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz,
                                   DType::int8});
    c.q_dtype = pick({DType::bf16, DType::fp16});
    c.kv_scale = pick({ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                   ScaleMode::per_token_block_major, ScaleMode::per_token_head_major});
    if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none) c.kv_scale = ScaleMode::per_tensor;
    c.head_size = pick<int32_t>({64, 128, 256, 80, 96, 112, 192, 48, 16});
    c.block_size = pick<int32_t>({16, 32, 1, 8, 64, 128, 256, 48});
    const int32_t x = 16 / dtype_bytes(c.kv_dtype);
    if (c.kv_layout != KvLayout::nhd && c.kv_layout != KvLayout::hnd) {
      if (c.head_size % x) c.head_size = (c.head_size / x + 1) * x;
      if (c.kv_layout == KvLayout::shuffled && c.block_size % x) c.block_size = (c.block_size / x + 1) * x;
    }
    const int32_t g = pick(kGqa);
    c.num_kv_heads = *rc::gen::inRange<int32_t>(1, 3);
    c.num_q_heads = c.num_kv_heads * g;
    c.q_len = pick<int32_t>({1, 2, 4, 8, 16});
    c.partition_size = pick<int32_t>({256, 512, 128, 100});
    bool opts[5] = {true, true, true, true, true};
    draw_shape_tail(c, lim, opts);
    return c;
  });
}

}  // namespace pa::gen
