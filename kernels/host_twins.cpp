// Host twins of the three paths: the same algorithm as each GPU kernel over the same physical
// cache, read through PagedLayout / ScaleLayout / Codec<> with the same Partial merge and
// LogitTransform, registered through the same ABI descriptor a plug-in uses. A twin sees only what
// a kernel sees (the pacheck_problem and the buffers), so a layout, scale or block-table bug shows
// here exactly as it would on the GPU, and CI without a GPU runs every path end to end.
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/capability.hpp"
#include "kernels/builtin_capability.hpp"
#include "kernels/common/dispatch.hpp"
#include "kernels/common/logits.hpp"
#include "kernels/common/partial.hpp"
#include "kernels/common/rounding.hpp"
#include "kernels/common/split_plan.hpp"
#include "kernels/kernel.hpp"

namespace pa {

namespace {

constexpr int kMaxHead = 256;  // largest head size any built-in path declares
using HostPartial = Partial<kMaxHead>;

/// One physical cache tensor of storage type KV, read the way a kernel reads it.
template <DType KV>
struct CacheView {
  using Storage = typename codec::Codec<KV>::Storage;
  const uint8_t* bytes;
  PagedLayout layout;
  const float* scales;
  ScaleLayout scale_layout;

  float value(int32_t s, int32_t t, int32_t h, int32_t d) const {
    Storage code;
    std::memcpy(&code, bytes + layout(s, t, h, d) * int64_t(sizeof(Storage)), sizeof code);
    return codec::Codec<KV>::decode(code);
  }
  float scale(int32_t s, int32_t t, int32_t h) const {
    return scales[scale_layout(layout.block_of(s, t), h, layout.slot_of(t))];
  }
};

/// What a twin knows of a launch: the ABI problem and buffers, with q decoded once.
struct Twin {
  const pacheck_problem& p;
  const pacheck_buffers& b;
  std::vector<float> q;  // [S, q_len, Hq, D]
  LogitTransform lt;
  int32_t G;

  Twin(const pacheck_problem& pr, const pacheck_buffers& bu) : p(pr), b(bu), G(pr.num_q_heads / pr.num_kv_heads) {
    const DType qt = DType(p.q_dtype);
    q.resize(size_t(int64_t(p.num_seqs) * p.q_len * p.num_q_heads * p.head_size));
    const uint8_t* qb = static_cast<const uint8_t*>(b.q);
    for (size_t i = 0; i < q.size(); ++i) {
      uint16_t code = 0;
      std::memcpy(&code, qb + i * size_t(dtype_bytes(qt)), size_t(dtype_bytes(qt)));
      q[i] = codec::decode(qt, code);
    }
    lt = make_logit_transform(p.softmax_scale, p.logit_softcap, p.sliding_window, b.alibi_slopes);
  }
  int64_t row(int32_t s, int32_t i, int32_t h) const { return (int64_t(s) * p.q_len + i) * p.num_q_heads + h; }
  const float* q_row(int64_t r) const { return &q[size_t(r * p.head_size)]; }
  int32_t ctx(int32_t s) const { return b.context_lens[s]; }

  void write(int64_t r, const HostPartial& part) const {
    const DType qt = DType(p.q_dtype);
    uint8_t* ob = static_cast<uint8_t*>(b.out);
    for (int32_t d = 0; d < p.head_size; ++d) {
      const uint16_t code = uint16_t(codec::encode(qt, part.normalised(d)));
      std::memcpy(ob + size_t(r * p.head_size + d) * size_t(dtype_bytes(qt)), &code, size_t(dtype_bytes(qt)));
    }
    if (b.lse) b.lse[r] = part.lse();  // fp32, as the kernels write it
  }
  HostPartial with_sink(int32_t h, HostPartial part) const {
    if (b.sinks) part.merge(HostPartial::sink(b.sinks[h]));
    return part;
  }
};

/// Partial of query row q (head h, position pos) over keys [t0, t1) of sequence s, KV head hk.
/// Two passes like a stage-1 kernel: logits, then P = exp(x - m). `round_p` models P being fed to
/// a 16-bit matrix core: P.V uses round(P) while l sums the fp32 P.
template <DType KV>
HostPartial attend(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V, const float* q, int32_t s,
                   int32_t h, int32_t hk, int32_t pos, int32_t t0, int32_t t1, DType round_p) {
  HostPartial part = HostPartial::empty();
  const int32_t lo = std::max(t0, tw.lt.first_visible(pos));
  const int32_t hi = std::min(t1, pos + 1);
  const int32_t D = tw.p.head_size;
  if (lo >= hi) return part;
  std::vector<float> x(size_t(hi - lo));
  for (int32_t t = lo; t < hi; ++t) {
    const float ks = K.scale(s, t, hk);
    float dot = 0.f;
    for (int32_t d = 0; d < D; ++d) dot += q[d] * (K.value(s, t, hk, d) * ks);
    x[size_t(t - lo)] = tw.lt(dot, h, t, pos);
    part.m = std::max(part.m, x[size_t(t - lo)]);
  }
  for (int32_t t = lo; t < hi; ++t) {
    const float pt = expf(x[size_t(t - lo)] - part.m);
    part.l += pt;
    const float pv = round_p == DType::fp32 ? pt : round_to(round_p, pt);
    const float vs = V.scale(s, t, hk);
    for (int32_t d = 0; d < D; ++d) part.o[d] += pv * (V.value(s, t, hk, d) * vs);
  }
  return part;
}

// v1: one pass per (seq, query head, q token) over the whole context, P in fp32.
template <DType KV>
void run_v1(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V) {
  const pacheck_problem& p = tw.p;
  for (int32_t s = 0; s < p.num_seqs; ++s)
    for (int32_t i = 0; i < p.q_len; ++i)
      for (int32_t h = 0; h < p.num_q_heads; ++h) {
        const int64_t r = tw.row(s, i, h);
        const int32_t pos = query_position(tw.ctx(s), p.q_len, i);
        const HostPartial part = attend(tw, K, V, tw.q_row(r), s, h, h / tw.G, pos, 0, tw.ctx(s), DType::fp32);
        tw.write(r, tw.with_sink(h, part));
      }
}

// hip: stage 1 writes (max_logits, exp_sums, tmp_out = o/l) per partition of the split plan into
// the workspace; stage 2 merges them with rescaling.
template <DType KV>
void run_hip(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V) {
  const pacheck_problem& p = tw.p;
  const SplitPlan plan = split_plan(p);
  const int32_t P = plan.partition, np = plan.num_partitions, D = p.head_size;
  float* max_logits = plan.max_logits(tw.b.workspace);
  float* exp_sums = plan.exp_sums(tw.b.workspace);
  float* tmp_out = plan.tmp_out(tw.b.workspace);
  for (int32_t s = 0; s < p.num_seqs; ++s)
    for (int32_t i = 0; i < p.q_len; ++i)
      for (int32_t h = 0; h < p.num_q_heads; ++h) {
        const int64_t r = tw.row(s, i, h);
        const int32_t ctx = tw.ctx(s), pos = query_position(ctx, p.q_len, i);
        for (int32_t k = 0; k * P < ctx; ++k) {  // stage 1
          const HostPartial part =
              attend(tw, K, V, tw.q_row(r), s, h, h / tw.G, pos, k * P, std::min(ctx, (k + 1) * P), DType(p.q_dtype));
          max_logits[r * np + k] = part.m;
          exp_sums[r * np + k] = part.l;
          for (int32_t d = 0; d < D; ++d) tmp_out[(r * np + k) * D + d] = part.normalised(d);
        }
        HostPartial total = HostPartial::empty();  // stage 2
        for (int32_t k = 0; k * P < ctx; ++k)
          total.merge(HostPartial::from_normalised(&tmp_out[(r * np + k) * D], max_logits[r * np + k],
                                                   exp_sums[r * np + k], D));
        tw.write(r, tw.with_sink(h, total));
      }
}

// asm: per (seq, KV head) a tile of Gp = padded G query heads; padded rows run on zero queries
// and are discarded (never written), P rounded to the q dtype.
template <DType KV>
void run_asm(const Twin& tw, const CacheView<KV>& K, const CacheView<KV>& V, const Capability& cap) {
  const pacheck_problem& p = tw.p;
  const int32_t Gp = padded_gqa(cap, tw.G);
  const std::vector<float> zero(size_t(p.head_size), 0.f);
  for (int32_t s = 0; s < p.num_seqs; ++s)
    for (int32_t hk = 0; hk < p.num_kv_heads; ++hk)
      for (int32_t i = 0; i < p.q_len; ++i)
        for (int32_t g = 0; g < Gp; ++g) {
          const bool real = g < tw.G;
          const int32_t h = hk * tw.G + (real ? g : 0);
          const int64_t r = tw.row(s, i, h);
          const int32_t pos = query_position(tw.ctx(s), p.q_len, i);
          const HostPartial part =
              attend(tw, K, V, real ? tw.q_row(r) : zero.data(), s, h, hk, pos, 0, tw.ctx(s), DType(p.q_dtype));
          if (real) tw.write(r, tw.with_sink(h, part));
        }
}

// ---- the descriptors ----------------------------------------------------------------------------

enum class Path { v1, hip, asm_ };

struct TwinState {
  Path path;
  const pacheck_capability* cap;
};

thread_local std::string t_last_error;

const char* twin_last_error(const pacheck_kernel*) { return t_last_error.c_str(); }

uint64_t twin_workspace(const pacheck_kernel* self, const pacheck_problem* p) {
  const auto* st = static_cast<const TwinState*>(self->user_data);
  return st->path == Path::hip ? uint64_t(split_plan(*p).bytes()) : 0;
}

int twin_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void*) {
  const auto* st = static_cast<const TwinState*>(self->user_data);
  if (p->head_size > kMaxHead) {
    t_last_error = "head_size=" + std::to_string(p->head_size) + " above the twin's " + std::to_string(kMaxHead);
    return PACHECK_NOT_SUPPORTED;
  }
  const DType kv = DType(p->kv_dtype);
  const int32_t eb = dtype_bytes(kv);
  const KvLayout kind = KvLayout(p->kv_layout);
  if (auto e = layout_error(kind, p->num_kv_heads, p->block_size, p->head_size, eb)) {
    t_last_error = *e;
    return PACHECK_NOT_SUPPORTED;
  }
  const PageLayout kl = make_page_layout(kind, KvTensor::key, p->num_kv_heads, p->block_size, p->head_size, eb, p->page_stride);
  const PageLayout vl = make_page_layout(kind, KvTensor::value, p->num_kv_heads, p->block_size, p->head_size, eb, p->page_stride);
  const ScaleLayout sl{ScaleMode(p->scale_mode), p->num_kv_heads, p->block_size, p->num_blocks};
  const Twin tw(*p, *b);
  const Capability cap = capability_from_abi(st->cap, "built-in");
  bool ok = true;
  PA_DISPATCH_KV_DTYPE(kv, KV, { ok = false; },
    const CacheView<KV> K{static_cast<const uint8_t*>(b->k_cache), {kl, b->block_tables, p->max_blocks_per_seq}, b->k_scales, sl};
    const CacheView<KV> V{static_cast<const uint8_t*>(b->v_cache), {vl, b->block_tables, p->max_blocks_per_seq}, b->v_scales, sl};
    switch (st->path) {
      case Path::v1: run_v1<KV>(tw, K, V); break;
      case Path::hip: run_hip<KV>(tw, K, V); break;
      case Path::asm_: run_asm<KV>(tw, K, V, cap); break;
    })
  if (!ok) {
    t_last_error = std::string("kv_dtype=") + to_string(kv) + " has no host twin instantiation";
    return PACHECK_NOT_SUPPORTED;
  }
  return PACHECK_OK;
}

constexpr const char* kProvenance = "pacheck host twin: plain C++ over the physical layout (kernels/host_twins.cpp)";

const TwinState kV1State{Path::v1, &builtin::kV1Capability};
const TwinState kHipState{Path::hip, &builtin::kHipCapability};
const TwinState kAsmState{Path::asm_, &builtin::kAsmCapability};

pacheck_kernel make_twin(const char* name, const TwinState& st, const pacheck_numerics* num) {
  pacheck_kernel k{};
  k.struct_size = sizeof k;
  k.abi_version = PACHECK_KERNEL_ABI_VERSION;
  k.name = name;
  k.version = "1";
  k.provenance = kProvenance;
  k.memory = PACHECK_MEMORY_HOST;
  k.capability = st.cap;
  k.numerics = num;
  k.user_data = const_cast<TwinState*>(&st);
  k.supports = nullptr;
  k.workspace_bytes = twin_workspace;
  k.launch = twin_launch;
  k.last_error = twin_last_error;
  return k;
}

}  // namespace

std::vector<const pacheck_kernel*> host_twin_descriptors() {
  static const pacheck_kernel kV1 = make_twin("v1", kV1State, &builtin::kV1Numerics);
  static const pacheck_kernel kHip = make_twin("hip", kHipState, &builtin::kMfmaNumerics);
  static const pacheck_kernel kAsm = make_twin("asm", kAsmState, &builtin::kMfmaNumerics);
  return {&kV1, &kHip, &kAsm};
}

}  // namespace pa
