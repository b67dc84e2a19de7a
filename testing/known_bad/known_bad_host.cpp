// Host known-bad kernels: one plain loop nest each over the physical cache (PagedLayout,
// ScaleLayout, run-time codecs), one Partial per query row. Slower than the twins and never
// shared with them: a bug here must not be able to leak into the built-in paths.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/capability.hpp"
#include "core/problem.hpp"
#include "kernels/builtin_capability.hpp"
#include "kernels/common/logits.hpp"
#include "kernels/common/partial.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {

namespace {

constexpr int kMaxHead = 576;  // MLA's 576 included
using RowPartial = Partial<kMaxHead>;

enum class Bug {
  merge_without_rescale, causal_mask_ignored, padded_heads_written, max_not_subtracted,
  // The ragged family (imitating the unified path):
  packed_offset_ignored, v_with_qk_head_size, empty_row_finite_lse, last_page_padding_attended,
  csr_last_page_len_ignored, lse_base2_declared_natural,
  // The MLA family (imitating mla, or mla_split where the bug is the split kernel's):
  mla_v_from_rope, mla_rope_dropped, mla_scale_default, mla_merge_without_rescale, mla_fp8_scale_ignored,
  mla_padded_heads_written,
  // What the kernel-judging peers guard against (imitating v1):
  cached_by_pointer, second_call_differs
};

thread_local std::string t_error;
const char* bad_last_error(const pacheck_kernel*) { return t_error.c_str(); }

/// A page table read the one way for either form (the CSR form's context from its page count and
/// last-page length), composed with a page layout: what PagedLayout is for the padded table.
struct Pages {
  PagedLayout padded;
  CsrTable csr;  // indptr null unless the table is CSR
  int32_t block_of(int32_t s, int32_t t) const { return csr.indptr ? csr.block_of(s, t) : padded.block_of(s, t); }
  int32_t slot_of(int32_t t) const { return padded.slot_of(t); }
  int64_t operator()(int32_t s, int32_t t, int32_t h, int32_t d) const {
    return padded.page(block_of(s, t), h, slot_of(t), d);
  }
};

/// What a plain kernel reads, decoded element by element.
struct Plain {
  const pacheck_problem& p;
  const pacheck_buffers& b;
  DType qt, kv;
  int32_t eb, G, Dv;
  Pages K, V;
  ScaleLayout sl;
  LogitTransform lt;

  Plain(const pacheck_problem& pr, const pacheck_buffers& bu)
      : p(pr), b(bu), qt(DType(pr.q_dtype)), kv(DType(pr.kv_dtype)), eb(dtype_bytes(kv)),
        G(pr.num_q_heads / pr.num_kv_heads), Dv(head_size_v(pr)) {
    const KvLayouts L = kv_layouts(p);
    CsrTable csr;
    if (p.page_table == PACHECK_TABLE_CSR) csr = {b.kv_indptr, b.kv_indices, b.kv_last_page_len, p.block_size};
    K = {{L.k, b.block_tables, p.max_blocks_per_seq}, csr};
    V = {{L.v, b.block_tables, p.max_blocks_per_seq}, csr};
    sl = L.scale;
    v_elems = L.v.cosize(p.num_blocks);
    lt = make_logit_transform(p.softmax_scale, p.logit_softcap, p.sliding_window, b.alibi_slopes);
    k0 = k_from_v(KvLayout(p.kv_layout), Dv);
  }
  int64_t v_elems = 0;
  int32_t k0 = 0;           // K's leading elements that live in the V cache (mla_split)
  int32_t qk_elems = 0;     // K elements in the logit (D; set by the launch)
  int32_t v_first = 0;      // the K element V element 0 is read as, past Dv (0: V itself)
  bool unscaled = false;    // scales read as 1 whatever the buffers hold
  /// K element d of token t: the V cache's for d < k0 (a split latent cache), else the K cache's.
  float key(int32_t s, int32_t t, int32_t hk, int32_t d) const {
    return d < k0 ? code(b.v_cache, V(s, t, hk, d)) : code(b.k_cache, K(s, t, hk, d - k0));
  }
  int64_t q_start(int32_t s) const { return b.cu_seqlens_q ? b.cu_seqlens_q[s] : int64_t(s) * p.q_len; }
  int32_t q_len_of(int32_t s) const { return int32_t(q_start(s + 1) - q_start(s)); }
  int32_t ctx(int32_t s) const { return K.csr.indptr ? K.csr.context(s) : b.context_lens[s]; }
  int64_t row(int32_t s, int32_t i, int32_t h) const { return (q_start(s) + i) * p.num_q_heads + h; }
  /// f(s, h, row, ctx, pos) for every output row: sequence s, query token i (at position pos of a
  /// context of ctx), query head h.
  template <class F>
  void each_row(F f) const {
    for (int32_t s = 0; s < p.num_seqs; ++s)
      for (int32_t i = 0; i < q_len_of(s); ++i)
        for (int32_t h = 0; h < p.num_q_heads; ++h) {
          const int32_t c = ctx(s);
          f(s, h, row(s, i, h), c, query_position(c, q_len_of(s), i));
        }
  }
  float code(const void* base, int64_t off) const {
    uint16_t c = 0;
    std::memcpy(&c, static_cast<const uint8_t*>(base) + off * eb, size_t(eb));
    return codec::decode(kv, c);
  }
  float q(int64_t r, int32_t d) const {
    uint16_t c = 0;
    std::memcpy(&c, static_cast<const uint8_t*>(b.q) + (r * p.head_size + d) * 2, 2);
    return codec::decode(qt, c);
  }
  float scale(const float* scales, int32_t s, int32_t t, int32_t hk) const {
    return unscaled ? 1.f : scales[sl(K.block_of(s, t), hk, K.slot_of(t))];
  }
  /// The logit of key t for query row qrow (a zero query when `zero_q`), head h, at position pos.
  float logit(int64_t qrow, bool zero_q, int32_t s, int32_t h, int32_t hk, int32_t t, int32_t pos) const {
    float dot = 0.f;
    for (int32_t d = 0; d < qk_elems; ++d) dot += (zero_q ? 0.f : q(qrow, d)) * key(s, t, hk, d);
    return lt(dot * scale(b.k_scales, s, t, hk), h, t, pos);
  }
  /// Keys [t0, t1) of sequence s for query head h (KV head hk); `visible_to` is the position
  /// the causal mask is applied at, `pos` the one ALiBi and the window measure from.
  int32_t dv_read = 0;  // V elements read per row (Dv; set by the launch)
  int32_t dv_write = 0;  // output elements (and row stride) per row (Dv; set by the launch)
  RowPartial attend(int64_t qrow, bool zero_q, int32_t s, int32_t h, int32_t hk, int32_t pos, int32_t visible_to,
                    int32_t t0, int32_t t1) const {
    RowPartial part = RowPartial::empty();
    for (int32_t t = std::max(t0, lt.first_visible(pos)); t < std::min(t1, visible_to + 1); ++t) {
      RowPartial one = RowPartial::empty();
      one.m = logit(qrow, zero_q, s, h, hk, t, pos);
      one.l = 1.f;
      const float vs = scale(b.v_scales, s, t, hk);
      for (int32_t d = 0; d < dv_read; ++d) {
        if (v_first > 0) {  // V read as K elements v_first.. (the rope part taken for latent values)
          one.o[d] = key(s, t, hk, v_first + d) * vs;
          continue;
        }
        const int64_t off = V(s, t, hk, d);  // past Dv only for v_with_qk_head_size: kept in the buffer
        one.o[d] = off < v_elems ? code(b.v_cache, off) * vs : 0.f;
      }
      part.merge(one);
    }
    return part;
  }
  RowPartial with_sink(int32_t h, RowPartial part) const {
    if (b.sinks) part.merge(RowPartial::sink(b.sinks[h]));
    return part;
  }
  void write(int64_t r, const RowPartial& part) const {
    for (int32_t d = 0; d < dv_write; ++d) {
      const uint16_t c = uint16_t(codec::encode(qt, part.normalised(d)));
      std::memcpy(static_cast<uint8_t*>(b.out) + (r * dv_write + d) * 2, &c, 2);
    }
    if (b.lse) b.lse[r] = part.lse();
  }
};

// ---- the ragged family: each a single pass like unified, with one bug ----------------------------

// A ragged batch indexed as if uniform: a sequence with 5 or more query tokens past the first takes
// its Q and O rows at s * q_len_s (its own q_len as the stride) instead of cu_seqlens_q[s].
void packed_offset_ignored(const Plain& k) {
  for (int32_t s = 0; s < k.p.num_seqs; ++s)
    for (int32_t i = 0; i < k.q_len_of(s); ++i)
      for (int32_t h = 0; h < k.p.num_q_heads; ++h) {
        const int32_t ql = k.q_len_of(s), c = k.ctx(s), pos = query_position(c, ql, i);
        const int64_t r = s >= 1 && ql >= 5 ? (int64_t(s) * ql + i) * k.p.num_q_heads + h : k.row(s, i, h);
        if (r >= total_q(k.p) * k.p.num_q_heads) continue;  // past the end: the row is lost
        k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c)));
      }
}

// Every row as the contract says, then an empty row's LSE set to a finite sentinel (-5e4, one
// library's "-inf") instead of -inf.
void empty_row_finite_lse(const Plain& k) {
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
    RowPartial part = k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c));
    k.write(r, part);
    if (k.b.lse && part.l == 0.f) k.b.lse[r] = -5e4f;
  });
}

// The last page read whole: keys up to the end of the last page are visible (the padding slots
// past the context, poisoned, enter the softmax).
void last_page_padding_attended(const Plain& k) {
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
    const int32_t end = (c + k.p.block_size - 1) / k.p.block_size * k.p.block_size;
    const int32_t to = pos == c - 1 ? end - 1 : pos;  // the last query token of the sequence
    k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, to, 0, end)));
  });
}

// CSR: the context taken as whole pages (kv_last_page_len never read).
void csr_last_page_len_ignored(const Plain& k) {
  for (int32_t s = 0; s < k.p.num_seqs; ++s) {
    const int32_t c = k.K.csr.indptr ? k.K.csr.pages(s) * k.p.block_size : k.ctx(s);
    for (int32_t i = 0; i < k.q_len_of(s); ++i)
      for (int32_t h = 0; h < k.p.num_q_heads; ++h) {
        const int64_t r = k.row(s, i, h);
        const int32_t pos = query_position(c, k.q_len_of(s), i);
        k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c)));
      }
  }
}

// A result cache keyed by the input pointer: a launch whose q lies where an earlier launch's q lay
// gets that launch's output and LSE back (as many as fit), computed or not.
void cached_by_pointer(const Plain& k) {
  struct Entry {
    std::vector<uint8_t> out;
    std::vector<float> lse;
  };
  thread_local const void* key = nullptr;
  thread_local Entry cached;
  const size_t out_bytes = size_t(total_q(k.p) * k.p.num_q_heads * k.Dv) * 2;
  const size_t lse_rows = size_t(total_q(k.p) * k.p.num_q_heads);
  if (key == k.b.q) {
    std::memcpy(k.b.out, cached.out.data(), std::min(out_bytes, cached.out.size()));
    if (k.b.lse) std::copy_n(cached.lse.begin(), std::min(lse_rows, cached.lse.size()), k.b.lse);
    if (cached.out.size() >= out_bytes) return;
  }
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
    k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c)));
  });
  key = k.b.q;
  cached.out.assign(static_cast<const uint8_t*>(k.b.out), static_cast<const uint8_t*>(k.b.out) + out_bytes);
  if (k.b.lse) cached.lse.assign(k.b.lse, k.b.lse + lse_rows);
}

// Correct on its first launch only: every later launch scales its output by 1.02 (state left from
// the first call, a stale scale after a warm-up).
void second_call_differs(const Plain& k) {
  thread_local int calls = 0;
  const float f = calls++ == 0 ? 1.f : 1.02f;
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
    RowPartial part = k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c));
    for (int32_t d = 0; d < k.Dv; ++d) part.o[d] *= f;
    k.write(r, part);
  });
}

// The LSE written as log2-sum-exp by a kernel that declares it natural (the default).
void lse_base2_declared_natural(const Plain& k) {
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
    const RowPartial part = k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c));
    k.write(r, part);
    if (k.b.lse) k.b.lse[r] = part.lse() * 1.44269504088896341f;
  });
}

// hip-like: stage 1 per partition, stage 2 adds the partials' o and l as they are -- each taken
// against its own running max -- instead of rescaling them to the common max first.
void merge_without_rescale(const Plain& k) {
  const pacheck_problem& p = k.p;
  const int32_t P = std::max(1, p.partition_size);
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t ctx, int32_t pos) {
    RowPartial total = RowPartial::empty();
    for (int32_t t0 = 0; t0 < ctx; t0 += P) {
      const RowPartial part = k.attend(r, false, s, h, h / k.G, pos, pos, t0, std::min(ctx, t0 + P));
      if (part.l == 0.f) continue;
      for (int32_t d = 0; d < p.head_size; ++d) total.o[d] += part.o[d];
      total.l += part.l;
      total.m = std::max(total.m, part.m);
    }
    k.write(r, k.with_sink(h, total));
  });
}

// Single pass; every MTP query token sees the keys of the later query tokens too.
void causal_mask_ignored(const Plain& k) {
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t ctx, int32_t pos) {
    k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, ctx - 1, 0, ctx)));
  });
}

// asm-like (or mla_split-like: 12 MLA heads run as 16): G padded to the declared tile; the padded
// rows run on zero queries and are written out to head g % G of the group, after the real rows --
// overwriting them.
void padded_heads_written(const Plain& k, const pacheck_capability* declared) {
  const pacheck_problem& p = k.p;
  const Capability cap = capability_from_abi(declared, "known-bad padded heads");
  const int32_t Gp = padded_gqa(cap, k.G);
  for (int32_t s = 0; s < p.num_seqs; ++s)
    for (int32_t hk = 0; hk < p.num_kv_heads; ++hk)
      for (int32_t i = 0; i < k.q_len_of(s); ++i)
        for (int32_t g = 0; g < Gp; ++g) {
          const int32_t h = hk * k.G + g % k.G;
          const int64_t r = k.row(s, i, h);
          const int32_t ctx = k.ctx(s), pos = query_position(ctx, k.q_len_of(s), i);
          k.write(r, k.with_sink(h, k.attend(r, g >= k.G, s, h, hk, pos, pos, 0, ctx)));
        }
}

// The plain MLA decode, one pass per row (each MLA bug below sets one field of the kernel first).
void each_row_once(const Plain& k) {
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
    k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c)));
  });
}

// v1-like: softmax as exp(x) / sum exp(x), without subtracting the running max. The same math on
// paper and fine while logits stay below ~88, but exp overflows fp32 on the logits that outlier
// channels of real activations produce.
void max_not_subtracted(const Plain& k) {
  k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t, int32_t pos) {
    const int32_t hk = h / k.G;
    RowPartial part = RowPartial::empty();
    part.m = 0.f;  // every weight taken against 0 instead of the row's maximum
    for (int32_t t = std::max(0, k.lt.first_visible(pos)); t <= pos; ++t) {
      const float w = std::exp(k.logit(r, false, s, h, hk, t, pos));
      const float vs = k.scale(k.b.v_scales, s, t, hk);
      part.l += w;
      for (int32_t d = 0; d < k.p.head_size; ++d) part.o[d] += w * k.code(k.b.v_cache, k.V(s, t, hk, d)) * vs;
    }
    if (k.b.sinks) part.l += std::exp(k.b.sinks[h]);
    k.write(r, part);
  });
}

int bad_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void*) {
  const Bug bug = *static_cast<const Bug*>(self->user_data);
  if (p->head_size > kMaxHead || (p->q_dtype != PACHECK_DTYPE_BF16 && p->q_dtype != PACHECK_DTYPE_FP16)) {
    t_error = "known-bad kernel: head_size <= 576 and a 16-bit q dtype only";
    return PACHECK_NOT_SUPPORTED;
  }
  if (auto e = kv_layouts_error(*p)) {
    t_error = *e;
    return PACHECK_NOT_SUPPORTED;
  }
  Plain k(*p, *b);
  k.dv_read = k.dv_write = k.Dv;
  k.qk_elems = p->head_size;
  switch (bug) {
    case Bug::merge_without_rescale: merge_without_rescale(k); break;
    case Bug::causal_mask_ignored: causal_mask_ignored(k); break;
    case Bug::padded_heads_written: padded_heads_written(k, &builtin::kAsmCapability); break;
    case Bug::mla_v_from_rope:  // V read as the row's last Dv values (the rope part included)
      k.v_first = p->head_size - k.Dv;
      each_row_once(k);
      break;
    case Bug::mla_rope_dropped:  // logits over the latent part only
      k.qk_elems = k.Dv;
      each_row_once(k);
      break;
    case Bug::mla_scale_default:  // 1/sqrt(576), the head size's default, not the model's scale
      k.lt = make_logit_transform(1.0 / std::sqrt(double(p->head_size)), p->logit_softcap, p->sliding_window,
                                  b->alibi_slopes);
      each_row_once(k);
      break;
    case Bug::mla_merge_without_rescale: merge_without_rescale(k); break;
    case Bug::mla_fp8_scale_ignored:  // the delivered per-tensor scale read as 1
      k.unscaled = true;
      each_row_once(k);
      break;
    case Bug::mla_padded_heads_written: padded_heads_written(k, &builtin::kMlaSplitCapability); break;
    case Bug::max_not_subtracted: max_not_subtracted(k); break;
    case Bug::packed_offset_ignored: packed_offset_ignored(k); break;
    case Bug::v_with_qk_head_size:  // V loaded and O stored with D elements, the QK head size
      k.dv_read = k.dv_write = std::min(p->head_size, kMaxHead);
      k.each_row([&](int32_t s, int32_t h, int64_t r, int32_t c, int32_t pos) {
        if ((r + 1) * k.dv_write > total_q(*p) * p->num_q_heads * k.Dv) return;  // would store past the buffer
        k.write(r, k.with_sink(h, k.attend(r, false, s, h, h / k.G, pos, pos, 0, c)));
      });
      break;
    case Bug::empty_row_finite_lse: empty_row_finite_lse(k); break;
    case Bug::last_page_padding_attended: last_page_padding_attended(k); break;
    case Bug::csr_last_page_len_ignored: csr_last_page_len_ignored(k); break;
    case Bug::lse_base2_declared_natural: lse_base2_declared_natural(k); break;
    case Bug::cached_by_pointer: cached_by_pointer(k); break;
    case Bug::second_call_differs: second_call_differs(k); break;
  }
  return PACHECK_OK;
}

pacheck_kernel make_bad(const char* name, const Bug& bug, const pacheck_capability* cap, const char* provenance,
                        const pacheck_numerics* numerics = &builtin::kMfmaNumerics) {
  pacheck_kernel k{};
  k.struct_size = sizeof k;
  k.abi_version = PACHECK_KERNEL_ABI_VERSION;
  k.abi_minor = PACHECK_KERNEL_ABI_MINOR;
  k.name = name;
  k.version = "known-bad";
  k.provenance = provenance;
  k.memory = PACHECK_MEMORY_HOST;
  k.capability = cap;
  k.numerics = numerics;
  k.user_data = const_cast<Bug*>(&bug);
  k.launch = bad_launch;
  k.last_error = bad_last_error;
  return k;
}

const Bug kMerge = Bug::merge_without_rescale, kCausal = Bug::causal_mask_ignored, kPadded = Bug::padded_heads_written,
          kNoMax = Bug::max_not_subtracted;
const Bug kCached = Bug::cached_by_pointer, kSecond = Bug::second_call_differs;
const Bug kMla[] = {Bug::mla_v_from_rope, Bug::mla_rope_dropped, Bug::mla_scale_default, Bug::mla_merge_without_rescale,
                    Bug::mla_fp8_scale_ignored, Bug::mla_padded_heads_written};
const Bug kRagged[] = {Bug::packed_offset_ignored, Bug::v_with_qk_head_size, Bug::empty_row_finite_lse,
                       Bug::last_page_padding_attended, Bug::csr_last_page_len_ignored,
                       Bug::lse_base2_declared_natural};

}  // namespace

std::vector<KnownBad> known_bad_host() {
  static const pacheck_kernel merge = make_bad("hip", kMerge, &builtin::kHipCapability,
      "pacheck known-bad kernel merge_without_rescale (testing/known_bad/known_bad_host.cpp)");
  static const pacheck_kernel causal = make_bad("hip", kCausal, &builtin::kHipCapability,
      "pacheck known-bad kernel causal_mask_ignored (testing/known_bad/known_bad_host.cpp)");
  static const pacheck_kernel padded = make_bad("asm", kPadded, &builtin::kAsmCapability,
      "pacheck known-bad kernel padded_heads_written (testing/known_bad/known_bad_host.cpp)");
  static const pacheck_kernel nomax = make_bad("v1", kNoMax, &builtin::kV1Capability,
      "pacheck known-bad kernel max_not_subtracted (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics);
  static const pacheck_kernel cached = make_bad("v1", kCached, &builtin::kV1Capability,
      "pacheck known-bad kernel cached_by_pointer (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics);
  static const pacheck_kernel second = make_bad("v1", kSecond, &builtin::kV1Capability,
      "pacheck known-bad kernel second_call_differs (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics);
  static const pacheck_kernel ragged[6] = {
      make_bad("unified", kRagged[0], &builtin::kUnifiedCapability,
               "pacheck known-bad kernel packed_offset_ignored (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics),
      make_bad("unified", kRagged[1], &builtin::kUnifiedCapability,
               "pacheck known-bad kernel v_with_qk_head_size (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics),
      make_bad("unified", kRagged[2], &builtin::kUnifiedCapability,
               "pacheck known-bad kernel empty_row_finite_lse (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics),
      make_bad("unified", kRagged[3], &builtin::kUnifiedCapability,
               "pacheck known-bad kernel last_page_padding_attended (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics),
      make_bad("unified", kRagged[4], &builtin::kUnifiedCapability,
               "pacheck known-bad kernel csr_last_page_len_ignored (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics),
      make_bad("unified", kRagged[5], &builtin::kUnifiedCapability,
               "pacheck known-bad kernel lse_base2_declared_natural (testing/known_bad/known_bad_host.cpp)", &builtin::kV1Numerics)};
  constexpr const char* kSrc = " (testing/known_bad/known_bad_host.cpp)";
  static const std::string mla_prov[6] = {
      std::string("pacheck known-bad kernel mla_v_from_rope") + kSrc, std::string("pacheck known-bad kernel mla_rope_dropped") + kSrc,
      std::string("pacheck known-bad kernel mla_scale_default") + kSrc,
      std::string("pacheck known-bad kernel mla_merge_without_rescale") + kSrc,
      std::string("pacheck known-bad kernel mla_fp8_scale_ignored") + kSrc,
      std::string("pacheck known-bad kernel mla_padded_heads_written") + kSrc};
  static const pacheck_kernel mla[6] = {
      make_bad("mla", kMla[0], &builtin::kMlaCapability, mla_prov[0].c_str(), &builtin::kV1Numerics),
      make_bad("mla", kMla[1], &builtin::kMlaCapability, mla_prov[1].c_str(), &builtin::kV1Numerics),
      make_bad("mla", kMla[2], &builtin::kMlaCapability, mla_prov[2].c_str(), &builtin::kV1Numerics),
      make_bad("mla_split", kMla[3], &builtin::kMlaSplitCapability, mla_prov[3].c_str()),
      make_bad("mla", kMla[4], &builtin::kMlaCapability, mla_prov[4].c_str(), &builtin::kV1Numerics),
      make_bad("mla_split", kMla[5], &builtin::kMlaSplitCapability, mla_prov[5].c_str())};
  return {{"merge_without_rescale", "split-K stage 2 adds partitions without rescaling to a common max", &merge},
          {"causal_mask_ignored", "MTP: query tokens see the keys of later query tokens", &causal},
          {"padded_heads_written", "asm GQA tile padding: padded rows written over real heads g % G", &padded},
          {"max_not_subtracted", "softmax without the running-max subtraction: exp overflows on outlier logits", &nomax},
          {"packed_offset_ignored", "ragged batch: Q/O rows of a sequence with q_len >= 5 taken without the packed offset", &ragged[0]},
          {"v_with_qk_head_size", "QK != V heads: V loaded and O stored with the QK head size", &ragged[1]},
          {"empty_row_finite_lse", "empty row: a finite LSE sentinel (-5e4) instead of -inf", &ragged[2]},
          {"last_page_padding_attended", "the last page's padding slots let into the softmax", &ragged[3]},
          {"csr_last_page_len_ignored", "CSR page table: kv_last_page_len ignored (whole last page)", &ragged[4]},
          {"lse_base2_declared_natural", "LSE returned in base 2 by a kernel declaring natural", &ragged[5]},
          {"cached_by_pointer", "anti-gaming: results cached by input pointer, returned for other inputs there", &cached},
          {"second_call_differs", "anti-gaming: correct on the first call only (later calls 2% off)", &second},
          {"mla_v_from_rope", "MLA: V taken from the row's tail (the rope part read as latent values)", &mla[0]},
          {"mla_rope_dropped", "MLA: the rope part left out of the logits (q.k over the latent 512 only)", &mla[1]},
          {"mla_scale_default", "MLA: softmax scale defaulted to 1/sqrt(576) instead of the model's", &mla[2]},
          {"mla_merge_without_rescale", "MLA split-K: partials merged without rescaling to a common max", &mla[3]},
          {"mla_fp8_scale_ignored", "MLA: the delivered per-tensor fp8 scale ignored (read as 1)", &mla[4]},
          {"mla_padded_heads_written", "MLA: 12 heads padded to 16, the padded heads' outputs written over real heads",
           &mla[5]}};
}

std::vector<const pacheck_kernel*> known_bad_host_kernels() {
  std::vector<const pacheck_kernel*> v;
  for (const KnownBad& k : known_bad_host()) v.push_back(k.kernel);
  return v;
}

}  // namespace pa
