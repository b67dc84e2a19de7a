// Host twins of the three paths: the same algorithm as each GPU kernel over the same physical
// cache, read through PagedLayout / ScaleLayout / Codec<> with the same Partial merge and
// LogitTransform, registered through the same ABI descriptor a plug-in uses. A twin sees only what
// a kernel sees (the pacheck_problem and the buffers), so a layout, scale or block-table bug shows
// here exactly as it would on the GPU, and CI without a GPU runs every path end to end.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/capability.hpp"
#include "core/problem.hpp"
#include "kernels/builtin.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/logits.hpp"
#include "kernels/common/partial.hpp"
#include "kernels/common/rounding.hpp"
#include "kernels/common/split_plan.hpp"
#include "kernels/kernel.hpp"

namespace pa {

namespace {

constexpr int kMaxHead = 576;   // largest Q/K head size any built-in path declares (MLA's 576)
constexpr int kMaxHeadV = 512;  // largest V head size (MLA's latent 512)
using HostPartial = Partial<kMaxHeadV>;

/// One physical cache tensor of storage type KV, read the way a kernel reads it. A layout's offset
/// is a (page, head, slot) part plus a d part (as pack uses it), so a row's elements are read at
/// row(s, t, h) + d_offset[d], the d parts computed once per launch.
template <DType KV>
struct CacheView {
  using Storage = typename codec::Codec<KV>::Storage;
  const uint8_t* bytes;
  PagedLayout layout;  // its block table is null when the page table is CSR
  CsrTable csr;        // indptr null unless the page table is CSR
  const float* scales;
  ScaleLayout scale_layout;
  std::vector<int64_t> d_offset;  // layout.page(0, 0, 0, d) for d < the tensor's head size

  CacheView(const uint8_t* b, PagedLayout l, CsrTable c, const float* sc, ScaleLayout sl)
      : bytes(b), layout(l), csr(c), scales(sc), scale_layout(sl), d_offset(size_t(l.page.head_size)) {
    for (int32_t d = 0; d < l.page.head_size; ++d) d_offset[size_t(d)] = layout.page(0, 0, 0, d);
  }
  int32_t block_of(int32_t s, int32_t t) const { return csr.indptr ? csr.block_of(s, t) : layout.block_of(s, t); }
  /// The offset of element 0 of token t's head-h row in sequence s.
  int64_t row(int32_t s, int32_t t, int32_t h) const { return layout.page(block_of(s, t), h, layout.slot_of(t), 0); }
  float value_at(int64_t row_offset, int32_t d) const {
    Storage code;
    std::memcpy(&code, bytes + (row_offset + d_offset[size_t(d)]) * int64_t(sizeof(Storage)), sizeof code);
    return codec::Codec<KV>::decode(code);
  }
  float scale(int32_t s, int32_t t, int32_t h) const {
    return scales[scale_layout(block_of(s, t), h, layout.slot_of(t))];
  }
};

/// What a twin knows of a launch: the ABI problem and buffers, with q decoded once. A batch is
/// read as the ABI lays it out: rows from cu_seqlens_q, contexts from the CSR table's page counts
/// and last-page lengths when the table is CSR (else context_lens), V and O with Dv elements.
struct Twin {
  const pacheck_problem& p;
  const pacheck_buffers& b;
  std::vector<float> q;  // [T, Hq, D]
  LogitTransform lt;
  int32_t G;
  int32_t Dv;
  int32_t k0;            // K's leading elements read from the V cache (mla_split's latent part)
  CsrTable csr;          // indptr null unless the page table is CSR

  Twin(const pacheck_problem& pr, const pacheck_buffers& bu)
      : p(pr), b(bu), G(pr.num_q_heads / pr.num_kv_heads), Dv(head_size_v(pr)),
        k0(k_from_v(KvLayout(pr.kv_layout), head_size_v(pr))) {
    if (p.page_table == PACHECK_TABLE_CSR) csr = {b.kv_indptr, b.kv_indices, b.kv_last_page_len, p.block_size};
    const DType qt = DType(p.q_dtype);
    q.resize(size_t(total_q(p) * p.num_q_heads * p.head_size));
    const uint8_t* qb = static_cast<const uint8_t*>(b.q);
    for (size_t i = 0; i < q.size(); ++i) {
      uint16_t code = 0;
      std::memcpy(&code, qb + i * size_t(dtype_bytes(qt)), std::min<size_t>(sizeof code, size_t(dtype_bytes(qt))));
      q[i] = codec::decode(qt, code);
    }
    lt = make_logit_transform(p.softmax_scale, p.logit_softcap, p.sliding_window, b.alibi_slopes);
  }
  int64_t q_start(int32_t s) const { return b.cu_seqlens_q ? b.cu_seqlens_q[s] : int64_t(s) * p.q_len; }
  int32_t q_len_of(int32_t s) const { return int32_t(q_start(s + 1) - q_start(s)); }
  int64_t row(int32_t s, int32_t i, int32_t h) const { return (q_start(s) + i) * p.num_q_heads + h; }
  const float* q_row(int64_t r) const { return &q[size_t(r * p.head_size)]; }
  int32_t ctx(int32_t s) const { return csr.indptr ? csr.context(s) : b.context_lens[s]; }

  void write(int64_t r, const HostPartial& part) const {
    const DType qt = DType(p.q_dtype);
    uint8_t* ob = static_cast<uint8_t*>(b.out);
    for (int32_t d = 0; d < Dv; ++d) {
      const uint16_t code = uint16_t(codec::encode(qt, part.normalised(d)));
      std::memcpy(ob + size_t(r * Dv + d) * size_t(dtype_bytes(qt)), &code, size_t(dtype_bytes(qt)));
    }
    if (b.lse) b.lse[r] = part.lse();  // fp32, as the kernels write it
  }
  HostPartial with_sink(int32_t h, HostPartial part) const {
    if (b.sinks) part.merge(HostPartial::sink(b.sinks[h]));
    return part;
  }
};

/// The partials of n query rows that share sequence s, KV head hk and position pos (query heads
/// heads[g], queries q[g]) over keys [t0, t1). Two passes like a stage-1 kernel: logits, then
/// P = exp(x - m). `round_p` models P being fed to a 16-bit matrix core: P.V uses round(P) while l
/// sums the fp32 P. Each K and V row is decoded once (value * scale, as a float) and serves every
/// row; each row's sums run in its own order (d increasing for q.k, t increasing for l and o), so
/// a row's bits do not depend on which rows share the pass.
template <DType KV>
void attend(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V, const float* const* q,
            const int32_t* heads, int32_t n, int32_t s, int32_t hk, int32_t pos, int32_t t0, int32_t t1,
            DType round_p, HostPartial* parts) {
  for (int32_t g = 0; g < n; ++g) parts[g] = HostPartial::empty();
  const int32_t lo = std::max(t0, tw.lt.first_visible(pos));
  const int32_t hi = std::min(t1, pos + 1);
  const int32_t D = tw.p.head_size, Dv = tw.Dv;
  if (lo >= hi) return;
  const size_t span = size_t(hi - lo);
  constexpr int32_t kKeys = 4;  // keys per logit tile: n * kKeys independent sums in flight
  std::vector<float> x(static_cast<size_t>(n) * span), row(static_cast<size_t>(Dv)),
      keys(static_cast<size_t>(D) * kKeys), dot(static_cast<size_t>(n) * kKeys);
  for (int32_t t0 = lo; t0 < hi; t0 += kKeys) {
    const int32_t nk = std::min(kKeys, hi - t0);
    for (int32_t w = 0; w < nk; ++w) {  // keys[d][w]: key t0 + w's decoded, scaled element d
      const float ks = K.scale(s, t0 + w, hk);
      const int64_t k_row = K.row(s, t0 + w, hk);
      const int32_t k0 = tw.k0;  // K's first k0 elements are the V cache's (a split latent cache)
      const int64_t l_row = k0 > 0 ? V.row(s, t0 + w, hk) : 0;
      for (int32_t d = 0; d < k0; ++d) keys[size_t(d) * kKeys + size_t(w)] = V.value_at(l_row, d) * ks;
      for (int32_t d = k0; d < D; ++d) keys[size_t(d) * kKeys + size_t(w)] = K.value_at(k_row, d - k0) * ks;
    }
    std::fill(dot.begin(), dot.end(), 0.f);
    for (int32_t d = 0; d < D; ++d)  // n * nk independent sums, each in increasing d
      for (int32_t g = 0; g < n; ++g)
        for (int32_t w = 0; w < kKeys; ++w)
          dot[size_t(g) * kKeys + size_t(w)] += q[g][d] * keys[size_t(d) * kKeys + size_t(w)];
    for (int32_t w = 0; w < nk; ++w)
      for (int32_t g = 0; g < n; ++g) {
        const int32_t t = t0 + w;
        const float xg = tw.lt(dot[size_t(g) * kKeys + size_t(w)], heads[g], t, pos);
        x[size_t(g) * span + size_t(t - lo)] = xg;
        parts[g].m = std::max(parts[g].m, xg);
      }
  }
  for (int32_t t = lo; t < hi; ++t) {
    const float vs = V.scale(s, t, hk);
    const int64_t v_row = V.row(s, t, hk);
    for (int32_t d = 0; d < Dv; ++d) row[size_t(d)] = V.value_at(v_row, d) * vs;
    for (int32_t g = 0; g < n; ++g) {
      HostPartial& part = parts[g];
      const float pt = expf(x[size_t(g) * span + size_t(t - lo)] - part.m);
      part.l += pt;
      const float pv = round_p == DType::fp32 ? pt : round_to(round_p, pt);
      for (int32_t d = 0; d < Dv; ++d) part.o[d] += pv * row[size_t(d)];
    }
  }
}

// Runs body(s, hk) for every sequence s and KV head hk on default_threads() threads, as a GPU runs
// its blocks: each (s, hk) writes only the rows of its query heads (and their workspace), so the
// outputs are the same bits for any thread count.
template <class F>
void for_each_block(const pacheck_problem& p, F&& body) {
  const int32_t H = p.num_kv_heads;
  parallel_for(int64_t(p.num_seqs) * H, default_threads(), [&](int64_t item, int) {
    body(int32_t(item / H), int32_t(item % H));
  });
}

/// The query rows of one block at query token i: the G heads of KV head hk.
struct HeadRows {
  std::vector<int32_t> heads;
  std::vector<int64_t> rows;
  std::vector<const float*> q;
  HeadRows(const Twin& tw, int32_t s, int32_t hk, int32_t i) {
    for (int32_t g = 0; g < tw.G; ++g) {
      heads.push_back(hk * tw.G + g);
      rows.push_back(tw.row(s, i, heads.back()));
      q.push_back(tw.q_row(rows.back()));
    }
  }
};

// v1 and asm: one pass per query row over the whole context; v1 keeps P in fp32, asm rounds it to
// the q dtype. (asm's GPU tile also runs G padded up to its tile size, the padded rows on zero
// queries, and discards them; rows are independent, so the twin skips them and gets the same bits.)
template <DType KV>
void run_single_pass(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V, DType round_p) {
  const pacheck_problem& p = tw.p;
  // A GPU sums a row's keys in many partial sums at once; one fp32 sum over millions of keys in a
  // row loses several percent (the last keys add less than an ulp). Past kChunk keys the twin sums
  // chunks of kChunk and merges them, as the GPU's partials are merged; below it, one pass.
  constexpr int32_t kChunk = 1 << 16;
  for_each_block(p, [&](int32_t s, int32_t hk) {
    std::vector<HostPartial> parts(size_t(tw.G)), chunk(size_t(tw.G));
    for (int32_t i = 0; i < tw.q_len_of(s); ++i) {
      const HeadRows hr(tw, s, hk, i);
      const int32_t ctx = tw.ctx(s), pos = query_position(ctx, tw.q_len_of(s), i);
      if (ctx <= kChunk) {
        attend(tw, K, V, hr.q.data(), hr.heads.data(), tw.G, s, hk, pos, 0, ctx, round_p, parts.data());
      } else {
        for (HostPartial& part : parts) part = HostPartial::empty();
        for (int32_t t0 = 0; t0 < ctx; t0 += kChunk) {
          attend(tw, K, V, hr.q.data(), hr.heads.data(), tw.G, s, hk, pos, t0, std::min(ctx, t0 + kChunk), round_p,
                 chunk.data());
          for (int32_t g = 0; g < tw.G; ++g) parts[size_t(g)].merge(chunk[size_t(g)]);
        }
      }
      for (int32_t g = 0; g < tw.G; ++g) tw.write(hr.rows[size_t(g)], tw.with_sink(hr.heads[size_t(g)], parts[size_t(g)]));
    }
  });
}

// hip: stage 1 writes (max_logits, exp_sums, tmp_out = o/l) per partition of the split plan into
// the workspace; stage 2 merges them with rescaling.
template <DType KV>
void run_hip(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V, DType round_p) {
  const pacheck_problem& p = tw.p;
  const SplitPlan plan = split_plan(p);
  const int32_t P = plan.partition, np = plan.num_partitions, D = tw.Dv;
  float* max_logits = plan.max_logits(tw.b.workspace);
  float* exp_sums = plan.exp_sums(tw.b.workspace);
  float* tmp_out = plan.tmp_out(tw.b.workspace);
  for_each_block(p, [&](int32_t s, int32_t hk) {
    std::vector<HostPartial> parts(size_t(tw.G));
    for (int32_t i = 0; i < tw.q_len_of(s); ++i) {
      const HeadRows hr(tw, s, hk, i);
      const int32_t ctx = tw.ctx(s), pos = query_position(ctx, tw.q_len_of(s), i);
      for (int32_t k = 0; k * P < ctx; ++k) {  // stage 1
        attend(tw, K, V, hr.q.data(), hr.heads.data(), tw.G, s, hk, pos, k * P, std::min(ctx, (k + 1) * P),
               round_p, parts.data());
        for (int32_t g = 0; g < tw.G; ++g) {
          const int64_t r = hr.rows[size_t(g)];
          max_logits[r * np + k] = parts[size_t(g)].m;
          exp_sums[r * np + k] = parts[size_t(g)].l;
          for (int32_t d = 0; d < D; ++d) tmp_out[(r * np + k) * D + d] = parts[size_t(g)].normalised(d);
        }
      }
      for (int32_t g = 0; g < tw.G; ++g) {  // stage 2
        const int64_t r = hr.rows[size_t(g)];
        HostPartial total = HostPartial::empty();
        for (int32_t k = 0; k * P < ctx; ++k)
          total.merge(HostPartial::from_normalised(&tmp_out[(r * np + k) * D], max_logits[r * np + k],
                                                   exp_sums[r * np + k], D));
        tw.write(r, tw.with_sink(hr.heads[size_t(g)], total));
      }
    }
  });
}

// ---- the descriptors ----------------------------------------------------------------------------

thread_local std::string t_last_error;

const char* twin_last_error(const pacheck_kernel*) { return t_last_error.c_str(); }

int twin_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void*) {
  if (p->head_size > kMaxHead || head_size_v(*p) > kMaxHeadV) {
    t_last_error = "head_size=" + std::to_string(p->head_size) + " / head_size_v=" + std::to_string(head_size_v(*p)) +
                   " above the twin's " + std::to_string(kMaxHead) + " / " + std::to_string(kMaxHeadV);
    return PACHECK_NOT_SUPPORTED;
  }
  const DType kv = DType(p->kv_dtype);
  if (auto e = kv_layouts_error(*p)) {
    t_last_error = *e;
    return PACHECK_NOT_SUPPORTED;
  }
  const KvLayouts L = kv_layouts(*p);
  const Twin tw(*p, *b);
  bool ok = true;
  PA_DISPATCH_KV_DTYPE(kv, KV, { ok = false; },
    const CacheView<KV> K(static_cast<const uint8_t*>(b->k_cache), {L.k, b->block_tables, p->max_blocks_per_seq},
                          tw.csr, b->k_scales, L.scale);
    const CacheView<KV> V(static_cast<const uint8_t*>(b->v_cache), {L.v, b->block_tables, p->max_blocks_per_seq},
                          tw.csr, b->v_scales, L.scale);
    switch (builtin_path(self)) {
      case BuiltinPath::v1: run_single_pass<KV>(tw, K, V, DType::fp32); break;
      case BuiltinPath::hip: run_hip<KV>(tw, K, V, DType(p->q_dtype)); break;
      case BuiltinPath::asm_: run_single_pass<KV>(tw, K, V, DType(p->q_dtype)); break;
      case BuiltinPath::unified: run_single_pass<KV>(tw, K, V, DType::fp32); break;
      case BuiltinPath::unified_split: run_hip<KV>(tw, K, V, DType::fp32); break;
      case BuiltinPath::mla: run_single_pass<KV>(tw, K, V, DType::fp32); break;
      case BuiltinPath::mla_split: run_hip<KV>(tw, K, V, DType(p->q_dtype)); break;
    })
  if (!ok) {
    t_last_error = std::string("kv_dtype=") + to_string(kv) + " has no host twin instantiation";
    return PACHECK_NOT_SUPPORTED;
  }
  return PACHECK_OK;
}

}  // namespace

std::vector<const pacheck_kernel*> host_twin_descriptors() {
  static const auto kTwins = [] {
    constexpr const char* kProvenance = "pacheck host twin: plain C++ over the physical layout (kernels/host_twins.cpp)";
    std::array<pacheck_kernel, kBuiltinCount> k{};
    for (size_t i = 0; i < k.size(); ++i)
      k[i] = builtin_descriptor(builtin_specs()[i], PACHECK_MEMORY_HOST, twin_launch, twin_last_error, kProvenance);
    return k;
  }();
  std::vector<const pacheck_kernel*> out;
  for (const pacheck_kernel& k : kTwins) out.push_back(&k);
  return out;
}

}  // namespace pa
