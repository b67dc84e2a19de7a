// Host twins of the three paths (design §4): the same algorithm as each GPU kernel over the same
// physical cache, read through PageLayout / ScaleLayout / Codec<> and the block table, with the
// same Partial merge and LogitTransform. Never reads the logical view (Inputs::k/v): a layout,
// scale or block-table bug therefore shows here exactly as it would on the GPU.
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include "kernels/common/dispatch.hpp"
#include "kernels/common/logits.hpp"
#include "kernels/common/partial.hpp"
#include "kernels/common/rounding.hpp"
#include "core/mutants.hpp"
#include "kernels/paths.hpp"

namespace pa {

namespace {

constexpr int kMaxHead = 256;  // largest head size any path supports (capability tables)
using HostPartial = Partial<kMaxHead>;

/// One physical cache tensor of storage type KV, read the way a kernel reads it.
template <DType KV>
struct CacheView {
  using Storage = typename codec::Codec<KV>::Storage;
  const uint8_t* bytes;
  PageLayout layout;
  const float* scales;
  ScaleLayout scale_layout;

  float code(int64_t blk, int32_t h, int32_t tok, int32_t d) const {
    Storage s;
    std::memcpy(&s, bytes + layout(blk, h, tok, d) * int64_t(sizeof(Storage)), sizeof s);
    return codec::Codec<KV>::decode(s);
  }
  float scale(int64_t blk, int32_t h, int32_t tok) const {
    if (PA_MUTANT(per_token_scale_as_per_tensor)) return scales[0];
    if (PA_MUTANT(per_tensor_scale_ignored) && scale_layout.mode == ScaleMode::per_tensor) return 1.f;
    return scales[scale_layout(blk, h, tok)];
  }
};

struct Problem {
  const Inputs& in;
  const Case& c;
  LogitTransform lt;
  int32_t D, B, G;
  PathId path;
};

/// Partial of query row q (head h, position p) over keys [t0, t1) of sequence s, kv head hk.
/// Two passes like a stage-1 kernel: logits, then P = exp(x - m). `round_p` models P being fed
/// to a 16-bit matrix core: P·V uses round(P) while l sums the fp32 P.
template <DType KV>
HostPartial attend(const Problem& pb, const CacheView<KV>& K, const CacheView<KV>& V,
                   const float* q, int32_t s, int32_t h, int32_t hk, int32_t p, int32_t t0,
                   int32_t t1, DType round_p) {
  HostPartial part = HostPartial::empty();
  if (PA_MUTANT(causal_mask_ignored)) p = pb.in.context_lens[size_t(s)] - 1;
  const int32_t lo = std::max(t0, pb.lt.first_visible(p));
  const int32_t hi = PA_MUTANT(unused_slot_read) ? std::min(t1 + 1, p + 2) : std::min(t1, p + 1);
  // The asm kernel only implements head 128: routed a larger head, it computes 128 dimensions.
  const int32_t D = PA_MUTANT(head_size_routing) && pb.path == PathId::asm_ ? std::min(pb.D, 128) : pb.D;
  if (lo >= hi) return part;
  std::vector<float> x(size_t(hi - lo));
  const int32_t* table = pb.in.block_tables.data() + int64_t(s) * pb.in.max_blocks_per_seq;
  for (int32_t t = lo; t < hi; ++t) {
    const int32_t blk = table[t / pb.B], tok = t % pb.B;
    const float ks = K.scale(PA_MUTANT(token_scale_logical_index) ? t / pb.B : blk, hk, tok);
    float dot = 0.f;
    for (int32_t d = 0; d < D; ++d) dot += q[d] * (K.code(blk, hk, tok, d) * ks);
    x[size_t(t - lo)] = pb.lt(dot, h, t, p);
    part.m = std::max(part.m, x[size_t(t - lo)]);
  }
  for (int32_t t = lo; t < hi; ++t) {
    const int32_t blk = table[t / pb.B], tok = t % pb.B;
    const float pt = expf(x[size_t(t - lo)] - part.m);
    part.l += pt;
    const float pv = round_p == DType::fp32 ? pt : round_to(round_p, pt);
    const float vs = V.scale(PA_MUTANT(token_scale_logical_index) ? t / pb.B : blk, hk, tok);
    for (int32_t d = 0; d < D; ++d) part.o[d] += pv * (V.code(blk, hk, tok, d) * vs);
  }
  return part;
}

struct Outputs {
  std::vector<float>& out;
  std::vector<float>& lse;
};

void write_row(const Problem& pb, Outputs o, int32_t s, int32_t i, int32_t h, const HostPartial& part) {
  const int64_t row = (int64_t(s) * pb.c.q_len + i) * pb.c.num_q_heads + h;
  for (int32_t d = 0; d < pb.D; ++d)
    o.out[size_t(row * pb.D + d)] = round_to(pb.c.q_dtype, part.normalised(d));
  o.lse[size_t(row)] = part.lse();  // fp32, as the kernels write it
}

HostPartial with_sink(const Problem& pb, int32_t h, HostPartial part) {
  if (!pb.in.sinks.empty() && !PA_MUTANT(drop_sinks)) part.merge(HostPartial::sink(pb.in.sinks[size_t(h)]));
  return part;
}

// v1: one pass per (seq, query head, q token) over the whole context, P in fp32.
template <DType KV>
void run_v1(const Problem& pb, const CacheView<KV>& K, const CacheView<KV>& V, Outputs o) {
  const Case& c = pb.c;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = pb.in.context_lens[size_t(s)];
    for (int32_t i = 0; i < c.q_len; ++i)
      for (int32_t h = 0; h < c.num_q_heads; ++h) {
        const int32_t p = query_position(ctx, c.q_len, i);
        const float* q = &pb.in.q[size_t(((int64_t(s) * c.q_len + i) * c.num_q_heads + h) * pb.D)];
        const int32_t hk = PA_MUTANT(gqa_h_mod_hkv) ? h % c.num_kv_heads : h / pb.G;
        HostPartial part = attend(pb, K, V, q, s, h, hk, p, 0, ctx, DType::fp32);
        write_row(pb, o, s, i, h, with_sink(pb, h, part));
      }
  }
}

// hip: stage 1 writes (max_logits, exp_sums, tmp_out = o/l) per partition of partition_size
// tokens into the Workspace-shaped scratch; stage 2 merges them with rescaling.
template <DType KV>
void run_hip(const Problem& pb, const CacheView<KV>& K, const CacheView<KV>& V, Outputs o) {
  const Case& c = pb.c;
  const int32_t P = c.partition_size;
  const int32_t np = (c.max_context() + P - 1) / P;
  const int64_t rows = int64_t(c.num_seqs) * c.q_len * c.num_q_heads;
  std::vector<float> max_logits(size_t(rows * np)), exp_sums(size_t(rows * np)),
      tmp_out(size_t(rows * np * pb.D));
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = pb.in.context_lens[size_t(s)];
    for (int32_t i = 0; i < c.q_len; ++i)
      for (int32_t h = 0; h < c.num_q_heads; ++h) {
        const int64_t row = (int64_t(s) * c.q_len + i) * c.num_q_heads + h;
        const int32_t p = query_position(ctx, c.q_len, i);
        const float* q = &pb.in.q[size_t(row * pb.D)];
        const int32_t hk = PA_MUTANT(gqa_h_mod_hkv) ? h % c.num_kv_heads : h / pb.G;
        for (int32_t k = 0; k * P < ctx; ++k) {  // stage 1
          const HostPartial part = attend(pb, K, V, q, s, h, hk, p, k * P, std::min(ctx, (k + 1) * P), c.q_dtype);
          max_logits[size_t(row * np + k)] = part.m;
          exp_sums[size_t(row * np + k)] = part.l;
          for (int32_t d = 0; d < pb.D; ++d) tmp_out[size_t((row * np + k) * pb.D + d)] = part.normalised(d);
        }
        HostPartial total = HostPartial::empty();  // stage 2
        for (int32_t k = 0; k * P < ctx; ++k) {
          const HostPartial pk = HostPartial::from_normalised(&tmp_out[size_t((row * np + k) * pb.D)],
                                                              max_logits[size_t(row * np + k)],
                                                              exp_sums[size_t(row * np + k)], pb.D);
          if (PA_MUTANT(merge_without_rescale)) {  // sums partials taken against different maxima
            for (int32_t d = 0; d < pb.D; ++d) total.o[d] += pk.o[d];
            total.l += pk.l;
            total.m = std::max(total.m, pk.m);
          } else {
            total.merge(pk);
          }
        }
        write_row(pb, o, s, i, h, with_sink(pb, h, total));
      }
  }
}

// asm: per (seq, kv head) a tile of Gp = padded G query heads; padded rows run on zero queries
// and are discarded (never written), P rounded to the q dtype.
template <DType KV>
void run_asm(const Problem& pb, const CacheView<KV>& K, const CacheView<KV>& V, Outputs o) {
  const Case& c = pb.c;
  const int32_t Gp = padded_gqa(capability(PathId::asm_), pb.G);
  const std::vector<float> zero(size_t(pb.D), 0.f);
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = pb.in.context_lens[size_t(s)];
    for (int32_t hk = 0; hk < c.num_kv_heads; ++hk)
      for (int32_t i = 0; i < c.q_len; ++i)
        for (int32_t g = 0; g < Gp; ++g) {
          const bool real = g < pb.G;
          const int32_t h = hk * pb.G + (real ? g : 0);
          const int32_t p = query_position(ctx, c.q_len, i);
          const float* q = real ? &pb.in.q[size_t(((int64_t(s) * c.q_len + i) * c.num_q_heads + h) * pb.D)]
                                : zero.data();
          const HostPartial part = attend(pb, K, V, q, s, h, hk, p, 0, ctx, c.q_dtype);
          if (real) write_row(pb, o, s, i, h, with_sink(pb, h, part));
          else if (PA_MUTANT(padded_heads_written)) write_row(pb, o, s, i, hk * pb.G + g % pb.G, part);
        }
  }
}

}  // namespace

const char* to_string(Backend b) { return b == Backend::host ? "host" : "gpu"; }
std::optional<Backend> parse_backend(std::string_view s) {
  if (s == "host") return Backend::host;
  if (s == "gpu") return Backend::gpu;
  return std::nullopt;
}

ErrorModel error_model(PathId p, const Case& c) {
  ErrorModel em;
  em.out = c.q_dtype;
  switch (p) {
    case PathId::v1: break;  // fp32 logits, fp32 P, fp32 accumulation: only the output rounds
    case PathId::hip:        // P rounded to the q dtype before P·V (MFMA input); tmp_out is fp32
    case PathId::asm_: em.u_p = codec::unit_roundoff(c.q_dtype); break;
  }
  return em;
}

PathOutput run_host(PathId path, const Inputs& in, const PhysicalKv& kv, const Device& dev) {
  PathOutput r;
  std::optional<std::string> declined = decline_reason(path, in.c, dev);
  if (PA_MUTANT(head_size_routing) && path == PathId::asm_ && declined) {
    Case as128 = in.c;  // the mutant kernel runs whatever the dispatcher sends it, if only the head differs
    as128.head_size = 128;
    if (!decline_reason(path, as128, dev)) declined.reset();
  }
  if (auto why = declined) {
    r.status = Status::NotSupported;
    r.reason = std::string(to_string(path)) + ": " + *why;
    return r;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const Case& c = in.c;
  const Problem pb{in, c,
                   make_logit_transform(PA_MUTANT(drop_custom_scale) ? 1.0 / std::sqrt(double(c.head_size))
                                                                    : c.effective_softmax_scale(),
                                        PA_MUTANT(drop_softcap) ? 0.0 : c.logit_softcap,
                                        PA_MUTANT(drop_window) ? 0 : c.sliding_window,
                                        in.alibi_slopes.empty() ? nullptr : in.alibi_slopes.data()),
                   c.head_size, c.block_size, c.gqa(), path};
  PageLayout k_layout = kv.k_layout, v_layout = kv.v_layout;
  if (PA_MUTANT(dense_page_stride)) k_layout.page_stride = v_layout.page_stride = k_layout.size();
  if (PA_MUTANT(v_layout_index)) {  // V indexed as the neighbouring layout family would
    const KvLayout wrong = mutant_v_layout(c.kv_layout);
    v_layout = make_page_layout(wrong, KvTensor::value, c.num_kv_heads, c.block_size, c.head_size,
                                dtype_bytes(c.kv_dtype), v_layout.page_stride);
  }
  DType decode_as = c.kv_dtype;
  if (PA_MUTANT(fp8_wrong_flavour) && is_fp8(decode_as))
    decode_as = decode_as == DType::fp8_e4m3fn ? DType::fp8_e4m3fnuz : DType::fp8_e4m3fn;
  const int64_t rows = int64_t(c.num_seqs) * c.q_len * c.num_q_heads;
  r.out.assign(size_t(rows * c.head_size), 0.f);
  r.lse.assign(size_t(rows), 0.f);
  Outputs o{r.out, r.lse};
  PA_DISPATCH_KV_DTYPE(decode_as, KV,
                       { r.status = Status::NotSupported; r.reason = "kv dtype"; return r; },
    const CacheView<KV> K{kv.k_cache.data(), k_layout, kv.k_scales.data(), kv.scale_layout};
    const CacheView<KV> V{kv.v_cache.data(), v_layout, kv.v_scales.data(), kv.scale_layout};
    switch (path) {
      case PathId::v1: run_v1<KV>(pb, K, V, o); break;
      case PathId::hip: run_hip<KV>(pb, K, V, o); break;
      case PathId::asm_: run_asm<KV>(pb, K, V, o); break;
    })
  r.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace pa
