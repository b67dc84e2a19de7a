#include "core/inputs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/prng.hpp"

namespace pa {

namespace {

// Target standard deviation of the logits. Around 2 the softmax is peaked: a wrong K index or
// scale moves the output far beyond tolerance (q,k ~ U(+-1/sqrt D) would make it ~uniform and
// hide exactly those bugs, as it did in aiter's and vLLM's own tests).
constexpr double kLogitStd = 2.0;

// Per-token magnitude factor in [1/2, 2]: per-token scales then really differ across tokens and
// pages, so a scale taken from the wrong slot changes values by up to 4x. (Affine in a uniform
// draw, not exp2 of one: libm's exp2 is not correctly rounded, and golden inputs must be
// byte-identical everywhere.)
double token_factor(Rng& rng) { return rng.uniform(0.5, 2.0); }

// Fills codes and per-token scales of one tensor from real-valued draws x[T, H, D].
// 16-bit without scale: code = encode(x). With a scale mode: a scale per unit of the mode (whole
// tensor, head, or token row), code = encode(x / scale). For 8-bit formats the scale is amax /
// format max times a random factor in [1, 1.25], so codes use the format's range, the way a
// real writer quantizes, yet no two units share a scale.
void quantize(const Case& c, const std::vector<double>& x, Rng& srng, LogicalKv& out) {
  const int64_t T = out.token_base.back();
  const int32_t H = out.heads, D = out.head_size;
  out.codes.assign(size_t(T * H * D), 0);
  out.scales.assign(size_t(T * H), 1.0f);
  const ScaleMode mode = c.kv_scale;
  const bool eight = is_8bit(c.kv_dtype);
  const double fmax = codec::max_finite(c.kv_dtype);
  auto make_scale = [&](double amax) {
    if (!eight) return float(srng.uniform(0.5, 2.0));
    const double a = amax > 0 ? amax : 1.0;
    return float(a / fmax * srng.uniform(1.0, 1.25));
  };
  if (mode == ScaleMode::per_tensor) {
    double amax = 0;
    for (double v : x) amax = std::max(amax, std::fabs(v));
    std::fill(out.scales.begin(), out.scales.end(), make_scale(amax));
  } else if (mode == ScaleMode::per_head) {
    for (int32_t h = 0; h < H; ++h) {
      double amax = 0;
      for (int64_t t = 0; t < T; ++t)
        for (int32_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[size_t((t * H + h) * D + d)]));
      const float s = make_scale(amax);
      for (int64_t t = 0; t < T; ++t) out.scales[size_t(t * H + h)] = s;
    }
  } else if (is_per_token(mode)) {
    for (int64_t r = 0; r < T * H; ++r) {
      double amax = 0;
      for (int32_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[size_t(r * D + d)]));
      out.scales[size_t(r)] = make_scale(amax);
    }
  }
  for (int64_t r = 0; r < T * H; ++r) {
    const double s = out.scales[size_t(r)];
    for (int32_t d = 0; d < D; ++d)
      out.codes[size_t(r * D + d)] = uint16_t(codec::encode(c.kv_dtype, float(x[size_t(r * D + d)] / s)));
  }
}

}  // namespace

PageLayout key_layout(const Case& c) {
  return make_page_layout(c.kv_layout, KvTensor::key, c.num_kv_heads, c.block_size, c.head_size,
                          dtype_bytes(c.kv_dtype), c.page_stride());
}
PageLayout value_layout(const Case& c) {
  return make_page_layout(c.kv_layout, KvTensor::value, c.num_kv_heads, c.block_size, c.head_size,
                          dtype_bytes(c.kv_dtype), c.page_stride());
}
ScaleLayout scale_layout(const Case& c) {
  ScaleLayout s;
  s.mode = c.kv_scale;
  s.heads = c.num_kv_heads;
  s.block = c.block_size;
  s.num_blocks = c.pool_blocks();
  return s;
}

Inputs make_inputs(const Case& c) {
  check_valid(c);
  Inputs in;
  in.c = c;
  const int32_t S = c.num_seqs, Hq = c.num_q_heads, Hkv = c.num_kv_heads, D = c.head_size;
  in.context_lens = c.context_lens;
  in.num_blocks = c.pool_blocks();
  in.max_blocks_per_seq = c.max_blocks_per_seq();

  // Q: logits = scale * q.k with k ~ N(0, f^2), f ~ U(1/2, 2) so E f^2 = 1.75 -> sigma_q for kLogitStd.
  const double sm = c.effective_softmax_scale();
  const double sigma_q = kLogitStd / (sm * std::sqrt(double(D) * 1.75));
  {
    Rng rng(c.seed, Stream::kQuery);
    const size_t n = size_t(S) * c.q_len * Hq * D;
    in.q_codes.resize(n);
    in.q.resize(n);
    for (size_t i = 0; i < n; ++i) {
      in.q_codes[i] = uint16_t(codec::encode(c.q_dtype, float(sigma_q * rng.normal())));
      in.q[i] = codec::decode(c.q_dtype, in.q_codes[i]);
    }
  }

  // K and V over logical tokens.
  std::vector<int64_t> base(size_t(S) + 1, 0);
  for (int32_t s = 0; s < S; ++s) base[size_t(s) + 1] = base[size_t(s)] + c.context_lens[size_t(s)];
  const int64_t T = base.back();
  for (LogicalKv* kv : {&in.k, &in.v}) {
    kv->dtype = c.kv_dtype;
    kv->heads = Hkv;
    kv->head_size = D;
    kv->token_base = base;
  }
  {
    Rng rng(c.seed, Stream::kKey), srng(c.seed, Stream::kKeyScale);
    std::vector<double> x(size_t(T * Hkv * D));
    for (int64_t r = 0; r < T * Hkv; ++r) {
      const double f = token_factor(rng);
      for (int32_t d = 0; d < D; ++d) x[size_t(r * D + d)] = f * rng.normal();
    }
    quantize(c, x, srng, in.k);
  }
  {
    // V has a non-zero mean per head, so an output that collapsed to the V mean (uniform
    // attention) or to zero is far from the reference.
    Rng rng(c.seed, Stream::kValue), srng(c.seed, Stream::kValueScale);
    std::vector<double> mean(static_cast<size_t>(Hkv));
    for (auto& m : mean) m = (rng.uniform() < 0.5 ? -1.0 : 1.0) * rng.uniform(0.5, 1.5);
    std::vector<double> x(size_t(T * Hkv * D));
    for (int64_t r = 0; r < T * Hkv; ++r) {
      const double f = token_factor(rng);
      for (int32_t d = 0; d < D; ++d) x[size_t(r * D + d)] = mean[size_t(r % Hkv)] + f * rng.normal();
    }
    quantize(c, x, srng, in.v);
  }

  if (c.alibi) {
    in.alibi_slopes.resize(size_t(Hq));
    for (int32_t h = 0; h < Hq; ++h) in.alibi_slopes[size_t(h)] = float(alibi_slope(h, Hq));
  }
  if (c.sinks) {
    Rng rng(c.seed, Stream::kSinks);
    in.sinks.resize(size_t(Hq));
    for (auto& v : in.sinks) v = float(kLogitStd * rng.normal());
  }

  // Page placement: a random permutation of the pool; sequences take pages in order, the rest are
  // free. Table entries past a sequence's last page point at free (poisoned) pages when any exist.
  {
    Rng rng(c.seed, Stream::kPlacement);
    std::vector<int32_t> perm(size_t(in.num_blocks));
    std::iota(perm.begin(), perm.end(), 0);
    shuffle(perm, rng);
    const int64_t used = c.used_blocks();
    const int64_t nfree = in.num_blocks - used;
    in.block_tables.assign(size_t(S) * size_t(in.max_blocks_per_seq), 0);
    int64_t next = 0;
    for (int32_t s = 0; s < S; ++s) {
      const int32_t nb = c.blocks_for(c.context_lens[size_t(s)]);
      for (int32_t b = 0; b < in.max_blocks_per_seq; ++b) {
        int32_t id;
        if (b < nb) id = perm[size_t(next++)];
        else if (nfree > 0) id = perm[size_t(used + rng.uniform_int(0, nfree - 1))];
        else id = perm[size_t(rng.uniform_int(0, in.num_blocks - 1))];
        in.block_tables[size_t(int64_t(s) * in.max_blocks_per_seq + b)] = id;
      }
    }
  }
  return in;
}

PhysicalKv pack(const Inputs& in) {
  const Case& c = in.c;
  PhysicalKv p;
  p.k_layout = key_layout(c);
  p.v_layout = value_layout(c);
  p.scale_layout = scale_layout(c);
  const int32_t eb = dtype_bytes(c.kv_dtype);
  const int64_t elems = p.k_layout.cosize(in.num_blocks);
  const uint16_t poison = uint16_t(codec::poison_code(c.kv_dtype));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const bool token_scales = is_per_token(c.kv_scale);
  for (auto* buf : {&p.k_cache, &p.v_cache}) {
    buf->resize(size_t(elems * eb));
    for (int64_t i = 0; i < elems; ++i) store_code(*buf, eb, i, poison);
  }
  p.k_scales.assign(size_t(p.scale_layout.size()), token_scales ? nan : 1.0f);
  p.v_scales = p.k_scales;
  const int32_t B = c.block_size;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t) {
      const int32_t blk = in.page_of(s, t), tok = t % B;
      for (int32_t h = 0; h < c.num_kv_heads; ++h) {
        for (int32_t d = 0; d < c.head_size; ++d) {
          store_code(p.k_cache, eb, p.k_layout(blk, h, tok, d), in.k.code(s, t, h, d));
          store_code(p.v_cache, eb, p.v_layout(blk, h, tok, d), in.v.code(s, t, h, d));
        }
        const int64_t si = p.scale_layout(blk, h, tok);
        p.k_scales[size_t(si)] = in.k.scale(s, t, h);
        p.v_scales[size_t(si)] = in.v.scale(s, t, h);
      }
    }
  }
  return p;
}

LogicalKv gather(const Inputs& in, const PhysicalKv& p, KvTensor which) {
  const Case& c = in.c;
  const bool key = which == KvTensor::key;
  const PageLayout& L = key ? p.k_layout : p.v_layout;
  const auto& cache = key ? p.k_cache : p.v_cache;
  const auto& scales = key ? p.k_scales : p.v_scales;
  const int32_t eb = dtype_bytes(c.kv_dtype);
  LogicalKv out;
  out.dtype = c.kv_dtype;
  out.heads = c.num_kv_heads;
  out.head_size = c.head_size;
  out.token_base = (key ? in.k : in.v).token_base;
  const int64_t T = out.token_base.back();
  out.codes.resize(size_t(T * out.heads * out.head_size));
  out.scales.resize(size_t(T * out.heads));
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t) {
      const int32_t blk = in.page_of(s, t), tok = t % c.block_size;
      const int64_t r = out.row(s, t);
      for (int32_t h = 0; h < out.heads; ++h) {
        for (int32_t d = 0; d < out.head_size; ++d)
          out.codes[size_t((r * out.heads + h) * out.head_size + d)] = load_code(cache, eb, L(blk, h, tok, d));
        out.scales[size_t(r * out.heads + h)] = scales[size_t(p.scale_layout(blk, h, tok))];
      }
    }
  }
  return out;
}

uint64_t input_hash(const Inputs& in) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto bytes = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 0x100000001b3ull;
    }
  };
  auto vec = [&](const auto& v) { bytes(v.data(), v.size() * sizeof(v[0])); };
  vec(in.q_codes);
  vec(in.k.codes);
  vec(in.k.scales);
  vec(in.v.codes);
  vec(in.v.scales);
  vec(in.alibi_slopes);
  vec(in.sinks);
  vec(in.block_tables);
  vec(in.context_lens);
  return h;
}

}  // namespace pa
