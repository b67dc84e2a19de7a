#include "reference/attention.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

// The CPU oracle. Semantics, one decode step of Case c over *logical* K/V (docs/problem.md):
//
//  * GQA/MQA: query head h reads KV head h / G with G = Hq / Hkv (never h % Hkv).
//  * MTP / positions: query token i (0 <= i < q_len_s) of sequence s sits at position
//    p = ctx_s - q_len_s + i and sees keys j <= p (causal among the new tokens). Its row in the
//    packed output [T, Hq, Dv] is cu_seqlens_q[s] + i (a ragged batch: q_len_s per sequence).
//  * Empty rows: a sequence of context 0 (an empty slot of a padded batch) sees no key: its rows
//    are out = 0, uniform = 0 and lse = -inf (the sink's logit with sinks: it alone is left in
//    the denominator).
//  * Head sizes: q and K have D, V and the output Dv (head_size_v; D unless the case says).
//  * Logit of key j: x = softmax_scale_eff * (q . k_j)           (Case::effective_softmax_scale)
//                    x = c * tanh(x / c)        if logit_softcap c > 0
//                    x = x + slope_h * (j - p)  if ALiBi (slopes from in.alibi_slopes, j - p <= 0)
//  * Sliding window W > 0: only keys with p - j < W, i.e. j in (p - W, p]. Because j = p is always
//    visible, no row is ever empty (the "empty window" edge case cannot arise for W >= 1; W = 0 is
//    off). A window at least as long as the context is the same as no window.
//  * Sinks: in.sinks[h] is one extra logit that enters the softmax denominator only; it has no V
//    row, so it only lowers the weights of the real keys.
//  * out = sum_j softmax_j * V_j; lse = log(sum_j exp(x_j) [+ exp(sink)]) (natural log).
//  * uniform = mean of the V rows the query can see (for the degenerate-output check).
//  * stats.v_max = max |V| over every valid token of every sequence; stats.logit_rms = max over
//    every (query row, visible key) of |softmax_scale_eff| * sqrt(sum_d (q_d k_d)^2), the
//    quadrature sum the tolerance model needs (metrics.cpp); stats.max_context = max ctx_s;
//    stats.pv_rms = max over rows of sqrt((1/D) sum_t w_t^2 (|v_t| + |o|)^2) over the keys whose
//    weight is below the row's maximum (w_t = exp(x_t - m) / denom), an upper bound of the
//    P-rounding response ToleranceInputs::pv_rms defines.
//
// Fixed summation order (golden fixtures are byte-stable across compilers and SIMD widths; the
// project compiles with -ffp-contract=off, so no FMA contraction either):
//  * q . k_j: one double accumulator starting at 0, d = 0, 1, ..., D-1 in increasing order.
//    The quadrature sum for logit_rms uses its own accumulator in the same order.
//  * m = max over the visible logits and the sink (max is exact, order does not matter).
//  * e_j = exp(x_j - m); denom = sum of e_j over j increasing from the window start, then
//    + exp(sink - m) last.
//  * acc[d] = sum over j increasing of e_j * V[j][d] (one accumulator per d; the loop over d is
//    element-wise, so vectorizing it does not reorder any sum); out[d] = acc[d] / denom.
//  * lse = m + log(denom).
//  * uniform[d] = (sum over j increasing of V[j][d]) / n.
// v_max and logit_rms are maxima (exact in any order; NaN never wins, as with std::max). logit_rms
// takes the max of the quadrature sums first and applies |scale| * sqrt once: both are
// non-decreasing, so that is the same number.
// exp, log and tanh come from the C library: results are byte-stable for a given libm (glibc);
// these functions are not required to be correctly rounded, so another libm may differ in ulps.
//
// How it is fast without touching any of that order (each change only reschedules independent
// sums; attention_threads_test.cpp checks the bits against the plain sequential oracle):
//  * Work items are (sequence, group of adjacent KV heads), independent of each other (each writes
//    its own query heads' rows; the two maxima are combined in item order), run on
//    reference_threads() threads. Whole sequences are preferred: a token's heads are adjacent in
//    memory, so an item then reads K/V contiguously.
//  * An item decodes each K/V row once (decode(code) * scale, the value LogicalKv::value gives)
//    and serves all G query heads and q_len tokens of its KV heads from it.
//  * Logits: 8 keys at a time, K decoded into a [D][8] tile, so 8 dot products run in the 8 lanes
//    of one loop over d, each lane with its own accumulator in increasing d -- vector code doing
//    the additions of 8 scalar dot products in their order. Four query heads share a pass over
//    the tile, which keeps 8 independent add chains in flight.
//  * P.V: blocks of 32 output dims of two query heads stay in registers while the rows j of a V
//    tile stream by in increasing j; lanes are independent (head, d) sums in the documented order.
//  * Hot loops are PA_CPU_CLONES (baseline, AVX2 and AVX-512 clones of the same plain loops).

namespace pa {

namespace {

constexpr int32_t kLanes = 8;          // keys per logit tile; dims per P.V register block
constexpr int32_t kTileRows = 16;      // V rows per P.V tile
constexpr int32_t kPrefetchRows = 16;  // how far ahead of its use a K/V row is prefetched

std::atomic<int> g_reference_threads{0};

// Helpers of a PA_CPU_CLONES function must be inlined into it to get its clone's vector width.
#if defined(__GNUC__)
#define PA_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PA_ALWAYS_INLINE inline
#endif

int32_t round_up(int32_t n, int32_t m) { return (n + m - 1) / m * m; }

// Decodes n rows of one KV head: row r (token t0 + r) lands at out + r * Dp as
// double(decode(code)) * double(scale), exactly LogicalKv::value. The dtype is resolved once so
// the codec inlines and the 8-wide blocks vectorise; the padding d in [D, Dp) is never written.
template <DType T>
PA_ALWAYS_INLINE void decode_rows_as(const uint16_t* codes, const float* scales, int32_t n,
                                     int32_t H, int32_t D, int32_t Dp, double* out) {
  using Storage = typename codec::Codec<T>::Storage;
  for (int32_t r = 0; r < n; ++r) {
    const uint16_t* c = codes + int64_t(r) * H * D;
    const double s = double(scales[int64_t(r) * H]);
    double* o = out + int64_t(r) * Dp;
    int32_t d = 0;
    for (; d + kLanes <= D; d += kLanes)
      for (int32_t w = 0; w < kLanes; ++w)
        o[d + w] = double(codec::Codec<T>::decode(Storage(c[d + w]))) * s;
    for (; d < D; ++d) o[d] = double(codec::Codec<T>::decode(Storage(c[d]))) * s;
  }
}

/// @pre rows t0 .. t0 + n - 1 of sequence s exist in kv; out has n * Dp doubles whose padding
/// (d >= D) is zero and stays zero
PA_CPU_CLONES void decode_rows(const LogicalKv& kv, int32_t s, int32_t t0, int32_t n, int32_t h,
                               int32_t Dp, double* out) {
  const int32_t H = kv.heads, D = kv.head_size;
  const int64_t row = kv.row(s, t0) * H + h;
  const uint16_t* codes = kv.codes.data() + row * D;
  const float* scales = kv.scales.data() + row;
  switch (kv.dtype) {
    case DType::bf16: return decode_rows_as<DType::bf16>(codes, scales, n, H, D, Dp, out);
    case DType::fp16: return decode_rows_as<DType::fp16>(codes, scales, n, H, D, Dp, out);
    case DType::fp8_e4m3fn:
      return decode_rows_as<DType::fp8_e4m3fn>(codes, scales, n, H, D, Dp, out);
    case DType::fp8_e4m3fnuz:
      return decode_rows_as<DType::fp8_e4m3fnuz>(codes, scales, n, H, D, Dp, out);
    case DType::int8: return decode_rows_as<DType::int8>(codes, scales, n, H, D, Dp, out);
    default:
      for (int32_t r = 0; r < n; ++r)
        for (int32_t d = 0; d < D; ++d) out[int64_t(r) * Dp + d] = kv.value(s, t0 + r, h, d);
  }
}

// A key tile straight into the [D][kLanes] layout the dot products read: kt[d][w] = value of key
// t0 + w at d (LogicalKv::value, as decode_rows), lanes w >= n zero. Decoding in this order costs
// a gather of the kLanes codes of each d, far less than decoding rows and transposing doubles.
template <DType T>
PA_ALWAYS_INLINE void decode_keys_as(const uint16_t* codes, const float* scales, int32_t n,
                                     int32_t H, int32_t D, double* kt) {
  using Storage = typename codec::Codec<T>::Storage;
  const uint16_t* c[kLanes];
  double sc[kLanes];
  for (int32_t w = 0; w < kLanes; ++w) {
    c[w] = codes + int64_t(w < n ? w : 0) * H * D;  // lanes past n re-read row 0; zeroed below
    sc[w] = w < n ? double(scales[int64_t(w) * H]) : 0.0;
  }
  for (int32_t d = 0; d < D; ++d) {
#pragma GCC unroll 8
    for (int32_t w = 0; w < kLanes; ++w)
      kt[int64_t(d) * kLanes + w] = double(codec::Codec<T>::decode(Storage(c[w][d]))) * sc[w];
  }
  if (n < kLanes)  // value * 0 is -0 or NaN for some codes: make the unused lanes plain zeros
    for (int32_t d = 0; d < D; ++d)
      for (int32_t w = n; w < kLanes; ++w) kt[int64_t(d) * kLanes + w] = 0.0;
}

/// @pre keys t0 .. t0 + n - 1 (1 <= n <= kLanes) of sequence s exist in kv; kt has D * kLanes
PA_CPU_CLONES void decode_keys(const LogicalKv& kv, int32_t s, int32_t t0, int32_t n, int32_t h,
                               double* kt) {
  const int32_t H = kv.heads, D = kv.head_size;
  const int64_t row = kv.row(s, t0) * H + h;
  const uint16_t* codes = kv.codes.data() + row * D;
  const float* scales = kv.scales.data() + row;
  switch (kv.dtype) {
    case DType::bf16: return decode_keys_as<DType::bf16>(codes, scales, n, H, D, kt);
    case DType::fp16: return decode_keys_as<DType::fp16>(codes, scales, n, H, D, kt);
    case DType::fp8_e4m3fn: return decode_keys_as<DType::fp8_e4m3fn>(codes, scales, n, H, D, kt);
    case DType::fp8_e4m3fnuz:
      return decode_keys_as<DType::fp8_e4m3fnuz>(codes, scales, n, H, D, kt);
    case DType::int8: return decode_keys_as<DType::int8>(codes, scales, n, H, D, kt);
    default:
      for (int32_t d = 0; d < D; ++d)
        for (int32_t w = 0; w < kLanes; ++w)
          kt[int64_t(d) * kLanes + w] = w < n ? kv.value(s, t0 + w, h, d) : 0.0;
  }
}

// Asks the cache for rows t0 .. t0 + n - 1 (clipped to ctx) of KV heads h0 .. h0 + nh - 1 ahead
// of their use. Unless nh == Hkv those are runs of nh * D codes out of every Hkv * D, a stride the
// hardware prefetchers handle badly; a hint has no effect on any value.
void prefetch_rows(const LogicalKv& kv, int32_t s, int32_t ctx, int32_t t0, int32_t n, int32_t h0,
                   int32_t nh) {
#if defined(__GNUC__)
  const int64_t bytes = int64_t(nh) * kv.head_size * int64_t(sizeof(uint16_t));
  for (int32_t t = t0; t < std::min(ctx, t0 + n); ++t) {
    const char* row = reinterpret_cast<const char*>(kv.codes.data() +
                                                    (kv.row(s, t) * kv.heads + h0) * kv.head_size);
    for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(row + b);
  }
#else
  (void)kv, (void)s, (void)ctx, (void)t0, (void)n, (void)h0, (void)nh;
#endif
}

// dot[g][w] = sum_d q[g][d] * kt[d][w] and sq[g][w] = sum_d (q[g][d] * kt[d][w])^2 for NQ query
// rows g at once: each (g, w) lane its own accumulator, d increasing. NQ rows share each load of
// kt and give 2 * NQ independent chains, so the adds overlap instead of waiting on each other.
template <int NQ>
PA_ALWAYS_INLINE void dot_rows(const double* q, const double* kt, int32_t D, double* dot,
                               double* sq) {
  double a[NQ][kLanes] = {}, b[NQ][kLanes] = {};
  for (int32_t d = 0; d < D; ++d) {
    const double* k = kt + int64_t(d) * kLanes;
#pragma GCC unroll 4
    for (int g = 0; g < NQ; ++g) {
      const double qd = q[int64_t(g) * D + d];
      for (int32_t w = 0; w < kLanes; ++w) {
        const double prod = qd * k[w];
        a[g][w] += prod;
        b[g][w] += prod * prod;
      }
    }
  }
  for (int g = 0; g < NQ; ++g)
    for (int32_t w = 0; w < kLanes; ++w) {
      dot[g * kLanes + w] = a[g][w];
      sq[g * kLanes + w] = b[g][w];
    }
}

// dot_rows for nq query rows q[g * D ..], four at a time.
/// @pre dot and sq have nq * kLanes entries
PA_CPU_CLONES void dot_tile(const double* q, int32_t nq, const double* kt, int32_t D, double* dot,
                            double* sq) {
  int32_t g = 0;
  for (; g + 4 <= nq; g += 4)
    dot_rows<4>(q + int64_t(g) * D, kt, D, dot + g * kLanes, sq + g * kLanes);
  for (; g < nq; ++g) dot_rows<1>(q + int64_t(g) * D, kt, D, dot + g * kLanes, sq + g * kLanes);
}

// For NE weight rows g: acc_g[d] += e_g[r] * v[r * Dp + d] for r = 0, 1, ..., n - 1 in that
// order (acc_g = acc + g * acc_stride, e_g = e + g * e_stride), for the NB * kLanes dims from d0,
// held in registers across the rows; with e == nullptr (NE = 1) the weight is absent:
// acc[d] += v[r * Dp + d]. The NE rows share each load of v and give NE * NB independent chains.
template <int NE, int NB>
PA_ALWAYS_INLINE void accumulate_block(double* acc, int64_t acc_stride, const double* e,
                                       int64_t e_stride, const double* v, int32_t n, int32_t Dp) {
  double a[NE][NB][kLanes];
#pragma GCC unroll 2
  for (int g = 0; g < NE; ++g)
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      for (int32_t w = 0; w < kLanes; ++w) a[g][b][w] = acc[g * acc_stride + b * kLanes + w];
  for (int32_t r = 0; r < n; ++r) {
    const double* vr = v + int64_t(r) * Dp;
#pragma GCC unroll 2
    for (int g = 0; g < NE; ++g) {
      const double er = e ? e[g * e_stride + r] : 1.0;
#pragma GCC unroll 4
      for (int b = 0; b < NB; ++b) {
        if (e) {
          for (int32_t w = 0; w < kLanes; ++w) a[g][b][w] += er * vr[b * kLanes + w];
        } else {
          for (int32_t w = 0; w < kLanes; ++w) a[g][b][w] += vr[b * kLanes + w];
        }
      }
    }
  }
#pragma GCC unroll 2
  for (int g = 0; g < NE; ++g)
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
      for (int32_t w = 0; w < kLanes; ++w) acc[g * acc_stride + b * kLanes + w] = a[g][b][w];
}

// accumulate_block over every d < Dp (Dp a multiple of kLanes; acc rows and v are padded to it)
// for ne weight rows, two at a time.
/// @pre Dp % kLanes == 0; e != nullptr or ne == 1
PA_CPU_CLONES void accumulate_rows(double* acc, int64_t acc_stride, const double* e,
                                   int64_t e_stride, int32_t ne, const double* v, int32_t n,
                                   int32_t Dp) {
  int32_t g = 0;
  for (; e && g + 2 <= ne; g += 2) {
    double* ag = acc + g * acc_stride;
    const double* eg = e + g * e_stride;
    int32_t d0 = 0;
    for (; d0 + 4 * kLanes <= Dp; d0 += 4 * kLanes)
      accumulate_block<2, 4>(ag + d0, acc_stride, eg, e_stride, v + d0, n, Dp);
    for (; d0 < Dp; d0 += kLanes)
      accumulate_block<2, 1>(ag + d0, acc_stride, eg, e_stride, v + d0, n, Dp);
  }
  for (; g < ne; ++g) {
    double* ag = acc + g * acc_stride;
    const double* eg = e ? e + g * e_stride : nullptr;
    int32_t d0 = 0;
    for (; d0 + 4 * kLanes <= Dp; d0 += 4 * kLanes)
      accumulate_block<1, 4>(ag + d0, acc_stride, eg, e_stride, v + d0, n, Dp);
    for (; d0 < Dp; d0 += kLanes)
      accumulate_block<1, 1>(ag + d0, acc_stride, eg, e_stride, v + d0, n, Dp);
  }
}

// max(init, max |v[r * Dp + d]|) over r < n, d < D. Max is exact, so lane-wise maxima combined
// at the end are the sequential max; like std::max, a NaN never wins.
PA_CPU_CLONES double abs_max_rows(const double* v, int32_t n, int32_t D, int32_t Dp, double init) {
  double m[kLanes];
  for (int32_t w = 0; w < kLanes; ++w) m[w] = init;
  for (int32_t r = 0; r < n; ++r) {
    const double* vr = v + int64_t(r) * Dp;
    int32_t d = 0;
    for (; d + kLanes <= D; d += kLanes)
      for (int32_t w = 0; w < kLanes; ++w) m[w] = std::max(m[w], std::fabs(vr[d + w]));
    for (; d < D; ++d) m[0] = std::max(m[0], std::fabs(vr[d]));
  }
  double best = init;
  for (int32_t w = 0; w < kLanes; ++w) best = std::max(best, m[w]);
  return best;
}

// Per-worker buffers, reused across items. An item holds nh KV heads; "row" (hh, i, g) below is
// query token i of query head (h0 + hh) * G + g.
struct Scratch {
  std::vector<double> q;         // [nh, q_len, G, D] the item's query rows as double
  std::vector<double> kt;        // [D, kLanes] one head's key tile, transposed
  std::vector<double> dot;       // [G, kLanes]
  std::vector<double> sq;        // [G, kLanes]
  std::vector<double> x;         // [nh, q_len, G, span] logits, then exp(x - m)
  std::vector<double> vt;        // [kTileRows, Dp] one head's V tile
  std::vector<double> acc;       // [nh, q_len, G, Dp]
  std::vector<double> uni;       // [nh, q_len, Dp]
  std::vector<double> m, denom;  // [nh, q_len, G]
  std::vector<double> pv;        // [nh, q_len, G, 3] the pv_rms sums (see run_item)
  std::vector<double> vnorm;     // [kTileRows] |V row| of the tile
};

// The maxima of one item, combined in item order afterwards.
struct ItemStats {
  double v_max = 0, logit_sq_max = 0, pv_sq_max = 0;
};

struct Shape {
  int32_t Hq, G, D, Dv, Dvp, W;  // Dvp: Dv padded to kLanes (V tiles, accumulators)
  double sm, cap;
};

// One item: sequence s, KV heads h0 .. h0 + nh - 1, i.e. every query row (s, i, h) with h / G in
// that range. A token's heads are adjacent in LogicalKv, so an item of several heads reads its
// K/V as contiguous runs; each head's arithmetic is the same whatever nh is.
/// @pre check_inputs(in) passed; h0 + nh <= Hkv
/// @post r.out, r.uniform, r.lse hold the item's rows; st holds its two maxima; nothing else of
/// r is written (items run concurrently)
void run_item(const Inputs& in, const Shape& sh, int32_t s, int32_t h0, int32_t nh, Scratch& w,
              ItemStats& st, ReferenceResult& r) {
  const Case& c = in.c;
  const int32_t QL = c.q_len_of(s), G = sh.G, D = sh.D, Dv = sh.Dv, Dp = sh.Dvp, W = sh.W;
  const int32_t ctx = in.context_lens[size_t(s)];
  // Position of query token i, and the first key it sees.
  auto pos = [&](int32_t i) { return ctx - QL + i; };
  auto first = [&](int32_t i) { return W > 0 ? std::max(0, pos(i) - W + 1) : 0; };
  const int32_t base = std::min(first(0), ctx);  // lowest key any token sees (first() is non-decreasing in i)
  const size_t span = size_t(ctx - base);
  const size_t rows = size_t(nh) * QL * G;  // query rows of the item
  auto qrow = [&](int32_t hh, int32_t i, int32_t g) {
    return (size_t(hh) * QL + size_t(i)) * G + size_t(g);
  };
  auto head = [&](int32_t hh, int32_t g) { return (h0 + hh) * G + g; };  // query head

  w.q.resize(rows * D);
  for (int32_t hh = 0; hh < nh; ++hh)
    for (int32_t i = 0; i < QL; ++i)
      for (int32_t g = 0; g < G; ++g)
        for (int32_t d = 0; d < D; ++d)
          w.q[qrow(hh, i, g) * D + size_t(d)] = double(in.q_at(s, i, head(hh, g), d));
  w.kt.resize(size_t(D) * kLanes);
  w.dot.resize(size_t(G) * kLanes);
  w.sq.resize(size_t(G) * kLanes);
  w.x.resize(rows * span);
  w.vt.assign(size_t(kTileRows) * Dp, 0.0);
  w.acc.assign(rows * Dp, 0.0);
  w.uni.assign(size_t(nh) * QL * Dp, 0.0);
  w.m.resize(rows);
  w.denom.resize(rows);
  w.pv.assign(rows * 3, 0.0);
  w.vnorm.resize(size_t(kTileRows));

  double sq_max = st.logit_sq_max, v_max = st.v_max;  // locals: the loops keep them in registers

  // Logits of the visible keys, kLanes keys per tile (lanes past ctx hold zeros, never stored).
  for (int32_t t0 = base; t0 < ctx; t0 += kLanes) {
    const int32_t n = std::min(kLanes, ctx - t0);
    prefetch_rows(in.k, s, ctx, t0 + kPrefetchRows, n, h0, nh);
    for (int32_t hh = 0; hh < nh; ++hh) {
      decode_keys(in.k, s, t0, n, h0 + hh, w.kt.data());
      for (int32_t i = 0; i < QL; ++i) {
        const int32_t p = pos(i), lo = first(i);
        if (t0 > p || t0 + n <= lo) continue;
        dot_tile(w.q.data() + qrow(hh, i, 0) * D, G, w.kt.data(), D, w.dot.data(), w.sq.data());
        for (int32_t g = 0; g < G; ++g) {
          const double slope = c.alibi ? double(in.alibi_slopes[size_t(head(hh, g))]) : 0.0;
          double* xg = w.x.data() + qrow(hh, i, g) * span;
          for (int32_t l = 0; l < n; ++l) {
            const int32_t j = t0 + l;
            if (j < lo || j > p) continue;
            sq_max = std::max(sq_max, w.sq[size_t(g) * kLanes + size_t(l)]);
            double x = sh.sm * w.dot[size_t(g) * kLanes + size_t(l)];
            if (sh.cap > 0) x = sh.cap * std::tanh(x / sh.cap);
            if (c.alibi) x += slope * double(j - p);
            xg[j - base] = x;
          }
        }
      }
    }
  }

  // m, weights and denominator per query row (sink last).
  for (int32_t hh = 0; hh < nh; ++hh)
    for (int32_t i = 0; i < QL; ++i) {
      const int32_t lo = first(i), n = pos(i) - lo + 1;
      for (int32_t g = 0; g < G; ++g) {
        const int32_t h = head(hh, g);
        double* xg = w.x.data() + qrow(hh, i, g) * span + (lo - base);
        double m = c.sinks ? double(in.sinks[size_t(h)]) : -std::numeric_limits<double>::infinity();
        for (int32_t j = 0; j < n; ++j) m = std::max(m, xg[j]);
        double denom = 0.0;
        for (int32_t j = 0; j < n; ++j) {
          xg[j] = std::exp(xg[j] - m);
          denom += xg[j];
        }
        if (c.sinks) denom += std::exp(double(in.sinks[size_t(h)]) - m);
        w.m[qrow(hh, i, g)] = m;
        w.denom[qrow(hh, i, g)] = denom;
      }
    }

  // V: every row of the sequence for v_max; the visible ones into P.V and the uniform sums.
  for (int32_t t0 = 0; t0 < ctx; t0 += kTileRows) {
    const int32_t n = std::min(kTileRows, ctx - t0);
    prefetch_rows(in.v, s, ctx, t0 + kPrefetchRows, n, h0, nh);
    for (int32_t hh = 0; hh < nh; ++hh) {  // decoded just before use: the tile stays in L1
      const double* vh = w.vt.data();
      decode_rows(in.v, s, t0, n, h0 + hh, Dp, w.vt.data());
      v_max = abs_max_rows(vh, n, Dv, Dp, v_max);
      for (int32_t j = 0; j < n; ++j) {
        double sq = 0;
        for (int32_t d = 0; d < Dv; ++d) sq += vh[size_t(j) * Dp + size_t(d)] * vh[size_t(j) * Dp + size_t(d)];
        w.vnorm[size_t(j)] = std::sqrt(sq);
      }
      for (int32_t i = 0; i < QL; ++i) {
        const int32_t j0 = std::max(t0, first(i)), j1 = std::min(t0 + n - 1, pos(i));
        if (j0 > j1) continue;
        // pv_rms sums of each row over the keys below the row's maximum (e < 1): e^2, e^2 |v|,
        // e^2 |v|^2 (a statistic for the tolerance, apart from the output's sums).
        for (int32_t g = 0; g < G; ++g) {
          const double* e = w.x.data() + qrow(hh, i, g) * span + size_t(j0 - base);
          double* acc3 = w.pv.data() + qrow(hh, i, g) * 3;
          for (int32_t j = 0; j <= j1 - j0; ++j) {
            if (!(e[j] < 1.0)) continue;
            const double e2 = e[j] * e[j], nv = w.vnorm[size_t(j0 - t0 + j)];
            acc3[0] += e2;
            acc3[1] += e2 * nv;
            acc3[2] += e2 * nv * nv;
          }
        }
        const double* v = vh + size_t(j0 - t0) * Dp;
        accumulate_rows(w.uni.data() + (size_t(hh) * QL + size_t(i)) * Dp, 0, nullptr, 0, 1, v,
                        j1 - j0 + 1, Dp);
        accumulate_rows(w.acc.data() + qrow(hh, i, 0) * Dp, Dp,
                        w.x.data() + qrow(hh, i, 0) * span + size_t(j0 - base), int64_t(span), G, v,
                        j1 - j0 + 1, Dp);
      }
    }
  }

  st.logit_sq_max = sq_max;
  st.v_max = v_max;

  for (int32_t hh = 0; hh < nh; ++hh)
    for (int32_t i = 0; i < QL; ++i) {
      const int32_t n = pos(i) - first(i) + 1;
      const double* u = w.uni.data() + (size_t(hh) * QL + size_t(i)) * Dp;
      for (int32_t g = 0; g < G; ++g) {
        const size_t out_row = size_t(in.q_row(s, i)) * sh.Hq + size_t(head(hh, g));
        const double* a = w.acc.data() + qrow(hh, i, g) * Dp;
        const double denom = w.denom[qrow(hh, i, g)];
        double* o = r.out.data() + out_row * Dv;
        double* ou = r.uniform.data() + out_row * Dv;
        if (n <= 0) {  // an empty row: no key, nothing to average (out and uniform stay 0)
          r.lse[out_row] = c.sinks ? w.m[qrow(hh, i, g)] + std::log(denom) : -std::numeric_limits<double>::infinity();
          continue;
        }
        double osq = 0;
        for (int32_t d = 0; d < Dv; ++d) {
          o[d] = a[d] / denom;
          ou[d] = u[d] / double(n);
          osq += o[d] * o[d];
        }
        r.lse[out_row] = w.m[qrow(hh, i, g)] + std::log(denom);
        // pv_rms^2 <= (1/D) sum_t w_t^2 (|v_t| + |o|)^2 over the keys below the maximum, w = e / denom:
        // (|v_t| + |o|)^2 bounds both sum_d v_td^2 and sum_d (v_td - o_d)^2.
        const double* p3 = w.pv.data() + qrow(hh, i, g) * 3;
        const double on = std::sqrt(osq);
        const double pv_sq = (p3[2] + 2 * on * p3[1] + on * on * p3[0]) / (denom * denom * double(Dv));
        st.pv_sq_max = std::max(st.pv_sq_max, pv_sq);
      }
    }
}

void check_inputs(const Inputs& in) {
  const Case& c = in.c;
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("reference_attention: " + what);
  };
  if (c.num_kv_heads < 1 || c.num_q_heads % c.num_kv_heads != 0) fail("Hq must be a multiple of Hkv");
  if (int64_t(in.context_lens.size()) != c.num_seqs) fail("context_lens size != num_seqs");
  if (in.k.heads != c.num_kv_heads || in.v.heads != c.num_kv_heads ||
      in.k.head_size != c.head_size || in.v.head_size != c.dv())
    fail("K/V shape does not match the case");
  if (in.q.size() != size_t(c.total_q()) * c.num_q_heads * c.head_size)
    fail("q size does not match the case");
  if (int64_t(in.cu_seqlens_q.size()) != int64_t(c.num_seqs) + 1) fail("cu_seqlens_q needs S + 1 entries");
  if (c.alibi && int64_t(in.alibi_slopes.size()) != c.num_q_heads) fail("alibi_slopes needs Hq entries");
  if (c.sinks && int64_t(in.sinks.size()) != c.num_q_heads) fail("sinks needs Hq entries");
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = in.context_lens[size_t(s)];
    if (ctx != 0 && ctx < c.q_len_of(s)) fail("context shorter than q_len");
    if (in.cu_seqlens_q[size_t(s) + 1] - in.cu_seqlens_q[size_t(s)] != c.q_len_of(s))
      fail("cu_seqlens_q does not match q_lens");
  }
}

}  // namespace

void set_reference_threads(int n) {
  g_reference_threads.store(std::max(n, 0), std::memory_order_relaxed);
}

int reference_threads() {
  const int n = g_reference_threads.load(std::memory_order_relaxed);
  return n >= 1 ? n : default_threads();
}

ReferenceResult reference_attention(const Inputs& in) {
  check_inputs(in);
  const Case& c = in.c;
  const int32_t S = c.num_seqs, Hkv = c.num_kv_heads;
  Shape sh;
  sh.Hq = c.num_q_heads;
  sh.G = sh.Hq / Hkv;
  sh.D = c.head_size;
  sh.Dv = c.dv();
  sh.Dvp = round_up(sh.Dv, kLanes);
  sh.W = c.sliding_window;
  sh.sm = c.effective_softmax_scale();
  sh.cap = c.logit_softcap;

  ReferenceResult r;
  const size_t rows = size_t(c.total_q()) * sh.Hq;
  r.out.assign(rows * sh.Dv, 0.0);
  r.uniform.assign(rows * sh.Dv, 0.0);
  r.lse.assign(rows, 0.0);
  r.stats.max_context = c.max_context();
  r.stats.row_length = c.head_size;  // the aggregate checks count row-wide (P, Q, logit) errors per row

  // Items: (sequence, group of nh adjacent KV heads). Whole sequences read K/V contiguously; a
  // sequence is split into head groups only as far as needed for about two items per thread.
  // Threads only pay off past some work: a few hundred thousand multiply-adds per call.
  int64_t work = 0;
  for (int32_t s = 0; s < S; ++s) work += int64_t(in.context_lens[size_t(s)]) * c.q_len_of(s) * sh.Hq * sh.D;
  const int threads = work < (int64_t(1) << 18) ? 1 : reference_threads();
  int32_t groups = 1;  // head groups per sequence, a divisor of Hkv
  while (threads > 1 && groups < Hkv && int64_t(S) * groups < 2 * int64_t(threads)) {
    ++groups;
    while (Hkv % groups != 0) ++groups;
  }
  const int32_t nh = Hkv / groups;
  const int64_t items = int64_t(S) * groups;
  std::vector<Scratch> scratch(static_cast<size_t>(std::min<int64_t>(threads, items)));
  std::vector<ItemStats> stats(static_cast<size_t>(items));
  parallel_for(items, threads, [&](int64_t item, int worker) {
    run_item(in, sh, int32_t(item / groups), int32_t(item % groups) * nh, nh,
             scratch[size_t(worker)], stats[size_t(item)], r);
  });
  double sq_max = 0, pv_sq_max = 0;
  for (const ItemStats& st : stats) {
    r.stats.v_max = std::max(r.stats.v_max, st.v_max);
    sq_max = std::max(sq_max, st.logit_sq_max);
    pv_sq_max = std::max(pv_sq_max, st.pv_sq_max);
  }
  r.stats.pv_rms = std::sqrt(pv_sq_max);
  r.stats.logit_rms = std::fabs(sh.sm) * std::sqrt(sq_max);
  return r;
}

}  // namespace pa
