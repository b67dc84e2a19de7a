#include "property/generators.hpp"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "core/capability.hpp"
#include "core/prng.hpp"

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

// True in `percent` of draws; shrinks toward false.
bool chance(int percent) {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  return pick_weighted<bool>({{100 - percent, false}, {percent, true}});
}

// Real GQA ratios first (shrinks toward MHA), then odd ones.
const std::vector<int32_t> kGqa = {1, 2, 4, 8, 5, 16, 3, 6, 7, 12, 32};

// The generic Case rules (core/case.cpp validate) bound what any kernel can be handed.
constexpr int32_t kMaxHead = 1024, kMaxBlock = 256, kMaxUniformQLen = 16;

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

// The entries of `v` up to `limit` when there are any (limit > 0), else `v`: a workload's cost cap
// that never empties a declaration.
std::vector<int32_t> modest(std::vector<int32_t> v, int32_t limit) {
  if (limit <= 0) return v;
  std::vector<int32_t> out;
  for (int32_t x : v)
    if (x <= limit) out.push_back(x);
  return out.empty() ? v : out;
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
  for (DType t : drawable_kv_dtypes(cap, dev))
    if (!scales_for(cap, t).empty() && !heads_for(cap, l, t).empty()) out.push_back(t);
  return out;
}

// The KV dtype: uniform over the declared ones, or an 8-bit cache in `eight_bit` percent of draws.
DType pick_kv(const std::vector<DType>& kvs, int eight_bit) {
  std::vector<DType> wide, narrow;
  for (DType t : kvs) (is_8bit(t) ? narrow : wide).push_back(t);
  if (eight_bit < 0 || wide.empty() || narrow.empty()) return pick(kvs, "kv_dtype");
  return chance(eight_bit) ? pick(narrow, "kv_dtype") : pick(wide, "kv_dtype");
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

// Shared tail of both generators: contexts, pool padding, seed, options. `partition` is where the
// kernel splits: its declared fixed partition (`fixed_partition`), else the case's.
void draw_tail(Case& c, const Limits& lim, const Weights& w, const Options& o, bool strided, int32_t max_context,
               int32_t partition, bool fixed_partition, int32_t stride_align) {
  c.num_seqs = *rc::gen::inRange<int32_t>(1, lim.max_seqs + 1);
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    int32_t ctx = *context_len(c.block_size, partition, c.q_len, lim, fixed_partition);
    if (max_context > 0) ctx = std::max(c.q_len, std::min(ctx, max_context));
    c.context_lens.push_back(ctx);
  }
  c.page_pad = strided && chance(w.padded_pages) ? pick<int64_t>({16, 40, 8, 64}) : 0;
  if (strided && stride_align > 1) c.page_pad = aligned_page_pad(c.page_stride() - c.page_pad, c.page_pad, stride_align);
  // The inputs' seed after the contexts. Drawn first, it unsticks one planted-bug shrink (a seed
  // that hid the bug at short contexts) but sticks another on a 3-page local minimum: RapidCheck
  // shrinks each draw once, in order. Either order leaves a rare stuck shrink; this one keeps the
  // pinned verdict classes minimal (docs/building.md, "Fresh seeds").
  c.seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  if (o.scale && chance(w.options)) c.softmax_scale = pick({0.0883883476483184, 0.0771516749810460, 0.03125, 0.2});
  if (o.window && chance(w.options)) c.sliding_window = pick<int32_t>({1, 2, 16, 127, 128, 1024});
  if (o.softcap && chance(w.options)) c.logit_softcap = pick({50.0, 30.0, 5.0, 1.0});
  if (o.alibi) c.alibi = chance(w.options);
  if (o.sinks) c.sinks = chance(w.options);
  // LLM-like values (Case::values) in llm_values percent of draws; shrinking goes back to normal.
  c.values = chance(w.llm_values) ? Values::outliers : Values::normal;
}

// The ragged family, drawn after the classic shape and only where the kernel declares it (a kernel
// of an earlier ABI minor draws exactly what it drew before). Each choice shrinks toward the
// classic case: uniform q_len, Dv == D, no empty slot, the padded table.
void draw_ragged_family(Case& c, const Capability& cap, const Limits& lim, const Weights& w, int32_t partition,
                        bool fixed_partition) {
  const int32_t max_q = std::min(cap.max_q_len, pa::kMaxQLen);
  if (cap.ragged && max_q > 1 && chance(w.ragged)) {
    // At least two sequences; q_len classes shrink toward decode: 1, MTP 5-8 (the incident zone),
    // MTP 2-4 and 9-16, an extend row (a prefill chunk over an existing context).
    const int32_t S = std::max<int32_t>(2, *rc::gen::inRange<int32_t>(2, std::max(3, lim.max_seqs + 2)));
    std::vector<int32_t> qls;
    for (int32_t s = 0; s < S; ++s) {
      const int32_t cls = int32_t(pick_index(4));
      int32_t ql = 1;
      if (cls == 1) ql = *rc::gen::inRange<int32_t>(5, 9);
      else if (cls == 2) ql = pick<int32_t>({2, 3, 4, 9, 12, 16});
      else if (cls == 3) ql = *rc::gen::inRange<int32_t>(17, std::max(18, lim.max_extend + 1));
      qls.push_back(std::min(ql, max_q));
    }
    if (chance(50)) std::stable_sort(qls.begin(), qls.end());  // vLLM's decode-first order
    c.num_seqs = S;
    c.context_lens.resize(size_t(S));
    for (int32_t s = 0; s < S; ++s) {
      int32_t ctx = *context_len(c.block_size, partition, qls[size_t(s)], lim, fixed_partition);
      if (cap.max_context > 0) ctx = std::min(ctx, cap.max_context);
      c.context_lens[size_t(s)] = std::max(ctx, qls[size_t(s)]);
    }
    const int32_t hi = *std::max_element(qls.begin(), qls.end());
    c.q_len = hi;
    if (*std::min_element(qls.begin(), qls.end()) != hi) c.q_lens = qls;
  }
  if (!cap.head_sizes_v.empty() && chance(w.head_size_v)) {
    std::vector<int32_t> dvs;
    for (int32_t dv : cap.head_sizes_v)
      if (dv != c.head_size && layout_ok(c.kv_layout, c.block_size, dv, c.kv_dtype)) dvs.push_back(dv);
    if (!dvs.empty()) c.head_size_v = pick(dvs, "head_size_v");
  }
  if (cap.empty_rows && c.num_seqs >= 2 && chance(w.empty_rows))
    c.context_lens[pick_index(size_t(c.num_seqs))] = 0;
  if (c.max_context() == 0) c.context_lens[0] = std::max(1, c.q_len_of(0));
  if (cap.ragged && chance(w.extremes)) c.values = Values::extremes;
  // Table pads of every kind where the kernel speaks minor 2 (a ragged kernel): -1 and 0 as well
  // as free pages; each must never be read.
  if (cap.ragged && chance(w.table_pads)) c.table_pad = pick({TablePad::minus_one, TablePad::zero});
  // The padded table unless the kernel takes CSR and the draw says so (or takes CSR only).
  if ((cap.page_tables & bit(PageTable::csr)) && (!(cap.page_tables & bit(PageTable::padded)) || chance(w.csr)))
    c.page_table = PageTable::csr;
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
    lim.max_extend = 300;
    lim.level = "nightly";
    return lim;
  }
  throw InputError(std::string("PACHECK_PROPERTY_LEVEL=") + level + ": expected ci or nightly");
}

rc::Gen<int32_t> context_len(int32_t block, int32_t partition, int32_t q_len, const Limits& lim, bool fixed_partition) {
  return rc::gen::exec([=]() {
    const int32_t B = block, P = partition;
    std::vector<int32_t> boundary = {1,         2,     B - 1, B,     B + 1,           2 * B - 1,       2 * B, 2 * B + 1,
                                     3 * B + 1, P - 1, P,     P + 1, 2 * P + 1, lim.max_context, lim.long_context};
    // A fixed split (vLLM v2's 512 tokens) is a kernel's own edge whatever the case says: its
    // second multiple and that one's lower neighbour too.
    if (fixed_partition) boundary.insert(boundary.begin() + 12, {2 * P - 1, 2 * P});
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

std::vector<DType> drawable_kv_dtypes(const Capability& cap, const Device& dev) {
  std::vector<DType> out;
  for (DType t : mask_values<DType>(cap.kv_dtypes, kDTypeCount))
    if (t != DType::fp32 && (!is_e4m3(t) || t == dev.native_fp8)) out.push_back(t);  // fp32 is no cache dtype
  return out;
}

int64_t aligned_page_pad(int64_t dense_stride, int64_t pad, int32_t align) {
  if (align <= 1) return pad;
  const int64_t rem = (dense_stride + pad) % align;
  return rem ? pad + (align - rem) : pad;
}

rc::Gen<Case> case_in(const Kernel& k, const Device& dev, const Limits& lim, const Weights& w, std::optional<DType> kv) {
  const Kernel* kp = &k;
  return rc::gen::exec([=]() {
    const Capability& cap = kp->info().capability;
    Case c;
    std::vector<KvLayout> layouts;
    for (KvLayout l : mask_values<KvLayout>(cap.layouts, kKvLayoutCount)) {
      const std::vector<DType> kvs = kv_dtypes_for(cap, l, dev);
      if (kv ? std::find(kvs.begin(), kvs.end(), *kv) != kvs.end() : !kvs.empty()) layouts.push_back(l);
    }
    c.kv_layout = pick(layouts, "kv_layout (no declared layout has a dtype, scale and shape this device takes)");
    c.kv_dtype = kv ? *kv : pick_kv(kv_dtypes_for(cap, c.kv_layout, dev), w.eight_bit);
    c.q_dtype = pick(mask_values<DType>(cap.q_dtypes & (bit(DType::bf16) | bit(DType::fp16)), 2), "q_dtype");
    c.kv_scale = pick(scales_for(cap, c.kv_dtype), "kv_scale");
    c.head_size = pick(modest(heads_for(cap, c.kv_layout, c.kv_dtype), w.max_head), "head_size");
    c.block_size = pick(modest(blocks_for(cap, c.kv_layout, c.kv_dtype, c.head_size), w.max_block), "block_size");
    const bool mla = is_mla(c.kv_layout);
    if (mla) {
      // A latent cache: one KV head, V the latent prefix of K, many query heads -- the native
      // counts and the ones libraries pad or fold (12 and 8 shrink first: they are the padded
      // counts), up to the workload's head cap (at least 16: MLA has no fewer).
      std::vector<int32_t> dvs;
      for (int32_t dv : cap.head_sizes_v)
        if (dv < c.head_size) dvs.push_back(dv);
      c.head_size_v = pick(dvs, "head_size_v (an MLA layout needs Dv < D)");
      std::vector<int32_t> hq;
      for (int32_t h : {16, 12, 8, 32, 20, 24, 40, 64, 128})
        if (h <= cap.max_gqa && h <= std::max(16, lim.max_q_heads)) hq.push_back(h);
      c.num_kv_heads = 1;
      c.num_q_heads = pick(hq, "MLA query heads");
    } else {
      const std::vector<int32_t> groups = gqa_for(cap, lim);
      std::vector<int32_t> grouped;  // G > 1
      for (int32_t g : groups)
        if (g > 1) grouped.push_back(g);
      const bool mha = std::find(groups.begin(), groups.end(), 1) != groups.end();
      int32_t g = 1;
      if (grouped.empty()) g = pick(groups, "gqa");  // MHA only (or nothing: a discard)
      else if (!mha || chance(w.gqa)) g = pick(grouped, "gqa");
      const int32_t max_kv = std::max(1, lim.max_q_heads / g);
      c.num_kv_heads = *rc::gen::inRange<int32_t>(1, std::min(max_kv, 4) + 1);
      c.num_q_heads = c.num_kv_heads * g;
    }
    const int32_t g = c.gqa();
    int32_t max_q = std::min(cap.max_q_len, kMaxUniformQLen);
    if (cap.max_q_len_x_gqa) max_q = std::min(max_q, cap.max_q_len_x_gqa / g);
    c.q_len = max_q > 1 && chance(w.mtp) ? *rc::gen::inRange<int32_t>(2, std::min(max_q, 4) + 1) : 1;
    if (cap.partition_multiple_of_block) c.partition_size = *partition_size(c.block_size);
    const Options opts{cap.custom_softmax_scale, cap.sliding_window, cap.logit_softcap, cap.alibi, cap.sinks};
    const int32_t split_at = cap.fixed_partition > 0 ? cap.fixed_partition : c.partition_size;
    draw_tail(c, lim, w, opts, cap.strided_pages, cap.max_context, split_at, cap.fixed_partition > 0,
              cap.page_stride_align);
    draw_ragged_family(c, cap, lim, w, split_at, cap.fixed_partition > 0);
    // MLA models keep the softmax scale of their original head (DeepSeek: 1/sqrt(192)), never
    // 1/sqrt(576): drawn in most MLA cases, shrinking toward the default.
    if (mla && cap.custom_softmax_scale && chance(80)) c.softmax_scale = 0.07216878364870322;
    if (c.head_size_v && cap.strided_pages && cap.page_stride_align > 1)  // V's stride, aligned too
      c.page_pad = aligned_page_pad(c.page_stride_v() - c.page_pad, c.page_pad, cap.page_stride_align);
    // Now and then a pool big enough for page ids > 65535, only where pages are tiny (the pool
    // is allocated and poisoned whole).
    if (lim.big_pools && int64_t(c.num_kv_heads) * c.block_size * c.head_size <= 512 && chance(w.big_pool))
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
    c.kv_dtype = pick({DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8, DType::fp8_e5m2});
    c.q_dtype = pick({DType::bf16, DType::fp16});
    c.kv_scale = pick({ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head, ScaleMode::per_token_block_major,
                       ScaleMode::per_token_head_major});
    if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none) c.kv_scale = ScaleMode::per_tensor;
    c.head_size = pick<int32_t>({64, 128, 256, 80, 96, 112, 192, 48, 16});
    const bool mla = chance(15);  // a latent cache: the MLA routing rule's cases
    c.block_size = pick<int32_t>({16, 32, 1, 8, 64, 128, 256, 48});
    const int32_t x = 16 / dtype_bytes(c.kv_dtype);
    if (c.kv_layout != KvLayout::nhd && c.kv_layout != KvLayout::hnd) {
      if (c.head_size % x) c.head_size = (c.head_size / x + 1) * x;
      if (c.kv_layout == KvLayout::shuffled && c.block_size % x) c.block_size = (c.block_size / x + 1) * x;
    }
    const int32_t g = pick(kGqa, "gqa");
    c.num_kv_heads = *rc::gen::inRange<int32_t>(1, 3);
    c.num_q_heads = c.num_kv_heads * g;
    if (mla) {
      c.kv_layout = pick({KvLayout::mla_joint, KvLayout::mla_split});
      c.head_size = 576;
      c.head_size_v = 512;
      c.num_kv_heads = 1;
      c.num_q_heads = pick<int32_t>({16, 12, 8, 32, 20, 24, 40, 64, 128, 256});
      if (c.kv_dtype == DType::int8 || c.kv_dtype == DType::fp8_e5m2) c.kv_dtype = DType::bf16;
      if (c.kv_scale != ScaleMode::none) c.kv_scale = ScaleMode::per_tensor;
    }
    c.q_len = pick<int32_t>({1, 2, 4, 8, 16});
    c.partition_size = pick<int32_t>({256, 512, 128, 100});
    draw_tail(c, lim, Weights{}, Options{true, true, true, true, true}, true, 0, c.partition_size, false, 1);
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

Case sample(const rc::Gen<Case>& g, uint64_t seed, const std::string& what) {
  constexpr int kMaxDiscards = 10000;
  std::string last;
  for (uint64_t i = 0; i < kMaxDiscards; ++i) {
    try {
      return g(rc::Random(mix64(seed + i)), kFullSize).value();
    } catch (const rc::GenerationFailure& e) {
      last = e.what();  // a draw the generator discards: the next seed of the sequence
    }
  }
  throw InputError(what + ": " + std::to_string(kMaxDiscards) + " draws in a row were discarded; last: " + last);
}

}  // namespace pa::gen
