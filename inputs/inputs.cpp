#include "inputs/inputs.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <system_error>
#include <thread>

#include "inputs/input_draws.hpp"
#include "inputs/inputs_parts.hpp"
#include "core/prng.hpp"

namespace pa {

namespace {

// Target standard deviation of the logits. Around 2 the softmax is peaked: a wrong K index or
// scale moves the output far beyond tolerance (q,k ~ U(+-1/sqrt D) would make it ~uniform and
// hide exactly those bugs, as it did in aiter's and vLLM's own tests).
constexpr double kLogitStd = 2.0;

// Elements one parallel item of generation or packing handles: large enough that handing it out
// costs nothing, small enough that two threads stay balanced. A case of one item runs inline.
constexpr int64_t kItemElements = 1 << 15;

std::atomic<int> g_input_threads{0};

// x[d] = f * normal() (K) or m + f * normal() (V) for the D normals that follow rng's position
// (draws::scaled_normal of draws::normal_at), each drawn by position rather than in sequence: no
// state is carried from one d to the next, so the compiler vectorises the 8-wide blocks (a fixed
// trip count, which even -O2's cost model accepts; unrolled, every draw's offset in the block is
// a constant). The values are those of D sequential rng.normal() calls, and those of
// draws::KvRows::element, which the GPU generator calls.
PA_CPU_CLONES void normals(const Rng& rng, double f, double m, bool add_mean, int32_t D,
                           double* x) {
  for (int32_t d0 = 0; d0 < D; d0 += 8) {
    Rng r = rng;
    r.skip(4 * uint64_t(d0));
    double z[8];  // a whole block even past D: peek only reads, and the extra lanes are dropped
    // Two loops, each with a constant add_mean, so the branch folds away and the blocks vectorise
    // (one loop with a run-time add_mean does not).
    if (add_mean) {
#pragma GCC unroll 8
      for (int32_t w = 0; w < 8; ++w) z[w] = draws::scaled_normal(f, draws::normal_at(r, 4 * uint64_t(w)), m, true);
    } else {
#pragma GCC unroll 8
      for (int32_t w = 0; w < 8; ++w) z[w] = draws::scaled_normal(f, draws::normal_at(r, 4 * uint64_t(w)), 0.0, false);
    }
    for (int32_t w = 0; w < std::min(8, D - d0); ++w) x[d0 + w] = z[w];
  }
}

// Values::outliers: two channels of each KV head whose Q and K are 20-60x the rest, as in real LLM
// activations (the same channels for every token and for the G query heads of the KV head). Per
// KV head, in order: channel, Q gain, K gain, twice.
struct OutlierGains {
  std::vector<double> q, k;  // [Hkv, D], 1 outside the outlier channels
};
OutlierGains outlier_gains(const Case& c) {
  OutlierGains g;
  const int32_t H = c.num_kv_heads, D = c.head_size;
  g.q.assign(size_t(H) * size_t(D), 1.0);
  g.k = g.q;
  Rng rng(c.seed, Stream::kOutliers);
  for (int32_t h = 0; h < H; ++h)
    for (int j = 0; j < 2; ++j) {
      const size_t i = size_t(h) * size_t(D) + size_t(rng.uniform_int(0, D - 1));
      g.q[i] = rng.uniform(20.0, 60.0);
      g.k[i] = rng.uniform(20.0, 60.0);
    }
  return g;
}

// Row r of K or V (draws::KvRows, whose element() is the one-element definition) on the host's
// schedule: the row's normals 8 at a time, then K's gains, then the spread.
/// @post x[0, D) holds row r exactly as the sequential pass draws it
void draw_row(const draws::KvRows& src, int64_t r, double* x) {
  const int32_t D = src.head_size;
  const int32_t h = int32_t(r % src.heads);
  Rng rng = src.row_start(r);
  const double f = draws::token_factor(rng);
  normals(rng, f, src.mean ? src.mean[h] : 0.0, src.mean != nullptr, D, x);
  if (src.gain) {
    const double* g = src.gain + size_t(h) * size_t(D);
    for (int32_t d = 0; d < D; ++d) x[d] *= g[d];
  }
  if (src.has_spread)
    for (int32_t d = 0; d < D; ++d)
      x[d] = draws::spread_value(src.spread, uint64_t(r) * uint64_t(D) + uint64_t(d), x[d]);
}

// a.resize(n) and b.resize(n), on two threads when there are two: the zero fill of a fresh
// buffer is mostly page faults, which would otherwise run serially before the parallel work.
template <class Vec>
void alloc_two(Vec& a, Vec& b, size_t n) {
  const int threads = n * sizeof(a[0]) < (size_t(1) << 20) ? 1 : input_threads();
  parallel_for(2, threads, [&](int64_t i, int) { (i == 0 ? a : b).resize(n); });
}

// Runs body(r0, r1, worker) over [0, rows) in items of about kItemElements elements.
void for_row_ranges(int64_t rows, int32_t row_elems,
                    const std::function<void(int64_t, int64_t, int)>& body) {
  const int64_t per = std::max<int64_t>(1, kItemElements / std::max(row_elems, 1));
  const int64_t items = (rows + per - 1) / per;
  parallel_for(items, input_threads(), [&](int64_t item, int worker) {
    body(item * per, std::min(rows, (item + 1) * per), worker);
  });
}

// code[d] = encode(float(x[d] / s)) (draws::encode_scaled_as), the dtype resolved once per row so
// the codec inlines and the 8-wide blocks vectorise.
template <DType T>
inline void encode_row_as(const double* x, double s, int32_t D, uint16_t* code) {
  int32_t d = 0;
  for (; d + 8 <= D; d += 8)
    for (int32_t w = 0; w < 8; ++w) code[d + w] = draws::encode_scaled_as<T>(x[d + w], s);
  for (; d < D; ++d) code[d] = draws::encode_scaled_as<T>(x[d], s);
}
PA_CPU_CLONES void encode_row(DType t, const double* x, double s, int32_t D, uint16_t* code) {
  switch (t) {
    case DType::bf16: return encode_row_as<DType::bf16>(x, s, D, code);
    case DType::fp16: return encode_row_as<DType::fp16>(x, s, D, code);
    case DType::fp8_e4m3fn: return encode_row_as<DType::fp8_e4m3fn>(x, s, D, code);
    case DType::fp8_e4m3fnuz: return encode_row_as<DType::fp8_e4m3fnuz>(x, s, D, code);
    case DType::fp8_e5m2: return encode_row_as<DType::fp8_e5m2>(x, s, D, code);
    case DType::int8: return encode_row_as<DType::int8>(x, s, D, code);
    default:
      for (int32_t d = 0; d < D; ++d) code[d] = draws::encode_scaled(t, x[d], s);
  }
}

double row_amax(const double* x, int32_t D) {
  double amax = 0;
  for (int32_t d = 0; d < D; ++d) amax = draws::abs_max(amax, x[d]);
  return amax;
}

// Per-tensor and per-head modes: the amax of each head over all rows (max is exact in any order).
std::vector<double> head_amax(const draws::KvRows& src, int64_t rows) {
  const int32_t H = src.heads, D = src.head_size;
  std::vector<double> amax(size_t(H), 0.0);
  const int64_t per = std::max<int64_t>(1, kItemElements / D);
  const int64_t items = (rows + per - 1) / per;
  std::vector<double> item_amax(size_t(items * H), 0.0);
  parallel_for(items, input_threads(), [&](int64_t item, int) {
    std::vector<double> x(static_cast<size_t>(D));
    for (int64_t r = item * per; r < std::min(rows, (item + 1) * per); ++r) {
      draw_row(src, r, x.data());
      double& m = item_amax[size_t(item * H + r % H)];
      m = std::max(m, row_amax(x.data(), D));
    }
  });
  for (int64_t i = 0; i < items; ++i)
    for (int32_t h = 0; h < H; ++h) amax[size_t(h)] = std::max(amax[size_t(h)], item_amax[size_t(i * H + h)]);
  return amax;
}

// Fills codes and scales of one tensor from its real-valued draws x[T, H, D]: 16-bit without
// scale, code = encode(x); with a scale mode, code = encode(x / scale), the scales shared by a
// tensor or head given (`shared`), per-token ones drawn here. Rows are drawn on the fly instead
// of being stored (a 128k context would need GiBs of x).
/// @pre out.heads, out.head_size and out.token_base are set; src draws out's stream; shared has
/// one scale per unit in the per-tensor and per-head modes
/// @post out.codes and out.scales are byte-identical to the sequential definition
void quantize(const Case& c, const draws::KvRows& src, const draws::ScaleDraw& draw,
              const std::vector<double>& shared, LogicalKv& out) {
  const int64_t T = out.token_base.back();
  const int32_t H = out.heads, D = out.head_size;
  const int64_t rows = T * H;
  out.codes.resize(size_t(rows * D));  // a no-op when make_inputs allocated it already
  const bool per_token = is_per_token(c.kv_scale);
  if (per_token) {
    out.scales.resize(size_t(rows));  // every row's scale is drawn below
  } else {
    const std::vector<float> hs = detail::head_row_scales(c.kv_scale, shared, H);
    out.scales.resize(size_t(rows));
    for (int64_t r = 0; r < rows; ++r) out.scales[size_t(r)] = hs[size_t(r % H)];
  }
  const double row0_scale = per_token ? detail::first_row_scale(src, draw, rows) : 0.0;
  for_row_ranges(rows, D, [&](int64_t r0, int64_t r1, int) {
    std::vector<double> x(static_cast<size_t>(D));
    for (int64_t r = r0; r < r1; ++r) {
      draw_row(src, r, x.data());
      if (per_token) out.scales[size_t(r)] = float(draw(row_amax(x.data(), D), uint64_t(r), row0_scale));
      encode_row(c.kv_dtype, x.data(), out.scales[size_t(r)], D, out.codes.data() + r * D);
    }
  });
}

}  // namespace

int default_threads() {
  if (const char* e = std::getenv("PACHECK_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(e, &end, 10);
    if (end != e && *end == '\0' && v >= 1) return int(std::min(v, 1024L));
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc >= 1 ? int(std::min(hc, 1024u)) : 1;
}

void set_input_threads(int n) { g_input_threads.store(std::max(n, 0), std::memory_order_relaxed); }

int input_threads() {
  const int n = g_input_threads.load(std::memory_order_relaxed);
  return n >= 1 ? n : default_threads();
}

void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int)>& body) {
  if (n <= 0) return;
  const int workers = int(std::min<int64_t>(std::max(threads, 1), n));
  if (workers == 1) {
    for (int64_t i = 0; i < n; ++i) body(i, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::mutex mu;
  int64_t failed_item = n;
  std::exception_ptr failure;
  auto run = [&](int worker) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      try {
        body(i, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < failed_item) {
          failed_item = i;
          failure = std::current_exception();
        }
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(size_t(workers - 1));
  try {
    for (int w = 1; w < workers; ++w) pool.emplace_back(run, w);
  } catch (const std::system_error&) {
    // No more threads available: the ones started (and this one) take every item anyway.
  }
  run(0);
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

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

namespace detail {

draws::KvRows InputParts::rows(KvTensor which, const double* mean, const double* gain) const {
  const Case& c = in.c;
  const bool key = which == KvTensor::key;
  draws::KvRows r;
  r.heads = c.num_kv_heads;
  r.head_size = c.head_size;
  if (key) {
    r.start = Rng(c.seed, Stream::kKey);
    r.gain = k_gain.empty() ? nullptr : gain ? gain : k_gain.data();
  } else {
    // V's rows start after its per-head means, which take the stream's first draws.
    r.start = Rng(c.seed, Stream::kValue);
    r.start.skip(2 * uint64_t(c.num_kv_heads));
    r.mean = mean ? mean : v_mean.data();
  }
  if (c.values == Values::outliers) {
    r.spread = Rng(c.seed, key ? Stream::kKeySpread : Stream::kValueSpread);
    r.has_spread = true;
  }
  return r;
}

InputParts make_input_parts(const ValidCase& vc) {
  const Case& c = vc;
  InputParts parts;
  Inputs& in = parts.in;
  in.c = c;
  const int32_t S = c.num_seqs, Hq = c.num_q_heads, Hkv = c.num_kv_heads, D = c.head_size;
  in.context_lens = c.context_lens;
  in.num_blocks = c.pool_blocks();
  in.max_blocks_per_seq = c.max_blocks_per_seq();

  const bool outliers = c.values == Values::outliers;
  const OutlierGains gains = outliers ? outlier_gains(c) : OutlierGains{};

  // Q: logits = scale * q.k with k ~ N(0, f^2), f ~ U(1/2, 2) so E f^2 = 1.75 -> sigma_q for kLogitStd.
  const double sm = c.effective_softmax_scale();
  const double sigma_q = kLogitStd / (sm * std::sqrt(double(D) * 1.75));
  {
    // Element e of q takes draws 4e .. 4e + 3 of its stream (one normal).
    const Rng rng0(c.seed, Stream::kQuery);
    const int64_t n = int64_t(S) * c.q_len * Hq * D;
    in.q_codes.resize(size_t(n));
    in.q.resize(size_t(n));
    const int64_t items = (n + kItemElements - 1) / kItemElements;
    parallel_for(items, input_threads(), [&](int64_t item, int) {
      Rng rng = rng0;
      rng.skip(uint64_t(item * kItemElements) * 4);
      for (int64_t i = item * kItemElements; i < std::min(n, (item + 1) * kItemElements); ++i) {
        double x = sigma_q * rng.normal();
        if (outliers)  // element i is (s, i, h, d); query head h reads KV head h / G's channels
          x *= gains.q[size_t((i / D) % Hq / c.gqa()) * size_t(D) + size_t(i % D)];
        in.q_codes[size_t(i)] = uint16_t(codec::encode(c.q_dtype, float(x)));
        in.q[size_t(i)] = codec::decode(c.q_dtype, in.q_codes[size_t(i)]);
      }
    });
  }

  // K and V over logical tokens: their shapes here, their rows in make_inputs (or on the GPU).
  std::vector<int64_t> base(size_t(S) + 1, 0);
  for (int32_t s = 0; s < S; ++s) base[size_t(s) + 1] = base[size_t(s)] + c.context_lens[size_t(s)];
  for (LogicalKv* kv : {&in.k, &in.v}) {
    kv->dtype = c.kv_dtype;
    kv->heads = Hkv;
    kv->head_size = D;
    kv->token_base = base;
  }
  if (outliers) parts.k_gain = gains.k;
  // V has a non-zero mean per head, so an output that collapsed to the V mean (uniform
  // attention) or to zero is far from the reference. The means take V's stream's first draws
  // (two each; InputParts::rows starts V's rows after them).
  Rng vrng(c.seed, Stream::kValue);
  parts.v_mean.resize(static_cast<size_t>(Hkv));
  for (auto& m : parts.v_mean) {
    const double sign = vrng.uniform() < 0.5 ? -1.0 : 1.0;  // named: fixes the draw order
    m = sign * vrng.uniform(0.5, 1.5);
  }
  parts.k_draw = draws::ScaleDraw(c.kv_dtype, Rng(c.seed, Stream::kKeyScale));
  parts.v_draw = draws::ScaleDraw(c.kv_dtype, Rng(c.seed, Stream::kValueScale));

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
  // Each pool page is therefore the valid page of at most one table entry (what lets pack and the
  // GPU packer write pages in parallel).
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
  return parts;
}

std::vector<double> shared_scales(ScaleMode mode, const draws::ScaleDraw& draw,
                                  const std::vector<double>& amax) {
  if (mode == ScaleMode::per_tensor) return {draw(*std::max_element(amax.begin(), amax.end()), 0, 0)};
  const size_t H = amax.size();
  std::vector<double> s(H);
  for (size_t h = 0; h < H; ++h) s[h] = draw(amax[h], uint64_t(h), h == 0 ? 0.0 : s[0]);
  return s;
}

// Raised by at most 2x, so it costs codes at most one bit, and a kernel that dequantizes V with
// K's scale, or K with V's, is off by 2x or more.
void set_apart(std::vector<double>& k, std::vector<double>& v) {
  for (size_t u = 0; u < k.size(); ++u) {
    if (v[u] >= k[u]) v[u] = std::max(v[u], 2.0 * k[u]);
    else k[u] = std::max(k[u], 2.0 * v[u]);
  }
}

double first_row_scale(const draws::KvRows& rows, const draws::ScaleDraw& draw, int64_t rows_count) {
  if (rows_count <= 1) return 0.0;
  std::vector<double> x(static_cast<size_t>(rows.head_size));
  draw_row(rows, 0, x.data());
  return draw(row_amax(x.data(), rows.head_size), 0, 0);
}

std::vector<float> head_row_scales(ScaleMode mode, const std::vector<double>& shared, int32_t heads) {
  std::vector<float> s(size_t(heads), 1.0f);
  for (int32_t h = 0; h < heads; ++h) {
    if (mode == ScaleMode::per_tensor) s[size_t(h)] = float(shared[0]);
    if (mode == ScaleMode::per_head) s[size_t(h)] = float(shared[size_t(h)]);
  }
  return s;
}

}  // namespace detail

Inputs make_inputs(const Case& c) { return make_inputs(ValidCase::checked(c)); }

Inputs make_inputs(const ValidCase& vc) {
  const Case& c = vc;
  detail::InputParts parts = detail::make_input_parts(vc);
  Inputs& in = parts.in;
  alloc_two(in.k.codes, in.v.codes, size_t(parts.rows_count() * c.head_size));
  const draws::KvRows ksrc = parts.rows(KvTensor::key), vsrc = parts.rows(KvTensor::value);
  std::vector<double> kshared, vshared;
  if (c.kv_scale == ScaleMode::per_tensor || c.kv_scale == ScaleMode::per_head) {
    // Only 8-bit scales read the amax, so only they draw the rows twice.
    const bool eight = is_8bit(c.kv_dtype);
    const std::vector<double> zero(size_t(c.num_kv_heads), 0.0);
    kshared = detail::shared_scales(c.kv_scale, parts.k_draw, eight ? head_amax(ksrc, parts.rows_count()) : zero);
    vshared = detail::shared_scales(c.kv_scale, parts.v_draw, eight ? head_amax(vsrc, parts.rows_count()) : zero);
    detail::set_apart(kshared, vshared);
  }
  quantize(c, ksrc, parts.k_draw, kshared, in.k);
  quantize(c, vsrc, parts.v_draw, vshared, in.v);
  return std::move(in);
}

namespace {

// Writes every valid token's codes and scales in (s, t, h, d) order; later writes win. The byte
// definition of pack, used as is when two table entries share a page (only hand-made inputs do).
void scatter_tokens(const Inputs& in, PhysicalKv& p, bool scales) {
  const Case& c = in.c;
  const int32_t eb = dtype_bytes(c.kv_dtype);
  const PagedLayout K = in.paged(p.k_layout), V = in.paged(p.v_layout);
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t) {
      const int32_t blk = K.block_of(s, t), tok = K.slot_of(t);
      for (int32_t h = 0; h < c.num_kv_heads; ++h) {
        if (!scales) {
          for (int32_t d = 0; d < c.head_size; ++d) {
            store_code(p.k_cache, eb, K(s, t, h, d), in.k.code(s, t, h, d));
            store_code(p.v_cache, eb, V(s, t, h, d), in.v.code(s, t, h, d));
          }
        } else {
          const int64_t si = p.scale_layout(blk, h, tok);
          p.k_scales[size_t(si)] = in.k.scale(s, t, h);
          p.v_scales[size_t(si)] = in.v.scale(s, t, h);
        }
      }
    }
  }
}

// Elements [lo, hi) of a 1- or 2-byte code buffer := code (store_code's byte order, inlined).
/// @pre eb is 1 or 2; [lo, hi) lies in buf
void fill_codes(uint8_t* buf, int32_t eb, int64_t lo, int64_t hi, uint16_t code) {
  if (eb == 1) {
    std::fill(buf + lo, buf + hi, uint8_t(code));
    return;
  }
  // The two bytes repeated over a small block, then copied block by block.
  uint8_t pattern[256];
  for (int i = 0; i < 128; ++i) {
    pattern[2 * i] = uint8_t(code & 0xFF);
    pattern[2 * i + 1] = uint8_t(code >> 8);
  }
  for (int64_t i = lo; i < hi; i += 128)
    std::memcpy(buf + 2 * i, pattern, size_t(std::min<int64_t>(128, hi - i)) * 2);
}

// Element base + doff[d] := codes[d] for d < D (one head row of one token), in store_code's
// byte order.
/// @pre eb is 1 or 2; contiguous only if doff is 0, 1, ..., D - 1
void scatter_codes(uint8_t* buf, int32_t eb, int64_t base, const int64_t* doff, bool contiguous,
                   const uint16_t* codes, int32_t D) {
  if (eb == 1) {
    for (int32_t d = 0; d < D; ++d) buf[base + doff[d]] = uint8_t(codes[d]);
    return;
  }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (contiguous) {  // little-endian bytes of the codes: a plain copy
    std::memcpy(buf + 2 * base, codes, size_t(D) * 2);
    return;
  }
#endif
  for (int32_t d = 0; d < D; ++d) {
    const int64_t i = base + doff[d];
    buf[2 * i] = uint8_t(codes[d] & 0xFF);
    buf[2 * i + 1] = uint8_t(codes[d] >> 8);
  }
}

}  // namespace

std::vector<int64_t> detail::page_owners(const Inputs& in) {
  const Case& c = in.c;
  std::vector<int64_t> owner(size_t(std::max<int64_t>(in.num_blocks, 0)), -1);
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t nb = c.blocks_for(in.context_lens[size_t(s)]);
    for (int32_t b = 0; b < nb; ++b) {
      const int64_t slot = int64_t(s) * in.max_blocks_per_seq + b;
      const int32_t blk = in.block_tables[size_t(slot)];
      if (blk < 0 || blk >= in.num_blocks || owner[size_t(blk)] >= 0) return {};
      owner[size_t(blk)] = slot;
    }
  }
  return owner;
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
  alloc_two(p.k_cache, p.v_cache, size_t(elems * eb));
  p.k_scales.assign(size_t(p.scale_layout.size()), token_scales ? nan : 1.0f);
  p.v_scales = p.k_scales;
  const std::vector<int64_t> owner = detail::page_owners(in);

  if (owner.empty() && in.num_blocks > 0) {
    for (auto* buf : {&p.k_cache, &p.v_cache})
      for (int64_t i = 0; i < elems; ++i) store_code(*buf, eb, i, poison);
    scatter_tokens(in, p, false);
    scatter_tokens(in, p, true);
    return p;
  }

  // One item per pool page: poison its whole span (page and the padding after it), then write
  // the tokens of the logical page placed there. Every layout is dense within a page's span and
  // pages are owned by at most one table entry, so items write disjoint bytes, and each byte ends
  // up as the sequential scatter leaves it. Per-token scales follow the page too; the shared
  // scale slots of the other modes are written afterwards, sequentially, as before.
  const int32_t B = c.block_size, H = c.num_kv_heads, D = c.head_size;
  const int64_t stride = p.k_layout.page_stride;
  // The layout formula is a sum of a (blk, h, tok) part and a d part, so an element's offset is
  // L(blk, h, tok, 0) + L(0, 0, 0, d): the d parts are computed once.
  std::vector<int64_t> k_doff(static_cast<size_t>(D)), v_doff(static_cast<size_t>(D));
  bool k_contiguous = true, v_contiguous = true;
  for (int32_t d = 0; d < D; ++d) {
    k_doff[size_t(d)] = p.k_layout(0, 0, 0, d);
    v_doff[size_t(d)] = p.v_layout(0, 0, 0, d);
    k_contiguous = k_contiguous && k_doff[size_t(d)] == d;
    v_contiguous = v_contiguous && v_doff[size_t(d)] == d;
  }
  const int threads = elems * 2 < kItemElements ? 1 : input_threads();
  parallel_for(in.num_blocks, threads, [&](int64_t blk, int) {
    const int64_t lo = blk * stride;
    const int64_t hi = blk + 1 == in.num_blocks ? elems : lo + stride;
    fill_codes(p.k_cache.data(), eb, lo, hi, poison);
    fill_codes(p.v_cache.data(), eb, lo, hi, poison);
    const int64_t slot = owner[size_t(blk)];
    if (slot < 0) return;
    const int32_t s = int32_t(slot / in.max_blocks_per_seq),
                  b = int32_t(slot % in.max_blocks_per_seq);
    const int32_t ntok = std::min(B, in.context_lens[size_t(s)] - b * B);
    for (int32_t tok = 0; tok < ntok; ++tok) {
      const int64_t r = in.k.row(s, b * B + tok);
      for (int32_t h = 0; h < H; ++h) {
        const size_t rh = size_t(r * H + h);
        scatter_codes(p.k_cache.data(), eb, p.k_layout(blk, h, tok, 0), k_doff.data(), k_contiguous,
                      in.k.codes.data() + rh * size_t(D), D);
        scatter_codes(p.v_cache.data(), eb, p.v_layout(blk, h, tok, 0), v_doff.data(), v_contiguous,
                      in.v.codes.data() + rh * size_t(D), D);
        if (token_scales) {
          const int64_t si = p.scale_layout(blk, h, tok);
          p.k_scales[size_t(si)] = in.k.scales[rh];
          p.v_scales[size_t(si)] = in.v.scales[rh];
        }
      }
    }
  });
  if (!token_scales) scatter_tokens(in, p, true);
  return p;
}

LogicalKv gather(const Inputs& in, const PhysicalKv& p, KvTensor which) {
  const Case& c = in.c;
  const bool key = which == KvTensor::key;
  const PagedLayout paged = in.paged(key ? p.k_layout : p.v_layout);
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
      const int32_t blk = paged.block_of(s, t), tok = paged.slot_of(t);
      const int64_t r = out.row(s, t);
      for (int32_t h = 0; h < out.heads; ++h) {
        for (int32_t d = 0; d < out.head_size; ++d)
          out.codes[size_t((r * out.heads + h) * out.head_size + d)] = load_code(cache, eb, paged(s, t, h, d));
        out.scales[size_t(r * out.heads + h)] = scales[size_t(p.scale_layout(blk, h, tok))];
      }
    }
  }
  return out;
}

uint64_t input_hash(const Inputs& in) {
  uint64_t h = fnv1a(nullptr, 0);  // FNV-1a (core/text.hpp) continued over every input in turn
  auto bytes = [&](const void* p, size_t n) { h = fnv1a(p, n, h); };
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
