#include "property/generators.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/capability.hpp"

namespace pa::gen {

namespace {

// inRange scales its range with RapidCheck's size (small early cases), which would make the
// first options dominate; choices are drawn at full size, so every option is equally likely
// whatever the size, and still shrink toward index 0. (Extents such as the uniform context
// length stay size-scaled on purpose: small cases first.)
constexpr int kFullSize = 100;  // RapidCheck's nominal size: inRange spans its whole range

size_t pick_index(size_t n) { return *rc::gen::resize(kFullSize, rc::gen::inRange<size_t>(0, n)); }

template <class T>
T pick(const std::vector<T>& v, const char* what) {
  // An empty list means the declaration admits nothing pacheck can generate for this field given
  // the earlier choices: a discard, not a crash.
  if (v.empty()) throw rc::GenerationFailure(std::string("no drawable ") + what);
  return v[pick_index(v.size())];
}
template <class T>
T pick(std::initializer_list<T> v) {
  return pick(std::vector<T>(v), "value");
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

// The generic Case rules (core/case.cpp validate) bound what any kernel can be handed.
constexpr int32_t kMaxHead = 1024, kMaxBlock = 256, kMaxQLen = 16;

template <class E>
std::vector<E> mask_values(uint32_t mask, int count) {
  std::vector<E> out;
  for (int i = 0; i < count; ++i)
    if (mask & (1u << i)) out.push_back(E(i));
  return out;
}

bool layout_ok(KvLayout l, int32_t block, int32_t head, DType kv) {
  return !layout_error(l, 1, block, head, dtype_bytes(kv));
}

// The scale modes a declaration admits for one KV dtype (int8 always needs a scale).
std::vector<ScaleMode> scales_for(const Capability& cap, DType kv) {
  std::vector<ScaleMode> out;
  for (ScaleMode m : mask_values<ScaleMode>(cap.scales, 5)) {
    if (kv == DType::int8 && m == ScaleMode::none) continue;
    if (cap.needs_token_scales_for_8bit && is_8bit(kv) && !is_per_token(m)) continue;
    out.push_back(m);
  }
  return out;
}

std::vector<int32_t> heads_for(const Capability& cap, KvLayout l, DType kv) {
  std::vector<int32_t> out;
  for (int32_t d : cap.head_sizes) {
    if (d < 1 || d > kMaxHead) continue;
    for (int32_t b : cap.block_sizes)
      if (b >= 1 && b <= kMaxBlock && layout_ok(l, b, d, kv)) {
        out.push_back(d);
        break;
      }
  }
  std::sort(out.begin(), out.end());  // small heads first
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int32_t> blocks_for(const Capability& cap, KvLayout l, DType kv, int32_t head) {
  std::vector<int32_t> out;
  for (int32_t b : cap.block_sizes)
    if (b >= 1 && b <= kMaxBlock && layout_ok(l, b, head, kv)) out.push_back(b);
  std::sort(out.begin(), out.end(), [](int32_t a, int32_t b) {
    // 16 and 32 first (the common sizes), then by size.
    auto rank = [](int32_t x) { return x == 16 ? 0 : x == 32 ? 1 : 2 + x; };
    return rank(a) < rank(b);
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// KV dtypes of the declaration this device can decode that have a scale mode and a shape.
std::vector<DType> kv_dtypes_for(const Capability& cap, KvLayout l, const Device& dev) {
  std::vector<DType> out;
  for (DType t : mask_values<DType>(cap.kv_dtypes, int(DType::fp32)))  // fp32 is no cache dtype
    if ((!is_fp8(t) || t == dev.native_fp8) && !scales_for(cap, t).empty() && !heads_for(cap, l, t).empty())
      out.push_back(t);
  return out;
}

std::vector<int32_t> gqa_for(const Capability& cap, const Limits& lim) {
  std::vector<int32_t> out;
  for (int32_t g : kGqa)
    if (g <= cap.max_gqa && g <= lim.max_q_heads && (!cap.max_q_len_x_gqa || g <= cap.max_q_len_x_gqa))
      out.push_back(g);
  return out;
}

// Options the drawer may switch on: custom scale, window, soft-cap, ALiBi, sinks.
struct Options {
  bool scale = false, window = false, softcap = false, alibi = false, sinks = false;
};

// Shared tail of both generators: contexts, pool padding, seed, options.
void draw_tail(Case& c, const Limits& lim, const Options& o, bool strided, int32_t max_context) {
  c.num_seqs = *rc::gen::inRange<int32_t>(1, lim.max_seqs + 1);
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    int32_t ctx = *context_len(c.block_size, c.partition_size, c.q_len, lim);
    if (max_context > 0) ctx = std::max(c.q_len, std::min(ctx, max_context));
    c.context_lens.push_back(ctx);
  }
  c.page_pad = strided ? pick<int64_t>({0, 0, 16, 40}) : 0;
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  if (o.scale && pick({false, true})) c.softmax_scale = pick({0.0883883476483184, 0.0771516749810460, 0.03125, 0.2});
  if (o.window && pick({false, true})) c.sliding_window = pick<int32_t>({1, 2, 16, 127, 128, 1024});
  if (o.softcap && pick({false, true})) c.logit_softcap = pick({50.0, 30.0, 5.0, 1.0});
  if (o.alibi) c.alibi = pick({false, true});
  if (o.sinks) c.sinks = pick({false, true});
  // One draw in four has LLM-like values (Case::values); shrinking goes back to normal values.
  c.values = pick_weighted<Values>({{3, Values::normal}, {1, Values::outliers}});
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
    const int32_t B = block, P = partition;
    const std::vector<int32_t> boundary = {1,         2,     B - 1, B,     B + 1,           2 * B - 1,       2 * B, 2 * B + 1,
                                           3 * B + 1, P - 1, P,     P + 1, 2 * P + 1, lim.max_context, lim.long_context};
    // Ten uniform slots past the list: 40% of draws are uniform, as many as all short boundaries.
    constexpr size_t kUniformSlots = 10;
    const size_t i = pick_index(boundary.size() + kUniformSlots);
    int32_t ctx = i < boundary.size() ? boundary[i] : *rc::gen::inRange<int32_t>(1, lim.max_context + 1);
    // The long boundary also shrinks *into* the long range: a failure that starts above some
    // length (a kernel that breaks past 1000 tokens) shrinks to the first failing length, not
    // only to the boundary it was found at. The range comes first: it is what shrinking tries.
    if (i == boundary.size() - 1 && lim.long_context > lim.max_context) {
      // One draw y in [0, 2R): its upper half is the long boundary itself, its lower half every
      // length past max_context. Shrinking y toward 0 walks from the boundary into the range, so
      // a kernel that breaks past 1000 tokens shrinks to 1001, not only to the boundary.
      const int32_t R = lim.long_context - lim.max_context;
      const int32_t y = *rc::gen::inRange<int32_t>(0, 2 * R);
      ctx = y < R ? lim.max_context + 1 + y : lim.long_context;
    }
    return std::max({1, q_len, ctx});
  });
}

rc::Gen<int32_t> partition_size(int32_t block) {
  return rc::gen::exec([=]() {
    return block * pick<int32_t>({1, 2, std::max(1, 256 / block), std::max(1, 512 / block)});
  });
}

rc::Gen<Case> case_in(const Kernel& k, const Device& dev, const Limits& lim) {
  const Kernel* kp = &k;
  return rc::gen::exec([=]() {
    const Capability& cap = kp->info().capability;
    Case c;
    std::vector<KvLayout> layouts;
    for (KvLayout l : mask_values<KvLayout>(cap.layouts, 4))
      if (!kv_dtypes_for(cap, l, dev).empty()) layouts.push_back(l);
    c.kv_layout = pick(layouts, "kv_layout (no declared layout has a dtype, scale and shape this device takes)");
    c.kv_dtype = pick(kv_dtypes_for(cap, c.kv_layout, dev), "kv_dtype");
    c.q_dtype = pick(mask_values<DType>(cap.q_dtypes & (bit(DType::bf16) | bit(DType::fp16)), 2), "q_dtype");
    c.kv_scale = pick(scales_for(cap, c.kv_dtype), "kv_scale");
    c.head_size = pick(heads_for(cap, c.kv_layout, c.kv_dtype), "head_size");
    c.block_size = pick(blocks_for(cap, c.kv_layout, c.kv_dtype, c.head_size), "block_size");
    const int32_t g = pick(gqa_for(cap, lim), "gqa");
    const int32_t max_kv = std::max(1, lim.max_q_heads / g);
    c.num_kv_heads = *rc::gen::inRange<int32_t>(1, std::min(max_kv, 4) + 1);
    c.num_q_heads = c.num_kv_heads * g;
    int32_t max_q = std::min(cap.max_q_len, kMaxQLen);
    if (cap.max_q_len_x_gqa) max_q = std::min(max_q, cap.max_q_len_x_gqa / g);
    c.q_len = *rc::gen::inRange<int32_t>(1, std::min(max_q, 4) + 1);
    if (cap.partition_multiple_of_block) c.partition_size = *partition_size(c.block_size);
    const Options opts{cap.custom_softmax_scale, cap.sliding_window, cap.logit_softcap, cap.alibi, cap.sinks};
    draw_tail(c, lim, opts, cap.strided_pages, cap.max_context);
    // Now and then a pool big enough for page ids > 65535, only where pages are tiny (the pool
    // is allocated and poisoned whole).
    if (lim.big_pools && int64_t(c.num_kv_heads) * c.block_size * c.head_size <= 512 &&
        pick_weighted<bool>({{19, false}, {1, true}}))
      c.num_blocks = 70000;
    if (const auto errs = validate(c); !errs.empty())
      throw rc::GenerationFailure("drawn case is invalid: " + join(errs, "; "));
    if (auto why = kp->decline_reason(c, dev)) throw rc::GenerationFailure(kp->name() + " declines the draw: " + *why);
    return c;
  });
}

rc::Gen<Case> any_case(const Limits& lim) {
  return rc::gen::exec([=]() {
    Case c;
    c.kv_layout = pick({KvLayout::nhd, KvLayout::shuffled, KvLayout::vllm, KvLayout::hnd});
    c.kv_dtype = pick({DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8});
    c.q_dtype = pick({DType::bf16, DType::fp16});
    c.kv_scale = pick({ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head, ScaleMode::per_token_block_major,
                       ScaleMode::per_token_head_major});
    if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none) c.kv_scale = ScaleMode::per_tensor;
    c.head_size = pick<int32_t>({64, 128, 256, 80, 96, 112, 192, 48, 16});
    c.block_size = pick<int32_t>({16, 32, 1, 8, 64, 128, 256, 48});
    const int32_t x = 16 / dtype_bytes(c.kv_dtype);
    if (c.kv_layout != KvLayout::nhd && c.kv_layout != KvLayout::hnd) {
      if (c.head_size % x) c.head_size = (c.head_size / x + 1) * x;
      if (c.kv_layout == KvLayout::shuffled && c.block_size % x) c.block_size = (c.block_size / x + 1) * x;
    }
    const int32_t g = pick(kGqa, "gqa");
    c.num_kv_heads = *rc::gen::inRange<int32_t>(1, 3);
    c.num_q_heads = c.num_kv_heads * g;
    c.q_len = pick<int32_t>({1, 2, 4, 8, 16});
    c.partition_size = pick<int32_t>({256, 512, 128, 100});
    draw_tail(c, lim, Options{true, true, true, true, true}, true, 0);
    return c;
  });
}

rc::Gen<Case> declined_case(const Kernel& k, const std::vector<Device>& devs, const Limits& lim) {
  const Kernel* kp = &k;
  const rc::Gen<Case> any = any_case(lim);
  return rc::gen::exec([=]() {
    const Case c = *any;
    for (const Device& dev : devs)
      if (kp->decline_reason(c, dev)) return c;
    throw rc::GenerationFailure(kp->name() + " takes the draw (not a refusal case)");
  });
}

}  // namespace pa::gen
