#include "mutate/contract_mutants.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

#include "core/problem.hpp"

namespace pa {

namespace {

constexpr ContractMutantInfo kCatalogue[] = {
    {ContractMutant::v_layout_index, "v_layout_index",
     "layout: V indexed as the neighbouring layout family (shuffled read as vllm, ...)", false},
    {ContractMutant::dense_page_stride, "dense_page_stride",
     "strided pages: a hybrid model's cache view read as if pages were dense", false},
    {ContractMutant::token_scale_logical_index, "token_scale_logical_index",
     "per-token scales indexed by the logical page t / B instead of the physical one", false},
    {ContractMutant::per_token_scale_as_per_tensor, "per_token_scale_as_per_tensor",
     "per-token scales read as one per-tensor scale", false},
    {ContractMutant::per_tensor_scale_ignored, "per_tensor_scale_ignored",
     "writer/reader scale mismatch: the per-tensor scale is never applied", false},
    {ContractMutant::fp8_wrong_flavour, "fp8_wrong_flavour",
     "fp8 flavour: e4m3fnuz bytes decoded as e4m3fn and vice versa (factor-2 errors)", false},
    {ContractMutant::drop_custom_scale, "drop_custom_scale",
     "model option dropped: the case's softmax scale replaced by 1/sqrt(D)", false},
    {ContractMutant::drop_softcap, "drop_softcap", "model option dropped: logit soft-cap ignored", false},
    {ContractMutant::drop_window, "drop_window", "model option dropped: sliding window ignored", false},
    {ContractMutant::drop_sinks, "drop_sinks", "model option dropped: attention sinks ignored", false},
    {ContractMutant::gqa_h_mod_hkv, "gqa_h_mod_hkv",
     "GQA head mapping: query head h reads KV head h % Hkv instead of h / G", false},
    {ContractMutant::unused_slot_read, "unused_slot_read",
     "off by one: a key past the query's position (an unused, poisoned slot) is read", false},
    {ContractMutant::head_size_routing, "head_size_routing",
     "routing: the dispatcher's table claims a head size the kernel does not implement", false},
    {ContractMutant::block_size_routing, "block_size_routing",
     "routing: the dispatcher's table claims a block size the kernel has no variant for", false},
    {ContractMutant::output_scaled_1_03, "output_scaled_1_03",
     "aggregate error: every output 3 % too large (a stray scale factor)", true},
    {ContractMutant::output_truncated, "output_truncated",
     "aggregate error: output rounded toward zero instead of to nearest (a bias of half an ulp)", true},
    {ContractMutant::lse_plus_log2, "lse_plus_log2",
     "aggregate error: LSE off by log 2 (the denominator counted twice)", true},
};

// info(m) indexes the table by id.
constexpr bool catalogue_in_enum_order() {
  for (size_t i = 0; i < std::size(kCatalogue); ++i)
    if (kCatalogue[i].id != ContractMutant(i)) return false;
  return true;
}
static_assert(catalogue_in_enum_order(), "kCatalogue must list the mutants in ContractMutant order");

bool has(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// The sizes a routing table most often claims by mistake: the common model head sizes and the
// page sizes serving stacks use. A routing mutant adds the first one the kernel lacks above its
// largest declared value (else the first it lacks at all).
std::optional<int32_t> missing_size(const std::vector<int32_t>& declared, std::initializer_list<int32_t> common) {
  const int32_t top = declared.empty() ? 0 : *std::max_element(declared.begin(), declared.end());
  for (int32_t v : common)
    if (!has(declared, v) && v > top) return v;
  for (int32_t v : common)
    if (!has(declared, v)) return v;
  return std::nullopt;
}
std::optional<int32_t> extra_head_size(const Capability& cap) { return missing_size(cap.head_sizes, {64, 128, 256}); }
std::optional<int32_t> extra_block_size(const Capability& cap) { return missing_size(cap.block_sizes, {16, 32}); }

bool routing_mutant(ContractMutant m) {
  return m == ContractMutant::head_size_routing || m == ContractMutant::block_size_routing;
}

KernelInfo mutant_info(const KernelPtr& inner, ContractMutant m) {
  if (!inner) throw InputError(std::string("mutate(") + to_string(m) + "): the inner kernel is null");
  KernelInfo i = inner->info();
  i.provenance += std::string(i.provenance.empty() ? "" : "; ") + "with planted contract mutant " + to_string(m);
  if (m == ContractMutant::head_size_routing)
    if (auto d = extra_head_size(i.capability)) i.capability.head_sizes.push_back(*d);
  if (m == ContractMutant::block_size_routing)
    if (auto b = extra_block_size(i.capability)) i.capability.block_sizes.push_back(*b);
  return i;
}

/// The declared value of `declared` nearest to `v` (the variant a mis-routed launch runs).
int32_t nearest(const std::vector<int32_t>& declared, int32_t v) {
  int32_t best = declared.front();
  for (int32_t d : declared)
    if (std::abs(d - v) < std::abs(best - v)) best = d;
  return best;
}

// ---- buffer helpers ---------------------------------------------------------------------------

struct Dims {
  int32_t hkv, B, D, eb;
  int64_t nb;
  KvLayout kind;
  explicit Dims(const pacheck_problem& p)
      : hkv(p.num_kv_heads), B(p.block_size), D(p.head_size), eb(dtype_bytes(DType(p.kv_dtype))),
        nb(p.num_blocks), kind(KvLayout(p.kv_layout)) {}
  PageLayout layout(KvLayout k, KvTensor t, int32_t heads, int64_t stride) const {
    return make_page_layout(k, t, heads, B, D, eb, stride);
  }
};

/// The re-layouts below model K and V of one head size: with Dv != D (ABI minor 2) they plant nothing.
bool one_head_size(const pacheck_problem& p) { return head_size_v(p) == p.head_size; }

/// Visits every element (blk, h, tok, d) of every page of a pool with `heads` heads.
template <class F>
void for_each_element(const Dims& dm, int32_t heads, F f) {
  for (int64_t blk = 0; blk < dm.nb; ++blk)
    for (int32_t h = 0; h < heads; ++h)
      for (int32_t tok = 0; tok < dm.B; ++tok)
        for (int32_t d = 0; d < dm.D; ++d) f(blk, h, tok, d);
}

void copy_elem(std::vector<uint8_t>& dst, int64_t di, const View<uint8_t>& src, int64_t si, int32_t eb) {
  std::memcpy(dst.data() + di * eb, src.data + si * eb, size_t(eb));
}

std::vector<uint8_t> owned(const View<uint8_t>& v) { return std::vector<uint8_t>(v.data, v.data + v.size); }
std::vector<float> owned(const View<float>& v) { return std::vector<float>(v.data, v.data + v.size); }

/// True when `v` holds at least the elements `layout` spans over the pool (a malformed call is
/// handed on untouched rather than read out of bounds).
bool spans(const View<uint8_t>& v, const PageLayout& layout, const Dims& dm) {
  return int64_t(v.size) >= layout.cosize(dm.nb) * dm.eb;
}

// ---- the input transformations ----------------------------------------------------------------

// V'[own(x)] = V[wrong(x)]: the kernel reading its own layout reads what the wrong-layout read did.
void plant_v_layout_index(const KernelCall& call, MutatedCall& m) {
  if (!one_head_size(call.problem)) return;
  const Dims dm(call.problem);
  const KvLayout wrong = wrong_v_layout(dm.kind);
  if (layout_error(wrong, dm.hkv, dm.B, dm.D, dm.eb)) return;
  const PageLayout own = dm.layout(dm.kind, KvTensor::value, dm.hkv, call.problem.page_stride);
  const PageLayout bad = dm.layout(wrong, KvTensor::value, dm.hkv, call.problem.page_stride);
  if (!spans(call.v_cache, own, dm)) return;
  m.v_cache = owned(call.v_cache);
  for_each_element(dm, dm.hkv, [&](int64_t blk, int32_t h, int32_t tok, int32_t d) {
    copy_elem(m.v_cache, own(blk, h, tok, d), call.v_cache, bad(blk, h, tok, d), dm.eb);
  });
  m.call.v_cache = m.v_cache;
  m.planted = true;
}

// K'[x at the true stride] = K[x at the dense stride], V alike.
void plant_dense_page_stride(const KernelCall& call, MutatedCall& m) {
  if (!one_head_size(call.problem)) return;
  const Dims dm(call.problem);
  const int64_t dense = int64_t(dm.hkv) * dm.B * dm.D;
  if (call.problem.page_stride <= dense) return;
  for (KvTensor t : {KvTensor::key, KvTensor::value}) {
    const View<uint8_t>& src = t == KvTensor::key ? call.k_cache : call.v_cache;
    std::vector<uint8_t>& dst = t == KvTensor::key ? m.k_cache : m.v_cache;
    const PageLayout strided = dm.layout(dm.kind, t, dm.hkv, call.problem.page_stride);
    const PageLayout packed = dm.layout(dm.kind, t, dm.hkv, 0);
    if (!spans(src, strided, dm)) return;
    dst = owned(src);
    for_each_element(dm, dm.hkv, [&](int64_t blk, int32_t h, int32_t tok, int32_t d) {
      copy_elem(dst, strided(blk, h, tok, d), src, packed(blk, h, tok, d), dm.eb);
    });
  }
  m.call.k_cache = m.k_cache;
  m.call.v_cache = m.v_cache;
  m.planted = true;
}

// scale'[slot(blk, h, tok)] = scale[slot(j, h, tok)] for logical page j stored in physical page blk.
void plant_token_scale_logical_index(const KernelCall& call, MutatedCall& m) {
  const pacheck_problem& p = call.problem;
  const ScaleMode mode = ScaleMode(p.scale_mode);
  if (!is_per_token(mode)) return;
  const ScaleLayout sl{mode, p.num_kv_heads, p.block_size, p.num_blocks};
  m.k_scales = owned(call.k_scales);
  m.v_scales = owned(call.v_scales);
  for (int32_t s = 0; s < p.num_seqs; ++s) {
    const int32_t pages = (call.context_lens.data[s] + p.block_size - 1) / p.block_size;
    for (int32_t j = 0; j < pages && j < p.num_blocks; ++j) {
      const int32_t blk = call.block_tables.data[int64_t(s) * p.max_blocks_per_seq + j];
      for (int32_t h = 0; h < p.num_kv_heads; ++h)
        for (int32_t tok = 0; tok < p.block_size; ++tok) {
          m.k_scales[size_t(sl(blk, h, tok))] = call.k_scales.data[sl(j, h, tok)];
          m.v_scales[size_t(sl(blk, h, tok))] = call.v_scales.data[sl(j, h, tok)];
        }
    }
  }
  m.call.k_scales = m.k_scales;
  m.call.v_scales = m.v_scales;
  m.planted = true;
}

void plant_scales(const KernelCall& call, MutatedCall& m, bool per_token_as_tensor) {
  const ScaleMode mode = ScaleMode(call.problem.scale_mode);
  if (per_token_as_tensor ? !is_per_token(mode) : mode != ScaleMode::per_tensor) return;
  m.k_scales.assign(call.k_scales.size, per_token_as_tensor ? call.k_scales.data[0] : 1.0f);
  m.v_scales.assign(call.v_scales.size, per_token_as_tensor ? call.v_scales.data[0] : 1.0f);
  m.call.k_scales = m.k_scales;
  m.call.v_scales = m.v_scales;
  m.planted = true;
}

// Every byte c becomes encode_own(decode_other(c)): the kernel decoding its own flavour sees the
// other flavour's values (saturated to its own range).
void plant_fp8_wrong_flavour(const KernelCall& call, MutatedCall& m) {
  const DType own = DType(call.problem.kv_dtype);
  if (!is_fp8(own)) return;
  const DType other = own == DType::fp8_e4m3fn ? DType::fp8_e4m3fnuz : DType::fp8_e4m3fn;
  uint8_t table[256];
  for (int c = 0; c < 256; ++c) table[c] = uint8_t(codec::encode(own, codec::decode(other, uint32_t(c))));
  m.k_cache = owned(call.k_cache);
  m.v_cache = owned(call.v_cache);
  for (auto* buf : {&m.k_cache, &m.v_cache})
    for (uint8_t& b : *buf) b = table[b];
  m.call.k_cache = m.k_cache;
  m.call.v_cache = m.v_cache;
  m.planted = true;
}

// An MHA problem (Hkv' = Hq) whose head h' holds the original head h' % Hkv: with G = 1 the
// kernel reads head h for query head h, i.e. the original h % Hkv.
void plant_gqa_h_mod_hkv(const KernelCall& call, const Kernel& inner, const Device& dev, MutatedCall& m) {
  const pacheck_problem& p = call.problem;
  const int32_t hq = p.num_q_heads, hkv = p.num_kv_heads;
  if (hkv <= 0 || hq / hkv <= 1 || !one_head_size(p)) return;
  const Dims dm(p);
  if (layout_error(dm.kind, hq, dm.B, dm.D, dm.eb)) return;
  const int64_t pad = p.page_stride - int64_t(hkv) * dm.B * dm.D;
  const int64_t stride = int64_t(hq) * dm.B * dm.D + pad;
  Case mha = case_of(call);
  mha.num_kv_heads = hq;
  if (inner.decline_reason(mha, dev)) return;  // the kernel has no MHA variant here: the bug cannot be planted
  const ScaleMode mode = ScaleMode(p.scale_mode);
  const ScaleLayout sl{mode, hkv, dm.B, dm.nb}, sl2{mode, hq, dm.B, dm.nb};
  for (KvTensor t : {KvTensor::key, KvTensor::value}) {
    const View<uint8_t>& src = t == KvTensor::key ? call.k_cache : call.v_cache;
    std::vector<uint8_t>& dst = t == KvTensor::key ? m.k_cache : m.v_cache;
    const PageLayout from = dm.layout(dm.kind, t, hkv, p.page_stride);
    const PageLayout to = dm.layout(dm.kind, t, hq, stride);
    if (!spans(src, from, dm)) return;
    dst.assign(size_t(to.cosize(dm.nb) * dm.eb), 0);
    const uint32_t poison = codec::poison_code(DType(p.kv_dtype));
    for (size_t i = 0; i < dst.size(); i += size_t(dm.eb)) std::memcpy(&dst[i], &poison, size_t(dm.eb));
    for_each_element(dm, hq, [&](int64_t blk, int32_t h, int32_t tok, int32_t d) {
      copy_elem(dst, to(blk, h, tok, d), src, from(blk, h % hkv, tok, d), dm.eb);
    });
  }
  if (mode == ScaleMode::per_head || is_per_token(mode)) {
    for (KvTensor t : {KvTensor::key, KvTensor::value}) {
      const View<float>& src = t == KvTensor::key ? call.k_scales : call.v_scales;
      std::vector<float>& dst = t == KvTensor::key ? m.k_scales : m.v_scales;
      dst.assign(size_t(sl2.size()), std::numeric_limits<float>::quiet_NaN());
      if (mode == ScaleMode::per_head) {
        for (int32_t h = 0; h < hq; ++h) dst[size_t(h)] = src.data[h % hkv];
      } else {
        for (int64_t blk = 0; blk < dm.nb; ++blk)
          for (int32_t h = 0; h < hq; ++h)
            for (int32_t tok = 0; tok < dm.B; ++tok) dst[size_t(sl2(blk, h, tok))] = src.data[sl(blk, h % hkv, tok)];
      }
    }
    m.call.k_scales = m.k_scales;
    m.call.v_scales = m.v_scales;
  }
  m.call.problem.num_kv_heads = hq;
  m.call.problem.page_stride = stride;
  m.call.problem.page_stride_v = stride;  // Dv == D here (dm.D sizes both)
  m.call.k_cache = m.k_cache;
  m.call.v_cache = m.v_cache;
  m.planted = true;
}

// context_lens + 1: every query sits one position later and sees one more key, the unused slot
// right after the sequence (poisoned), so the rows come out as the off-by-one kernel's did.
void plant_unused_slot_read(const KernelCall& call, MutatedCall& m) {
  pacheck_problem& p = m.call.problem;
  m.context_lens = std::vector<int32_t>(call.context_lens.data, call.context_lens.data + call.context_lens.size);
  int32_t longest = 0;
  for (int32_t& c : m.context_lens) longest = std::max(longest, ++c);
  p.max_context = std::max(p.max_context, longest);
  const int32_t need = (longest + p.block_size - 1) / p.block_size;
  if (need > p.max_blocks_per_seq) {  // no spare column: add one that repeats the row's last entry
    const int32_t old = p.max_blocks_per_seq;
    m.block_tables.assign(size_t(p.num_seqs) * size_t(need), 0);
    for (int32_t s = 0; s < p.num_seqs; ++s)
      for (int32_t j = 0; j < need; ++j)
        m.block_tables[size_t(s) * size_t(need) + size_t(j)] = call.block_tables.data[int64_t(s) * old + std::min(j, old - 1)];
    p.max_blocks_per_seq = need;
    m.call.block_tables = m.block_tables;
  }
  m.call.context_lens = m.context_lens;
  m.planted = true;
}

}  // namespace

bool is_routing(ContractMutant m) { return routing_mutant(m); }

// ---- catalogue ----------------------------------------------------------------------------------

std::vector<ContractMutantInfo> contract_mutants() { return {std::begin(kCatalogue), std::end(kCatalogue)}; }

const ContractMutantInfo& info(ContractMutant m) { return kCatalogue[size_t(m)]; }
const char* to_string(ContractMutant m) { return info(m).name; }

std::optional<ContractMutant> parse_contract_mutant(std::string_view name) {
  for (const ContractMutantInfo& i : kCatalogue)
    if (name == i.name) return i.id;
  return std::nullopt;
}

bool ContractMutantInfo::applies(const Capability& cap) const { return pa::applies(id, cap); }

bool applies(ContractMutant m, const Capability& cap) {
  const uint32_t per_token = bit(ScaleMode::per_token_block_major) | bit(ScaleMode::per_token_head_major);
  // A latent (MLA) cache has one KV head and V inside K: no V layout of its own to confuse, no
  // KV head to mistake, no dense page of a head size that is D for both caches.
  const bool classic = !latent_only(cap);
  switch (m) {
    case ContractMutant::v_layout_index: return classic;
    case ContractMutant::dense_page_stride: return cap.strided_pages && classic;
    case ContractMutant::token_scale_logical_index:
    case ContractMutant::per_token_scale_as_per_tensor: return (cap.scales & per_token) != 0;
    case ContractMutant::per_tensor_scale_ignored: return (cap.scales & bit(ScaleMode::per_tensor)) != 0;
    case ContractMutant::fp8_wrong_flavour:
      return (cap.kv_dtypes & (bit(DType::fp8_e4m3fn) | bit(DType::fp8_e4m3fnuz))) != 0;
    case ContractMutant::drop_custom_scale: return cap.custom_softmax_scale;
    case ContractMutant::drop_softcap: return cap.logit_softcap;
    case ContractMutant::drop_window: return cap.sliding_window;
    case ContractMutant::drop_sinks: return cap.sinks;
    case ContractMutant::gqa_h_mod_hkv: return cap.max_gqa > 1 && classic;
    case ContractMutant::unused_slot_read: return true;
    case ContractMutant::head_size_routing: return extra_head_size(cap).has_value() && classic;  // MLA's 576 is structural
    case ContractMutant::block_size_routing: return extra_block_size(cap).has_value();
    case ContractMutant::output_scaled_1_03:
    case ContractMutant::output_truncated: return true;
    case ContractMutant::lse_plus_log2: return cap.lse;
  }
  return false;
}

KvLayout wrong_v_layout(KvLayout actual) {
  switch (actual) {
    case KvLayout::shuffled: return KvLayout::vllm;
    case KvLayout::vllm: return KvLayout::nhd;
    case KvLayout::nhd: return KvLayout::hnd;
    case KvLayout::hnd: return KvLayout::nhd;
    case KvLayout::mla_joint:
    case KvLayout::mla_split: return actual;  // never planted (applies() is false for MLA-only)
  }
  return KvLayout::nhd;
}

// ---- the wrapper --------------------------------------------------------------------------------

MutantKernel::MutantKernel(KernelPtr inner, ContractMutant m)
    : Kernel(mutant_info(inner, m)), inner_(std::move(inner)), mutant_(m) {}

std::optional<std::string> MutantKernel::decline_reason(const Case& c, const Device& dev) const {
  if (!routing_mutant(mutant_)) return inner_->decline_reason(c, dev);
  // The wider table decides; everything else is still the inner kernel's to refuse, asked about
  // the variant a mis-routed launch would run (its nearest declared head or block size).
  if (auto r = pa::decline_reason(info().capability, c, dev)) return r;
  const Capability& own = inner_->info().capability;
  Case variant = c;
  if (mutant_ == ContractMutant::head_size_routing) variant.head_size = nearest(own.head_sizes, c.head_size);
  if (mutant_ == ContractMutant::block_size_routing) variant.block_size = nearest(own.block_sizes, c.block_size);
  return inner_->decline_reason(variant, dev);
}

KernelOutput MutantKernel::run(const KernelCall& call, const Device& dev) const {
  // Routing mutants run the inner kernel directly: its own table is bypassed, as a mis-routed
  // launch bypasses the kernel's (absent) check.
  const MutatedCall m = mutate_call(mutant_, call, *inner_, dev);
  KernelOutput out = inner_->run(m.planted ? m.call : call, dev);
  if (out.status == Status::Ok) mutate_output(mutant_, call.problem, out);
  return out;
}

KernelPtr mutate(KernelPtr inner, ContractMutant m) { return std::make_shared<MutantKernel>(std::move(inner), m); }

MutatedCall mutate_call(ContractMutant m, const KernelCall& call, const Kernel& inner, const Device& dev) {
  MutatedCall r;
  r.call = call;
  pacheck_problem& p = r.call.problem;
  switch (m) {
    case ContractMutant::v_layout_index: plant_v_layout_index(call, r); break;
    case ContractMutant::dense_page_stride: plant_dense_page_stride(call, r); break;
    case ContractMutant::token_scale_logical_index: plant_token_scale_logical_index(call, r); break;
    case ContractMutant::per_token_scale_as_per_tensor: plant_scales(call, r, true); break;
    case ContractMutant::per_tensor_scale_ignored: plant_scales(call, r, false); break;
    case ContractMutant::fp8_wrong_flavour: plant_fp8_wrong_flavour(call, r); break;
    case ContractMutant::drop_custom_scale: {
      const double standard = 1.0 / std::sqrt(double(p.head_size));
      r.planted = std::fabs(p.softmax_scale - standard) > 1e-12 * standard;
      p.softmax_scale = standard;
      break;
    }
    case ContractMutant::drop_softcap:
      r.planted = p.logit_softcap > 0;
      p.logit_softcap = 0;
      break;
    case ContractMutant::drop_window:
      r.planted = p.sliding_window > 0;
      p.sliding_window = 0;
      break;
    case ContractMutant::drop_sinks:
      r.planted = p.has_sinks != 0;
      p.has_sinks = 0;
      r.call.sinks = View<float>();
      break;
    case ContractMutant::gqa_h_mod_hkv: plant_gqa_h_mod_hkv(call, inner, dev, r); break;
    case ContractMutant::unused_slot_read: plant_unused_slot_read(call, r); break;
    case ContractMutant::head_size_routing:
    case ContractMutant::block_size_routing:
    case ContractMutant::output_scaled_1_03:
    case ContractMutant::output_truncated:
    case ContractMutant::lse_plus_log2: break;
  }
  if (!r.planted) r.call = call;
  return r;
}

void mutate_output(ContractMutant m, const pacheck_problem& problem, KernelOutput& out) {
  const DType qt = DType(problem.q_dtype);
  switch (m) {
    case ContractMutant::output_scaled_1_03:
      for (float& x : out.out) x = codec::decode(qt, codec::encode(qt, x * 1.03f));
      break;
    case ContractMutant::output_truncated:
      // The wrapper sees only the rounded value, so truncation is planted by its statistics:
      // clearing the last mantissa bit moves every odd code one ulp toward zero, the mean bias
      // of -ulp/2 that truncating the fp32 value has (round-to-nearest has none).
      for (float& x : out.out)
        if (std::isfinite(x)) x = codec::decode(qt, codec::encode(qt, x) & ~1u);
      break;
    case ContractMutant::lse_plus_log2:
      for (float& l : out.lse)
        if (std::isfinite(l)) l += float(std::log(2.0));
      break;
    default: break;
  }
}

Case case_of(const KernelCall& call) {
  const pacheck_problem& p = call.problem;
  Case c;
  c.num_seqs = p.num_seqs;
  c.q_len = p.q_len;
  c.num_q_heads = p.num_q_heads;
  c.num_kv_heads = p.num_kv_heads;
  c.head_size = p.head_size;
  c.block_size = p.block_size;
  c.context_lens.assign(call.context_lens.data, call.context_lens.data + call.context_lens.size);
  c.num_blocks = p.num_blocks;
  c.q_dtype = DType(p.q_dtype);
  c.kv_dtype = DType(p.kv_dtype);
  c.kv_layout = KvLayout(p.kv_layout);
  c.kv_scale = ScaleMode(p.scale_mode);
  const double standard = 1.0 / std::sqrt(double(p.head_size));
  c.softmax_scale = std::fabs(p.softmax_scale - standard) > 1e-12 * standard ? p.softmax_scale : 0.0;
  c.sliding_window = p.sliding_window;
  c.logit_softcap = p.logit_softcap;
  c.alibi = p.has_alibi != 0;
  c.sinks = p.has_sinks != 0;
  c.partition_size = p.partition_size;
  c.page_pad = p.page_stride - int64_t(p.num_kv_heads) * p.block_size * p.head_size;
  // ABI minor 2: the ragged batch as the call carries it.
  c.head_size_v = head_size_v(p) == p.head_size ? 0 : head_size_v(p);
  c.page_table = PageTable(p.page_table);
  c.q_len = max_q_len(p);
  if (p.q_len == 0 && call.cu_seqlens_q.size == size_t(p.num_seqs) + 1)
    for (int32_t s = 0; s < p.num_seqs; ++s) c.q_lens.push_back(call.cu_seqlens_q.data[s + 1] - call.cu_seqlens_q.data[s]);
  return c;
}

}  // namespace pa
