#include "core/capability.hpp"

#include <algorithm>
#include <cmath>

namespace pa {

namespace {

// The ABI's ids are the DType / KvLayout / ScaleMode values themselves; these pin that down.
static_assert(PACHECK_DTYPE_BF16 == int(DType::bf16) && PACHECK_DTYPE_FP16 == int(DType::fp16) &&
              PACHECK_DTYPE_FP8_E4M3FN == int(DType::fp8_e4m3fn) &&
              PACHECK_DTYPE_FP8_E4M3FNUZ == int(DType::fp8_e4m3fnuz) &&
              PACHECK_DTYPE_INT8 == int(DType::int8) && PACHECK_DTYPE_FP32 == int(DType::fp32) &&
              PACHECK_DTYPE_FP8_E5M2 == int(DType::fp8_e5m2) && PACHECK_DTYPE_COUNT_ == kDTypeCount);
static_assert(PACHECK_LAYOUT_NHD == int(KvLayout::nhd) && PACHECK_LAYOUT_HND == int(KvLayout::hnd) &&
              PACHECK_LAYOUT_VLLM == int(KvLayout::vllm) && PACHECK_LAYOUT_SHUFFLED == int(KvLayout::shuffled) &&
              PACHECK_LAYOUT_MLA_JOINT == int(KvLayout::mla_joint) &&
              PACHECK_LAYOUT_MLA_SPLIT == int(KvLayout::mla_split) && PACHECK_LAYOUT_COUNT_ == kKvLayoutCount);
static_assert(PACHECK_TABLE_PADDED == int(PageTable::padded) && PACHECK_TABLE_CSR == int(PageTable::csr) &&
              PACHECK_TABLE_COUNT_ == kPageTableCount);
static_assert(PACHECK_SCALE_NONE == int(ScaleMode::none) && PACHECK_SCALE_PER_TENSOR == int(ScaleMode::per_tensor) &&
              PACHECK_SCALE_PER_HEAD == int(ScaleMode::per_head) &&
              PACHECK_SCALE_PER_TOKEN_BLOCK_MAJOR == int(ScaleMode::per_token_block_major) &&
              PACHECK_SCALE_PER_TOKEN_HEAD_MAJOR == int(ScaleMode::per_token_head_major));

template <class E>
std::string mask_names(uint32_t mask, int count, const char* (*name)(E)) {
  std::string s = "{";
  for (int i = 0; i < count; ++i)
    if (mask & (1u << i)) s += std::string(s.size() > 1 ? "," : "") + name(E(i));
  return s + "}";
}
std::string list(const std::vector<int32_t>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}
bool has(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// A field may be read only when the writer's struct reaches past it.
template <class S, class F>
void need_field(const S* s, const F S::*field, const char* field_name, const std::string& where,
                const char* struct_name) {
  const size_t end = size_t(reinterpret_cast<const char*>(&(s->*field)) - reinterpret_cast<const char*>(s)) + sizeof(F);
  if (s->struct_size < end)
    throw InputError(where + ": " + struct_name + ".struct_size=" + std::to_string(s->struct_size) +
                     " is too small for field '" + field_name + "' (needs " + std::to_string(end) + ")");
}

uint32_t checked_mask(uint32_t mask, int count, const char* field, const std::string& where) {
  if (mask >> count)
    throw InputError(where + ": capability." + field + " has unknown id(s) in mask 0x" +
                     [&] { char b[16]; std::snprintf(b, sizeof b, "%x", mask >> count << count); return std::string(b); }() +
                     " (known ids are 0.." + std::to_string(count - 1) + ")");
  return mask;
}

std::vector<int32_t> checked_list(const int32_t* v, uint32_t n, const char* field, const std::string& where,
                                  int32_t lo, int32_t hi) {
  if (n > 0 && !v) throw InputError(where + ": capability." + field + " is NULL with a count of " + std::to_string(n));
  std::vector<int32_t> out(v, v + n);
  for (int32_t x : out)
    if (x < lo || x > hi)
      throw InputError(where + ": capability." + field + " holds " + std::to_string(x) + ", outside [" +
                       std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return out;
}

// The 1.0 fields take a bare dtype id; the fields of minor 1 read 0 as "kept in fp32" (a
// zero-initialized struct declares nothing) and so name a dtype through PACHECK_ROUND_TO only.
RoundTo rounding_from_abi(int32_t r, const char* field, const std::string& where, bool zero_is_none = false) {
  if (r == PACHECK_ROUND_NONE || (zero_is_none && r == 0)) return {};
  if (r == PACHECK_ROUND_AS_Q) return {std::nullopt, true};
  if (r >= PACHECK_ROUND_TO(0) && r < PACHECK_ROUND_TO(kDTypeCount)) return {DType(r - PACHECK_ROUND_TO(0)), false};
  if (!zero_is_none && r >= 0 && r < int32_t(kDTypeCount)) return {DType(r), false};
  throw InputError(where + ": numerics." + field + "=" + std::to_string(r) + " is not " +
                   (zero_is_none ? "0, " : "a dtype id, ") +
                   "PACHECK_ROUND_NONE, PACHECK_ROUND_AS_Q or PACHECK_ROUND_TO(dtype)");
}

Roundings roundings_from_abi(const pacheck_numerics* n, const std::string& where) {
  need_field(n, &pacheck_numerics::partial_round, "partial_round", where, "pacheck_numerics");
  Roundings r{rounding_from_abi(n->p_round, "p_round", where), rounding_from_abi(n->qk_round, "qk_round", where),
              rounding_from_abi(n->partial_round, "partial_round", where), {}, {}};
  if (PACHECK_HAS_FIELD(n, pacheck_numerics, pv_round)) {
    r.v = rounding_from_abi(n->v_round, "v_round", where, true);
    r.pv = rounding_from_abi(n->pv_round, "pv_round", where, true);
  }
  return r;
}

double unit_of(const RoundTo& r, const Case& c) {
  if (r.as_q) return codec::unit_roundoff(c.q_dtype);
  return r.to ? codec::unit_roundoff(*r.to) : 0.0;
}

std::string rounding_name(const RoundTo& r) {
  return r.as_q ? "q dtype" : r.to ? to_string(*r.to) : "fp32";
}

}  // namespace

const Roundings& Numerics::for_kv(DType kv) const {
  for (const ForKv& f : by_kv)
    if (f.kv_dtypes & bit(kv)) return f.r;
  return base;
}

ErrorModel error_model(const Numerics& n, const Case& c) {
  const Roundings& r = n.for_kv(c.kv_dtype);
  ErrorModel em;
  em.out = c.q_dtype;
  em.u_p = unit_of(r.p, c);
  em.u_q = unit_of(r.qk, c);
  em.u_tmp = unit_of(r.partial, c);
  em.u_v = unit_of(r.v, c);
  em.u_pv = unit_of(r.pv, c);
  return em;
}

int32_t padded_gqa(const Capability& cap, int32_t gqa) {
  for (int32_t t : cap.gqa_tiles)
    if (gqa <= t) return t;
  return gqa;
}

std::optional<std::string> decline_reason(const Capability& cap, const Case& c, const Device& dev) {
  const auto S = [](auto v) { return std::to_string(v); };
  // The flavour check comes first: it holds for every kernel on this device, and it is the most
  // dangerous mismatch (fp8 bytes decoded in the wrong flavour are off by factors of 2), so
  // every kernel's reason names both flavours.
  if (is_e4m3(c.kv_dtype) && c.kv_dtype != dev.native_fp8)
    return std::string("kv_dtype=") + to_string(c.kv_dtype) + " but device " + dev.name +
           " decodes fp8 as " + to_string(dev.native_fp8) + " (wrong flavour gives factor-2 errors)";
  if (!(cap.q_dtypes & bit(c.q_dtype)))
    return std::string("q_dtype=") + to_string(c.q_dtype) + " not in " + mask_names<DType>(cap.q_dtypes, kDTypeCount, to_string);
  if (!(cap.layouts & bit(c.kv_layout)))
    return std::string("kv_layout=") + to_string(c.kv_layout) + " not in " +
           mask_names<KvLayout>(cap.layouts, kKvLayoutCount, to_string);
  if (!(cap.kv_dtypes & bit(c.kv_dtype)))
    return std::string("kv_dtype=") + to_string(c.kv_dtype) + " not in " +
           mask_names<DType>(cap.kv_dtypes, kDTypeCount, to_string);
  if (!(cap.scales & bit(c.kv_scale)))
    return std::string("kv_scale=") + to_string(c.kv_scale) + " not in " +
           mask_names<ScaleMode>(cap.scales, 5, to_string);
  if (cap.needs_token_scales_for_8bit && is_8bit(c.kv_dtype) && !is_per_token(c.kv_scale))
    return std::string("kv_scale=") + to_string(c.kv_scale) + " with 8-bit KV: needs per-token scales";
  if (cap.scales_for_8bit_only && !is_8bit(c.kv_dtype) && c.kv_scale != ScaleMode::none)
    return std::string("kv_scale=") + to_string(c.kv_scale) + " with 16-bit KV (" + to_string(c.kv_dtype) +
           "): the kernel reads 16-bit caches without scales (ONLY_SCALES_ON_8BIT)";
  if (!has(cap.head_sizes, c.head_size))
    return "head_size=" + S(c.head_size) + " not in " + list(cap.head_sizes);
  if (c.dv() != c.head_size && !has(cap.head_sizes_v, c.dv()))
    return "head_size_v=" + S(c.dv()) + " (with head_size=" + S(c.head_size) + ") not in " +
           (cap.head_sizes_v.empty() ? std::string("{head_size}: the kernel takes Dv == D only") : list(cap.head_sizes_v));
  if (c.ragged() && !cap.ragged)
    return "q_lens=" + list(c.q_lens) + ": a ragged batch (per-sequence q_len) is not supported";
  if (c.has_empty_rows() && !cap.empty_rows)
    return "context_lens holds 0: empty sequences (EMPTY_ROWS) are not supported";
  if (!(cap.page_tables & bit(c.page_table)))
    return std::string("page_table=") + to_string(c.page_table) + " not in " +
           mask_names<PageTable>(cap.page_tables, kPageTableCount, to_string);
  if (!has(cap.block_sizes, c.block_size))
    return "block_size=" + S(c.block_size) + " not in " + list(cap.block_sizes);
  const int32_t g = c.gqa();
  if (g > cap.max_gqa) return "gqa=" + S(g) + " above " + S(cap.max_gqa);
  if (c.q_len > cap.max_q_len)
    return (c.ragged() ? "max q_len=" : "q_len=") + S(c.q_len) + " above " + S(cap.max_q_len);
  if (cap.max_q_len_x_gqa && c.q_len * g > cap.max_q_len_x_gqa)
    return "q_len*gqa=" + S(c.q_len) + "*" + S(g) + " above " + S(cap.max_q_len_x_gqa);
  if (cap.max_context && c.max_context() > cap.max_context)
    return "max context " + S(c.max_context()) + " above " + S(cap.max_context);
  if (c.page_pad > 0 && !cap.strided_pages)
    return "page_pad=" + S(c.page_pad) + ": strided pages (page_stride above the dense page) not supported";
  if (cap.page_stride_align > 1 && c.page_stride() % cap.page_stride_align != 0)
    return "page_stride=" + S(c.page_stride()) + " (page_pad=" + S(c.page_pad) +
           ") is not a multiple of page_stride_align=" + S(cap.page_stride_align) + " elements";
  if (cap.partition_multiple_of_block &&
      (c.partition_size < c.block_size || c.partition_size % c.block_size != 0))
    return "partition_size=" + S(c.partition_size) + " is not a multiple of block_size=" + S(c.block_size);
  if (c.softmax_scale > 0 && !cap.custom_softmax_scale)
    return "softmax_scale=" + S(c.softmax_scale) + ": only the default 1/sqrt(D) is supported";
  if (c.sliding_window > 0 && !cap.sliding_window)
    return "sliding_window=" + S(c.sliding_window) + ": not supported";
  if (c.logit_softcap > 0 && !cap.logit_softcap)
    return "logit_softcap=" + S(c.logit_softcap) + ": not supported";
  if (c.alibi && !cap.alibi) return "alibi: not supported";
  if (c.sinks && !cap.sinks) return "sinks: not supported";
  return std::nullopt;
}

Capability capability_from_abi(const pacheck_capability* c, const std::string& where) {
  if (!c) throw InputError(where + ": descriptor.capability is NULL");
#define PA_NEED(field) need_field(c, &pacheck_capability::field, #field, where, "pacheck_capability")
  PA_NEED(flags);
#undef PA_NEED
  Capability cap;
  cap.q_dtypes = checked_mask(c->q_dtypes, kDTypeCount, "q_dtypes", where);
  cap.kv_dtypes = checked_mask(c->kv_dtypes, kDTypeCount, "kv_dtypes", where);
  cap.layouts = checked_mask(c->kv_layouts, PACHECK_LAYOUT_COUNT_, "kv_layouts", where);
  cap.scales = checked_mask(c->scale_modes, PACHECK_SCALE_COUNT_, "scale_modes", where);
  cap.head_sizes = checked_list(c->head_sizes, c->num_head_sizes, "head_sizes", where, 1, 1024);
  cap.block_sizes = checked_list(c->block_sizes, c->num_block_sizes, "block_sizes", where, 1, 4096);
  cap.gqa_tiles = checked_list(c->gqa_tiles, c->num_gqa_tiles, "gqa_tiles", where, 1, 1 << 20);
  std::sort(cap.gqa_tiles.begin(), cap.gqa_tiles.end());
  if (c->max_gqa < 0)
    throw InputError(where + ": capability.max_gqa=" + std::to_string(c->max_gqa) +
                     " is negative (PACHECK_NO_LIMIT, 0, means no limit)");
  cap.max_gqa = c->max_gqa == PACHECK_NO_LIMIT ? kNoGqaLimit : c->max_gqa;
  cap.max_q_len = c->max_q_len;
  cap.max_q_len_x_gqa = c->max_q_len_x_gqa;
  cap.max_context = c->max_context;
  const uint32_t f = c->flags;
  constexpr uint32_t kKnown = PACHECK_CAP_ENABLING_FLAGS | PACHECK_CAP_RESTRICTING_FLAGS | PACHECK_CAP_PROMISE_FLAGS;
  if (f & ~kKnown)
    throw InputError(where + ": capability.flags has unknown bits 0x" +
                     [&] { char b[16]; std::snprintf(b, sizeof b, "%x", f & ~kKnown); return std::string(b); }());
  cap.strided_pages = f & PACHECK_CAP_STRIDED_PAGES;
  cap.custom_softmax_scale = f & PACHECK_CAP_CUSTOM_SCALE;
  cap.sliding_window = f & PACHECK_CAP_SLIDING_WINDOW;
  cap.logit_softcap = f & PACHECK_CAP_LOGIT_SOFTCAP;
  cap.alibi = f & PACHECK_CAP_ALIBI;
  cap.sinks = f & PACHECK_CAP_SINKS;
  cap.lse = f & PACHECK_CAP_LSE;
  cap.partition_multiple_of_block = f & PACHECK_CAP_ONLY_PAGE_PARTITIONS;
  cap.needs_token_scales_for_8bit = f & PACHECK_CAP_ONLY_TOKEN_SCALES_ON_8BIT;
  cap.scales_for_8bit_only = f & PACHECK_CAP_ONLY_SCALES_ON_8BIT;
  // Minor 3's promises (the plan step itself is a descriptor field: the kernel sets cap.plan).
  cap.plan_covers_shorter = f & PACHECK_CAP_PLAN_COVERS_SHORTER;
  cap.graph_safe = f & PACHECK_CAP_GRAPH_SAFE;
  cap.deterministic = f & PACHECK_CAP_DETERMINISTIC;
  // Minor 1: a 1.0 struct ends before these, and their defaults are 1.0's behaviour.
  if (PACHECK_HAS_FIELD(c, pacheck_capability, fixed_partition)) {
    if (c->fixed_partition < 0 || c->fixed_partition > (1 << 24))
      throw InputError(where + ": capability.fixed_partition=" + std::to_string(c->fixed_partition) +
                       " is outside [0, 2^24] (0 = no fixed partition)");
    cap.fixed_partition = c->fixed_partition;
  }
  if (PACHECK_HAS_FIELD(c, pacheck_capability, page_stride_align)) {
    if (c->page_stride_align < 0 || c->page_stride_align > 4096)
      throw InputError(where + ": capability.page_stride_align=" + std::to_string(c->page_stride_align) +
                       " is outside [0, 4096] elements (0 or 1 = any stride)");
    cap.page_stride_align = std::max(c->page_stride_align, 1);
  }
  // Minor 2.
  cap.ragged = f & PACHECK_CAP_RAGGED;
  cap.empty_rows = f & PACHECK_CAP_EMPTY_ROWS;
  if (PACHECK_HAS_FIELD(c, pacheck_capability, lse_base)) {
    if (c->page_tables)
      cap.page_tables = checked_mask(c->page_tables, PACHECK_TABLE_COUNT_, "page_tables", where);
    cap.head_sizes_v = checked_list(c->head_sizes_v, c->num_head_sizes_v, "head_sizes_v", where, 1, 1024);
    if (c->lse_base != PACHECK_LSE_NATURAL && c->lse_base != PACHECK_LSE_BASE2)
      throw InputError(where + ": capability.lse_base=" + std::to_string(c->lse_base) +
                       " is neither PACHECK_LSE_NATURAL (0) nor PACHECK_LSE_BASE2 (2)");
    cap.lse_base2 = c->lse_base == PACHECK_LSE_BASE2;
  } else if (f & (PACHECK_CAP_RAGGED | PACHECK_CAP_EMPTY_ROWS)) {
    throw InputError(where + ": capability.flags sets RAGGED or EMPTY_ROWS (ABI minor 2) in a struct of an "
                     "earlier minor (struct_size=" + std::to_string(c->struct_size) + ")");
  }
  check_admits_something(cap, where);
  return cap;
}

void check_admits_something(const Capability& cap, const std::string& where) {
  const auto empty = [&](bool e, const char* what) {
    if (e) throw InputError(where + ": capability." + what + " admits nothing");
  };
  empty(!cap.q_dtypes, "q_dtypes");
  empty(!cap.kv_dtypes, "kv_dtypes");
  empty(!cap.layouts, "kv_layouts");
  empty(!cap.scales, "scale_modes");
  empty(cap.head_sizes.empty(), "head_sizes");
  empty(cap.block_sizes.empty(), "block_sizes");
  empty(cap.max_gqa < 1, "max_gqa");
  empty(cap.max_q_len < 1, "max_q_len");
}

Numerics numerics_from_abi(const pacheck_numerics* n, const std::string& where, const pacheck_numerics* const* by_kv,
                           uint32_t count) {
  Numerics out;
  if (n) out.base = roundings_from_abi(n, where);  // no declaration: everything fp32, only the output rounds
  if (count > 0 && !by_kv)
    throw InputError(where + ": numerics_by_kv is NULL with num_numerics_by_kv=" + std::to_string(count));
  if (count > 64)
    throw InputError(where + ": num_numerics_by_kv=" + std::to_string(count) + " is more than 64 entries");
  for (uint32_t i = 0; i < count; ++i) {
    const std::string at = where + " numerics_by_kv[" + std::to_string(i) + "]";
    if (!by_kv[i]) throw InputError(at + " is NULL");
    need_field(by_kv[i], &pacheck_numerics::kv_dtypes, "kv_dtypes", at, "pacheck_numerics");
    Numerics::ForKv f;
    f.kv_dtypes = by_kv[i]->kv_dtypes;
    if (!f.kv_dtypes) throw InputError(at + ": kv_dtypes is 0 (the entry would govern no KV dtype)");
    if (f.kv_dtypes >> kDTypeCount)
      throw InputError(at + ": kv_dtypes has unknown id(s) (known ids are 0.." + std::to_string(kDTypeCount - 1) + ")");
    f.r = roundings_from_abi(by_kv[i], at);
    out.by_kv.push_back(f);
  }
  return out;
}

pacheck_problem problem_of(const Case& c) {
  pacheck_problem p{};
  p.struct_size = sizeof p;
  p.num_seqs = c.num_seqs;
  p.q_len = c.q_len;
  p.num_q_heads = c.num_q_heads;
  p.num_kv_heads = c.num_kv_heads;
  p.head_size = c.head_size;
  p.block_size = c.block_size;
  p.max_blocks_per_seq = c.max_blocks_per_seq();
  p.max_context = c.max_context();
  p.num_blocks = c.pool_blocks();
  p.page_stride = c.page_stride();
  p.q_dtype = int32_t(c.q_dtype);
  p.kv_dtype = int32_t(c.kv_dtype);
  p.kv_layout = int32_t(c.kv_layout);
  p.scale_mode = int32_t(c.kv_scale);
  p.softmax_scale = c.effective_softmax_scale();
  p.sliding_window = c.sliding_window;
  p.logit_softcap = c.logit_softcap;
  p.has_alibi = c.alibi;
  p.has_sinks = c.sinks;
  p.partition_size = c.partition_size;
  p.want_lse = 1;
  p.head_size_v = c.dv();
  p.total_q = int32_t(c.total_q());
  p.max_q_len = c.q_len;
  if (c.ragged()) p.q_len = 0;  // ragged: a kernel reads cu_seqlens_q
  p.page_table = int32_t(c.page_table);
  p.num_kv_indices = c.page_table == PageTable::csr ? int32_t(c.used_blocks()) : 0;
  p.page_stride_v = c.page_stride_v();
  return p;
}

std::vector<std::pair<std::string, std::string>> describe(const Capability& cap) {
  const auto flag = [](bool b) { return std::string(b ? "yes" : "no"); };
  return {{"q_dtypes", mask_names<DType>(cap.q_dtypes, kDTypeCount, to_string)},
          {"kv_dtypes", mask_names<DType>(cap.kv_dtypes, kDTypeCount, to_string)},
          {"kv_layouts", mask_names<KvLayout>(cap.layouts, kKvLayoutCount, to_string)},
          {"scale_modes", mask_names<ScaleMode>(cap.scales, 5, to_string)},
          {"head_sizes", list(cap.head_sizes)},
          {"block_sizes", list(cap.block_sizes)},
          {"max_gqa", cap.max_gqa >= kNoGqaLimit ? "no limit" : std::to_string(cap.max_gqa)},
          {"gqa_tiles", cap.gqa_tiles.empty() ? "-" : list(cap.gqa_tiles)},
          {"max_q_len", std::to_string(cap.max_q_len)},
          {"max_q_len_x_gqa", cap.max_q_len_x_gqa ? std::to_string(cap.max_q_len_x_gqa) : "-"},
          {"max_context", cap.max_context ? std::to_string(cap.max_context) : "-"},
          {"strided_pages", flag(cap.strided_pages)},
          {"fixed_partition", cap.fixed_partition ? std::to_string(cap.fixed_partition) + " tokens" : "-"},
          {"page_stride_align", cap.page_stride_align > 1 ? std::to_string(cap.page_stride_align) + " elements" : "-"},
          {"only_page_partitions", flag(cap.partition_multiple_of_block)},
          {"only_token_scales_on_8bit", flag(cap.needs_token_scales_for_8bit)},
          {"only_scales_on_8bit", flag(cap.scales_for_8bit_only)},
          {"custom_scale", flag(cap.custom_softmax_scale)},
          {"sliding_window", flag(cap.sliding_window)},
          {"logit_softcap", flag(cap.logit_softcap)},
          {"alibi", flag(cap.alibi)},
          {"sinks", flag(cap.sinks)},
          {"lse", flag(cap.lse)},
          {"ragged", flag(cap.ragged)},
          {"empty_rows", flag(cap.empty_rows)},
          {"page_tables", mask_names<PageTable>(cap.page_tables, kPageTableCount, to_string)},
          {"head_sizes_v", cap.head_sizes_v.empty() ? "-" : list(cap.head_sizes_v)},
          {"lse_base", cap.lse_base2 ? "2" : "e"},
          {"plan_step", flag(cap.plan)},
          {"plan_covers_shorter", flag(cap.plan_covers_shorter)},
          {"graph_safe", flag(cap.graph_safe)},
          {"deterministic", flag(cap.deterministic)}};
}

namespace {
std::string describe(const Roundings& r) {
  return "P rounded to " + rounding_name(r.p) + ", Q.K operands to " + rounding_name(r.qk) + ", V to " +
         rounding_name(r.v) + ", P.V sums to " + rounding_name(r.pv) + ", split-K partials to " +
         rounding_name(r.partial);
}
}  // namespace

std::string describe(const Numerics& n) {
  std::string s = describe(n.base);
  for (const Numerics::ForKv& f : n.by_kv)
    s += "; for KV " + mask_names<DType>(f.kv_dtypes, kDTypeCount, to_string) + ": " + describe(f.r);
  return s + "; output to the q dtype";
}

}  // namespace pa
