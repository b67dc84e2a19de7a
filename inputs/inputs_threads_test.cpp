// make_inputs and pack split their work over threads and draw each element by its position; the
// bytes must be those of the plain sequential generator. sequential_make_inputs and
// sequential_pack below are that generator (one pass over each stream, x[T, H, D] materialised,
// tokens scattered in (s, t, h, d) order), kept as the definition to reproduce byte for byte, on
// 1, 2 and 3 threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "inputs/inputs.hpp"
#include "core/prng.hpp"
#include "testing/case_shape.hpp"
#include "testing/arbitrary_formats.hpp"

namespace pa {
namespace {

constexpr double kLogitStd = 2.0;

double token_factor(Rng& rng) { return rng.uniform(0.5, 2.0); }

// The scale of each unit in unit order (tensor; head h; row r): two draws each (margin, spread);
// unit 1 at least 32x unit 0.
struct SequentialScales {
  const Case& c;
  Rng srng;
  uint64_t unit = 0;
  double s0 = 0;
  double next(double amax) {
    const bool eight = is_8bit(c.kv_dtype);
    const double margin = eight ? srng.uniform(1.0, 1.25) : srng.uniform(0.5, 2.0);
    const double u = srng.uniform();
    const double spread = unit == 0 ? 1.0 : unit == 1 ? 32.0 : 1.0 + 15.0 * u;
    const double a = amax > 0 ? amax : 1.0;
    double s = (eight ? a / codec::max_finite(c.kv_dtype) : 1.0) * margin * spread;
    if (unit == 0) s0 = s;
    if (unit == 1) s = std::max(s, 32.0 * s0);
    ++unit;
    return s;
  }
};

// Per-tensor / per-head scales of x[T, H, D] (amax over the whole tensor or each head).
std::vector<double> sequential_shared(const Case& c, const std::vector<double>& x, int32_t H, int32_t D,
                                      SequentialScales& draw) {
  const size_t T = x.size() / size_t(H * D);
  if (c.kv_scale == ScaleMode::per_tensor) {
    double amax = 0;
    for (double v : x) amax = std::max(amax, std::fabs(v));
    return {draw.next(amax)};
  }
  std::vector<double> s;
  for (int32_t h = 0; h < H; ++h) {
    double amax = 0;
    for (size_t t = 0; t < T; ++t)
      for (int32_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[(t * size_t(H) + size_t(h)) * size_t(D) + size_t(d)]));
    s.push_back(draw.next(amax));
  }
  return s;
}

void sequential_quantize(const Case& c, const std::vector<double>& x, SequentialScales& draw,
                         const std::vector<double>& shared, LogicalKv& out) {
  const int64_t T = out.token_base.back();
  const int32_t H = out.heads, D = out.head_size;
  out.codes.assign(size_t(T * H * D), 0);
  out.scales.assign(size_t(T * H), 1.0f);
  const ScaleMode mode = c.kv_scale;
  if (mode == ScaleMode::per_tensor) std::fill(out.scales.begin(), out.scales.end(), float(shared[0]));
  if (mode == ScaleMode::per_head)
    for (int64_t r = 0; r < T * H; ++r) out.scales[size_t(r)] = float(shared[size_t(r % H)]);
  if (is_per_token(mode))
    for (int64_t r = 0; r < T * H; ++r) {
      double amax = 0;
      for (int32_t d = 0; d < D; ++d) amax = std::max(amax, std::fabs(x[size_t(r * D + d)]));
      out.scales[size_t(r)] = float(draw.next(amax));
    }
  for (int64_t r = 0; r < T * H; ++r) {
    const double s = out.scales[size_t(r)];
    for (int32_t d = 0; d < D; ++d)
      out.codes[size_t(r * D + d)] =
          uint16_t(codec::encode(c.kv_dtype, float(x[size_t(r * D + d)] / s)));
  }
}

Inputs sequential_make_inputs(const Case& c) {
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
  // Values::outliers: per KV head, twice: a channel, its Q gain, its K gain.
  std::vector<std::vector<double>> qgain(size_t(Hkv), std::vector<double>(size_t(D), 1.0)), kgain = qgain;
  if (c.values == Values::outliers) {
    Rng rng(c.seed, Stream::kOutliers);
    for (int32_t h = 0; h < Hkv; ++h)
      for (int j = 0; j < 2; ++j) {
        const size_t ch = size_t(rng.uniform_int(0, D - 1));
        qgain[size_t(h)][ch] = rng.uniform(20.0, 60.0);
        kgain[size_t(h)][ch] = rng.uniform(20.0, 60.0);
      }
  }
  // ... and a quarter of the K and V elements scaled by 2^-k, k in [0, 15], one draw each.
  auto spread = [&](Rng& r, double& x) {
    const uint64_t u = r.next_u64();
    if (c.values == Values::outliers && (u >> 62) == 0) x = std::ldexp(x, -int((u >> 32) & 15));
  };
  {
    Rng rng(c.seed, Stream::kQuery);
    const size_t n = size_t(S) * c.q_len * Hq * D;
    in.q_codes.resize(n);
    in.q.resize(n);
    for (size_t i = 0; i < n; ++i) {
      double x = sigma_q * rng.normal();
      if (c.values == Values::outliers) x *= qgain[(i / size_t(D)) % size_t(Hq) / size_t(c.gqa())][i % size_t(D)];
      in.q_codes[i] = uint16_t(codec::encode(c.q_dtype, float(x)));
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
  std::vector<double> kx(size_t(T * Hkv * D)), vx(size_t(T * Hkv * D));
  {
    Rng rng(c.seed, Stream::kKey), sp(c.seed, Stream::kKeySpread);
    for (int64_t r = 0; r < T * Hkv; ++r) {
      const double f = token_factor(rng);
      for (int32_t d = 0; d < D; ++d) {
        double& v = kx[size_t(r * D + d)];
        v = f * rng.normal() * kgain[size_t(r % Hkv)][size_t(d)];
        spread(sp, v);
      }
    }
  }
  {
    // V has a non-zero mean per head, so an output that collapsed to the V mean (uniform
    // attention) or to zero is far from the reference.
    Rng rng(c.seed, Stream::kValue), sp(c.seed, Stream::kValueSpread);
    std::vector<double> mean(static_cast<size_t>(Hkv));
    for (auto& m : mean) {
      const double sign = rng.uniform() < 0.5 ? -1.0 : 1.0;
      m = sign * rng.uniform(0.5, 1.5);
    }
    for (int64_t r = 0; r < T * Hkv; ++r) {
      const double f = token_factor(rng);
      for (int32_t d = 0; d < D; ++d) {
        double& v = vx[size_t(r * D + d)];
        v = mean[size_t(r % Hkv)] + f * rng.normal();
        spread(sp, v);
      }
    }
  }
  SequentialScales kdraw{c, Rng(c.seed, Stream::kKeyScale)}, vdraw{c, Rng(c.seed, Stream::kValueScale)};
  std::vector<double> ks, vs;
  if (c.kv_scale == ScaleMode::per_tensor || c.kv_scale == ScaleMode::per_head) {
    ks = sequential_shared(c, kx, Hkv, D, kdraw);
    vs = sequential_shared(c, vx, Hkv, D, vdraw);
    for (size_t u = 0; u < ks.size(); ++u) {  // the larger of the two raised to twice the smaller
      if (vs[u] >= ks[u]) vs[u] = std::max(vs[u], 2 * ks[u]);
      else ks[u] = std::max(ks[u], 2 * vs[u]);
    }
  }
  sequential_quantize(c, kx, kdraw, ks, in.k);
  sequential_quantize(c, vx, vdraw, vs, in.v);

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

PhysicalKv sequential_pack(const Inputs& in) {
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

template <class V>
bool same_bytes(const V& a, const V& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

// The first field where two inputs (and their packed caches) differ, or "" when every byte agrees.
std::string first_difference(const Inputs& a, const PhysicalKv& a_phys, const Inputs& b,
                             const PhysicalKv& b_phys) {
  if (!same_bytes(a.q_codes, b.q_codes)) return "q_codes";
  if (!same_bytes(a.q, b.q)) return "q";
  for (const auto& [name, x, y] :
       {std::make_tuple("k", &a.k, &b.k), std::make_tuple("v", &a.v, &b.v)}) {
    if (x->dtype != y->dtype || x->heads != y->heads || x->head_size != y->head_size ||
        x->token_base != y->token_base)
      return std::string(name) + " shape";
    if (!same_bytes(x->codes, y->codes)) return std::string(name) + " codes";
    if (!same_bytes(x->scales, y->scales)) return std::string(name) + " scales";
  }
  if (!same_bytes(a.alibi_slopes, b.alibi_slopes)) return "alibi_slopes";
  if (!same_bytes(a.sinks, b.sinks)) return "sinks";
  if (a.block_tables != b.block_tables || a.context_lens != b.context_lens ||
      a.max_blocks_per_seq != b.max_blocks_per_seq || a.num_blocks != b.num_blocks)
    return "tables";
  if (!same_bytes(a_phys.k_cache, b_phys.k_cache)) return "k_cache";
  if (!same_bytes(a_phys.v_cache, b_phys.v_cache)) return "v_cache";
  if (!same_bytes(a_phys.k_scales, b_phys.k_scales)) return "k_scales";
  if (!same_bytes(a_phys.v_scales, b_phys.v_scales)) return "v_scales";
  return "";
}

// Restores the default thread count when a test ends, however it ends.
struct ThreadsGuard {
  ~ThreadsGuard() { set_input_threads(0); }
};

// Every layout, kv dtype, scale mode, page pad and pool size; contexts from a few tokens to
// enough for many parallel items (and 8-bit per-tensor / per-head amax over several items).
Case gen_case() {
  Case c;
  test::draw_formats(c);
  c.kv_scale = *rc::gen::element(ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                 ScaleMode::per_token_block_major, ScaleMode::per_token_head_major);
  if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none)
    c.kv_scale = ScaleMode::per_tensor;
  c.num_kv_heads = *rc::gen::inRange(1, 5);
  c.num_q_heads = c.num_kv_heads * *rc::gen::element(1, 2, 8);
  c.head_size = *rc::gen::element(16, 48, 128);
  c.block_size =
      c.kv_layout == KvLayout::shuffled ? *rc::gen::element(16, 32) : *rc::gen::element(1, 5, 16);
  c.q_len = *rc::gen::inRange(1, 4);
  c.num_seqs = *rc::gen::inRange(1, 4);
  const int32_t max_ctx = *rc::gen::element(50, 1500);
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s)
    c.context_lens.push_back(*rc::gen::inRange(c.q_len, max_ctx + 1));
  c.page_pad = *rc::gen::element<int64_t>(0, 0, 7, 64);
  const int64_t extra = *rc::gen::inRange<int64_t>(-1, 6);  // -1: automatic pool size
  c.num_blocks = extra < 0 ? 0 : c.used_blocks() + extra;
  c.alibi = *rc::gen::arbitrary<bool>();
  c.sinks = *rc::gen::arbitrary<bool>();
  c.values = *rc::gen::element(Values::normal, Values::outliers);
  RC_PRE(validate(c).empty());
  return c;
}

RC_GTEST_PROP(InputsThreads, SameBytesAsSequentialGeneratorOnOneAndThreeThreads, ()) {
  ThreadsGuard guard;
  const Case c = gen_case();
  const Inputs seq = sequential_make_inputs(c);
  const PhysicalKv seq_phys = sequential_pack(seq);
  for (int threads : {1, 3}) {
    set_input_threads(threads);
    const Inputs in = make_inputs(c);
    const PhysicalKv phys = pack(in);
    RC_ASSERT(first_difference(seq, seq_phys, in, phys) == "");
  }
}

// A larger case on 1, 2 and 3 threads (many items per thread), then pack of inputs whose table
// places two logical pages in one pool page: pack then takes its sequential path, whose bytes
// (later tokens win) must not depend on the thread count either.
TEST(InputsThreads, LargerCaseAndSharedPagesSameBytesOnOneTwoAndThreeThreads) {
  ThreadsGuard guard;
  const Case c = test::shaped_case(99, {3000, 1234}, 16, 4, 128, 16, DType::fp8_e4m3fnuz, ScaleMode::per_head,
                                   KvLayout::vllm);
  const Inputs seq = sequential_make_inputs(c);
  const PhysicalKv seq_phys = sequential_pack(seq);
  Inputs shared = seq;
  shared.block_tables[1] = shared.block_tables[0];
  const PhysicalKv shared_phys = sequential_pack(shared);
  for (int threads : {1, 2, 3}) {
    set_input_threads(threads);
    const Inputs in = make_inputs(c);
    EXPECT_EQ(first_difference(seq, seq_phys, in, pack(in)), "") << threads << " threads";
    EXPECT_EQ(first_difference(shared, shared_phys, shared, pack(shared)), "")
        << threads << " threads";
  }
}

TEST(InputsThreads, SetterControlsTheCount) {
  ThreadsGuard guard;
  for (int n : {3, 1}) {
    set_input_threads(n);
    EXPECT_EQ(input_threads(), n);
  }
  set_input_threads(0);  // back to the machine's default
  EXPECT_EQ(input_threads(), default_threads());
  EXPECT_GE(input_threads(), 1);
}

// parallel_for runs every item exactly once on any thread count and rethrows the exception of the
// lowest failing item.
TEST(InputsThreads, ParallelForRunsEachItemOnceAndRethrowsLowestFailure) {
  for (int threads : {1, 2, 3, 8}) {
    std::vector<int> hits(1000, 0);
    parallel_for(1000, threads, [&](int64_t i, int worker) {
      EXPECT_LT(worker, threads);
      ++hits[size_t(i)];
    });
    EXPECT_EQ(std::count(hits.begin(), hits.end(), 1), 1000) << threads;
    try {
      parallel_for(100, threads, [](int64_t i, int) {
        if (i == 37 || i == 80) throw std::runtime_error(std::to_string(i));
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "37") << threads;
    }
  }
}

}  // namespace
}  // namespace pa
