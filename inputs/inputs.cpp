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

using detail::kItemElements;

namespace {

// Target standard deviation of the logits. Around 2 the softmax is peaked: a wrong K index or
// scale moves the output far beyond tolerance (q,k ~ U(+-1/sqrt D) would make it ~uniform and
// hide exactly those bugs, as it did in aiter's and vLLM's own tests).
constexpr double kLogitStd = 2.0;
// Entries past kv_indptr[S] in a CSR table: free pages a kernel must never read.
constexpr int kCsrGarbageEntries = 4;

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

BatchArrays batch_arrays(const Case& c) {
  BatchArrays b;
  const int32_t S = c.num_seqs;
  b.cu_seqlens_q.assign(size_t(S) + 1, 0);
  for (int32_t s = 0; s < S; ++s) b.cu_seqlens_q[size_t(s) + 1] = b.cu_seqlens_q[size_t(s)] + c.q_len_of(s);
  if (c.page_table == PageTable::csr) {
    b.kv_indptr.assign(size_t(S) + 1, 0);
    b.kv_last_page_len.assign(size_t(S), 0);
    for (int32_t s = 0; s < S; ++s) {
      const int32_t ctx = c.context_lens[size_t(s)], nb = c.blocks_for(ctx);
      b.kv_indptr[size_t(s) + 1] = b.kv_indptr[size_t(s)] + nb;
      b.kv_last_page_len[size_t(s)] = nb == 0 ? 0 : ctx - (nb - 1) * c.block_size;
    }
  }
  return b;
}

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
  return make_page_layout(c.kv_layout, KvTensor::key, c.num_kv_heads, c.block_size,
                          cache_row(c.kv_layout, KvTensor::key, c.head_size, c.dv()), dtype_bytes(c.kv_dtype),
                          c.page_stride());
}
PageLayout value_layout(const Case& c) {
  return make_page_layout(c.kv_layout, KvTensor::value, c.num_kv_heads, c.block_size,
                          cache_row(c.kv_layout, KvTensor::value, c.head_size, c.dv()), dtype_bytes(c.kv_dtype),
                          c.page_stride_v());
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
  r.head_size = key ? c.head_size : c.dv();
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
  BatchArrays batch = batch_arrays(c);
  in.cu_seqlens_q = std::move(batch.cu_seqlens_q);
  in.num_blocks = c.pool_blocks();
  in.max_blocks_per_seq = c.max_blocks_per_seq();

  const bool outliers = c.values == Values::outliers, extremes = c.values == Values::extremes;
  const OutlierGains gains = outliers ? outlier_gains(c) : OutlierGains{};

  // Q: logits = scale * q.k with k ~ N(0, f^2), f ~ U(1/2, 2) so E f^2 = 1.75 -> sigma_q for kLogitStd.
  const double sm = c.effective_softmax_scale();
  const double sigma_q = kLogitStd / (sm * std::sqrt(double(D) * 1.75));
  {
    // Element e of q takes draws 4e .. 4e + 3 of its stream (one normal).
    const Rng rng0(c.seed, Stream::kQuery);
    const int64_t n = c.total_q() * Hq * D;
    in.q_codes.resize(size_t(n));
    in.q.resize(size_t(n));
    const int64_t items = (n + kItemElements - 1) / kItemElements;
    parallel_for(items, input_threads(), [&](int64_t item, int) {
      Rng rng = rng0;
      rng.skip(uint64_t(item * kItemElements) * 4);
      for (int64_t i = item * kItemElements; i < std::min(n, (item + 1) * kItemElements); ++i) {
        double x = sigma_q * rng.normal();
        if (outliers)  // element i is (row, h, d); query head h reads KV head h / G's channels
          x *= gains.q[size_t((i / D) % Hq / c.gqa()) * size_t(D) + size_t(i % D)];
        if (extremes) {  // query row i / (Hq D): every fourth zero, the next one 2^13 times larger
          const int64_t row = i / (int64_t(Hq) * D);
          if (row % 4 == 3) x = 0.0;
          else if (row % 4 == 0 && row > 0) x = std::max(-3e4, std::min(3e4, x * 8192.0));  // fp16-safe
        }
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
    kv->head_size = kv == &in.v ? c.dv() : D;
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
    // Pads other than garbage (TablePad): entries past each sequence's pages (drawn first, so
    // the draws stay as they were).
    if (c.table_pad != TablePad::garbage)
      for (int32_t s = 0; s < S; ++s)
        for (int32_t b = c.blocks_for(c.context_lens[size_t(s)]); b < in.max_blocks_per_seq; ++b)
          in.block_tables[size_t(int64_t(s) * in.max_blocks_per_seq + b)] = c.table_pad == TablePad::zero ? 0 : -1;
    // The CSR form of the same map: each sequence's pages in order, then garbage entries (free
    // pages, drawn after every padded-table draw so those stay as they were), or the pad.
    if (c.page_table == PageTable::csr) {
      in.kv_indptr = std::move(batch.kv_indptr);
      in.kv_last_page_len = std::move(batch.kv_last_page_len);
      for (int32_t s = 0; s < S; ++s) {
        const int32_t nb = c.blocks_for(c.context_lens[size_t(s)]);
        for (int32_t b = 0; b < nb; ++b)
          in.kv_indices.push_back(in.block_tables[size_t(int64_t(s) * in.max_blocks_per_seq + b)]);
      }
      for (int k = 0; k < kCsrGarbageEntries; ++k) {
        const int32_t free_page = nfree > 0 ? perm[size_t(used + rng.uniform_int(0, nfree - 1))]
                                            : perm[size_t(rng.uniform_int(0, in.num_blocks - 1))];
        in.kv_indices.push_back(c.table_pad == TablePad::garbage ? free_page
                                : c.table_pad == TablePad::zero  ? 0
                                                                 : -1);
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
  if (c.dv() == c.head_size) {
    detail::alloc_two(in.k.codes, in.v.codes, size_t(parts.rows_count() * c.head_size));
  } else {
    in.k.codes.resize(size_t(parts.rows_count() * c.head_size));
    in.v.codes.resize(size_t(parts.rows_count() * c.dv()));
  }
  const draws::KvRows ksrc = parts.rows(KvTensor::key), vsrc = parts.rows(KvTensor::value);
  std::vector<double> kshared, vshared;
  if (c.kv_scale == ScaleMode::per_tensor || c.kv_scale == ScaleMode::per_head) {
    // Only 8-bit scales read the amax, so only they draw the rows twice.
    const bool eight = is_8bit(c.kv_dtype);
    const std::vector<double> zero(size_t(c.num_kv_heads), 0.0);
    kshared = detail::shared_scales(c.kv_scale, parts.k_draw, eight ? head_amax(ksrc, parts.rows_count()) : zero);
    if (!is_mla(c.kv_layout)) {  // an MLA cache has one scale for its one tensor
      vshared = detail::shared_scales(c.kv_scale, parts.v_draw, eight ? head_amax(vsrc, parts.rows_count()) : zero);
      detail::set_apart(kshared, vshared);
    }
  }
  if (is_mla(c.kv_layout)) {
    // A latent cache: V is K's first Dv values, the same codes under the same scale.
    quantize(c, ksrc, parts.k_draw, kshared, in.k);
    const int64_t rows = parts.rows_count();
    const int32_t D = c.head_size, Dv = c.dv();
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(in.k.codes.begin() + r * D, Dv, in.v.codes.begin() + r * Dv);
    in.v.scales = in.k.scales;
    return std::move(in);
  }
  quantize(c, ksrc, parts.k_draw, kshared, in.k);
  quantize(c, vsrc, parts.v_draw, vshared, in.v);
  return std::move(in);
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
  // Only where a case has them (a uniform, padded case hashes as it always did).
  if (in.c.ragged()) vec(in.cu_seqlens_q);
  vec(in.kv_indptr);
  vec(in.kv_indices);
  vec(in.kv_last_page_len);
  return h;
}

}  // namespace pa
