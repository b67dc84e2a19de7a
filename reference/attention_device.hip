// The fp64 oracle on the GPU (attention_device.hpp): reference/attention.cpp's semantics, whose
// header comment is the definition of every output, over the logical K/V on the device.
//
// Three passes over the keys of each sequence, split into chunks of C keys so that a long context
// spreads over many blocks (flash-decoding's split, without its rescaling: pass 2 knows each row's
// global maximum, so every partial sum is already in the final scale and the combine only adds):
//
//  1. logits_kernel, block (chunk, KV head x row block, sequence): the logits x_j of every
//     (query row, visible key) pair of the chunk, stored in a global scratch x[row][key] (rows *
//     span doubles, nothing of it in shared memory), the chunk's maximum per row and the block's
//     maximum quadrature sum sum_d (q_d k_d)^2 (logit_rms). A key tile is decoded once into
//     shared memory and serves every query row of the block (the G heads of the KV head times the
//     q_len tokens); D is walked in slices so that the tile fits whatever D is.
//  2. pv_kernel, same grid shape (other row blocks): m = max(sink, chunk maxima); per V tile, decoded
//     once into shared memory: e_j = exp(x_j - m), the partial denominator, the pv_rms sums p0, p1,
//     p2 over the keys with e_j < 1, and acc[d] = sum_j e_j V_j[d]. The uniform output is the same
//     sum with weight 1, so each query token also has a "uniform row" here (QL more rows per KV
//     head, shared by its G heads). Blocks of the first row block also take max |V| of their tile.
//  3. combine_kernel, one block per row: the chunk partials added in chunk order, out = acc /
//     denom, lse = m + log(denom), the row's pv_rms^2; uniform = sum / n, written to the G heads.
//  (vmax_prefix_kernel: max |V| over the tokens before the first visible one -- a sliding window's
//  hidden prefix -- since v_max is over every valid token.)
// A ragged batch (q_len_s per sequence) runs on the grid of the largest q_len; a row block past
// its sequence's rows does nothing. Query token i of sequence s is packed row cu_seqlens_q[s] + i
// of q, out, uniform and lse. K has D elements per head, V (and out, uniform) Dv. A sequence of
// context 0 has no chunk: its rows are out = 0, uniform = 0, lse = -inf (the sink's logit with
// sinks) and take no part in pv_rms, as on the CPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/gpu_runtime.hpp"
#include "reference/attention_device.hpp"

namespace pa {

namespace {

constexpr int kThreads = 256;     // threads of the logits and P.V blocks
constexpr int kSliceDoubles = 4096;  // doubles of a K slice (logits) or V tile (P.V): 32 KiB
constexpr int kCombineThreads = 128;
constexpr int kPrefixBlocks = 64;  // blocks per sequence of vmax_prefix_kernel
constexpr int kTargetBlocks = 2048;  // logits blocks the chunk size aims at (~15 per H200 SM)

// One sequence, as every kernel needs it. Token j of the sequence is logical row tok0 + j; its
// logits live at x[xoff + (i * Hq + h) * span + (j - base)] for query token i, query head h.
struct SeqInfo {
  int64_t tok0;     // token_base[s]
  int64_t q0;       // cu_seqlens_q[s]: the packed row of query token 0
  int32_t ql;       // q_len of the sequence (<= Params::QL)
  int64_t xoff;     // first double of the sequence in the logit scratch
  int32_t ctx;      // context length
  int32_t base;     // first key any query token sees (0 without a sliding window)
  int32_t span;     // ctx - base: the keys the chunks cover
  int32_t nchunks;  // ceil(span / C)
};

struct Params {
  const uint16_t* k_codes;
  const float* k_scales;
  const uint16_t* v_codes;
  const float* v_scales;
  const float* q;       // [T, Hq, D]
  const float* slopes;  // [Hq] when alibi
  const float* sinks;   // [Hq] when has_sinks
  const SeqInfo* seqs;  // [S]
  double* x;            // logit scratch (see SeqInfo)
  double* pmax;         // [T * Hq, nchunks] chunk maxima of each output row
  double* part;         // [S * Hkv * R2, nchunks, Dv + 4]: acc[Dv], denom, p0, p1, p2
  double* sq_part;      // [logits blocks] max quadrature sum
  double* vmax_part;    // [P.V blocks] max |V|
  double* out;          // [T * Hq, Dv]
  double* lse;          // [T * Hq]
  double* uniform;      // [T * Hq, Dv]
  double* pv_sq;        // [T * Hq] each row's pv_rms^2
  DType dtype;
  int32_t QL, Hq, Hkv, G, D, Dv, W;  // QL: the largest q_len (the grid's rows)
  double sm, cap;
  bool alibi, has_sinks;
  int32_t C;        // keys per chunk, a multiple of kThreads
  int32_t nchunks;  // max over sequences
  int32_t R;        // query rows per KV head: QL * G, row r = i * G + g
  int32_t R2;       // R + QL: the P.V rows, the uniform row of token i last (R + i)
  int32_t rl1;      // query rows per logits block (1, 2, 4 or 8)
  int32_t rb1;      // logits row blocks per KV head: ceil(R / rl1)
  int32_t rb2;      // P.V row blocks per KV head: ceil(R2 / RB2)
};

// The window of query token i: keys j in [lo, p], p = ctx - q_len_s + i (docs: attention.cpp).
__device__ inline int32_t position(const Params&, const SeqInfo& sq, int32_t i) {
  return sq.ctx - sq.ql + i;
}
__device__ inline int32_t first_key(const Params& P, int32_t p) {
  return P.W > 0 ? (p - P.W + 1 > 0 ? p - P.W + 1 : 0) : 0;
}

// LogicalKv::value: double(decode(code)) * double(scale); row = token row * Hkv + head, hd = the
// tensor's head size (D for K, Dv for V).
__device__ inline double kv_value(const Params& P, const uint16_t* codes, const float* scales, int64_t row,
                                  int32_t hd, int32_t d) {
  return double(codec::decode(P.dtype, codes[row * hd + d])) * double(scales[row]);
}

// The CPU's logit transform, operation for operation.
__device__ inline double logit(const Params& P, double dot, double slope, int32_t j, int32_t p) {
  double x = P.sm * dot;
  if (P.cap > 0) x = P.cap * ::tanh(x / P.cap);
  if (P.alibi) x += slope * double(j - p);
  return x;
}

// std::max(a, b) as the CPU writes it: a NaN b never wins.
__device__ __host__ inline double max_of(double a, double b) { return a < b ? b : a; }

// m of output row orow: max(sink, every visible logit), from the chunk maxima.
__device__ inline double row_max(const Params& P, int64_t orow, int32_t nch, int32_t h) {
  double m = P.has_sinks ? double(P.sinks[h]) : -HUGE_VAL;
  for (int32_t c = 0; c < nch; ++c) m = max_of(m, P.pmax[orow * P.nchunks + c]);
  return m;
}

__device__ inline int64_t out_row(const Params& P, const SeqInfo& sq, int32_t i, int32_t h) {
  return (sq.q0 + i) * P.Hq + h;
}

// Thread 0 gets the maximum of v over the block (shared red[kThreads]); NaN never wins.
__device__ inline double block_max(double* red, double v) {
  __syncthreads();
  red[threadIdx.x] = v;
  __syncthreads();
  double m = 0;
  if (threadIdx.x == 0)
    for (int t = 0; t < int(blockDim.x); ++t) m = max_of(m, red[t]);
  return m;
}

// Pass 1. Thread (rl, kl) = (tid / T1, tid % T1) owns query row rb * rl1 + rl of the KV head and
// key t0 + kl of each tile; T1 = kThreads / rl1 keys per tile, so small groups (MHA, q_len 1) still
// keep every thread busy. D goes by slices of DS = 16 * rl1, so the K slice (DS x T1 doubles) is
// always kSliceDoubles and the q slice (rl1 x DS) at most 1024 doubles.
/// @post for every visible (row, key) of the chunk x holds its logit; pmax[row][chunk] the chunk's
/// maximum (-inf where the row sees none of it); sq_part[block] the largest quadrature sum (0 none)
__global__ void __launch_bounds__(kThreads) logits_kernel(const Params P) {
  __shared__ double ks[kSliceDoubles + 128];  // [DS][T1 + 1]: padded so the transposing stores spread over banks
  __shared__ double qs[1024];                 // [rl1][DS]
  __shared__ double red[kThreads];
  const int32_t c = int32_t(blockIdx.x), kvh = int32_t(blockIdx.y) / P.rb1, rb = int32_t(blockIdx.y) % P.rb1;
  const int32_t s = int32_t(blockIdx.z), tid = int32_t(threadIdx.x);
  const int64_t blk = (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const SeqInfo sq = P.seqs[s];
  if (c >= sq.nchunks) {  // past this sequence's keys (another sequence is longer)
    if (tid == 0) P.sq_part[blk] = 0;
    return;
  }
  const int32_t RL = P.rl1, T1 = kThreads / RL, DS = 16 * RL, T1p = T1 + 1, D = P.D;
  const int32_t Rs = sq.ql * P.G;  // this sequence's query rows of the KV head
  if (rb * RL >= Rs) {  // a row block past a shorter sequence's rows (ragged)
    if (tid == 0) P.sq_part[blk] = 0;
    return;
  }
  const int32_t kl = tid % T1, rl = tid / T1, r = rb * RL + rl;
  const bool row_ok = r < Rs;
  const int32_t i = row_ok ? r / P.G : 0, h = kvh * P.G + (row_ok ? r % P.G : 0);
  const int32_t p = position(P, sq, i), lo = first_key(P, p);
  const double slope = P.alibi && row_ok ? double(P.slopes[h]) : 0.0;
  double* xrow = P.x + sq.xoff + (int64_t(i) * P.Hq + h) * sq.span - sq.base;  // indexed by key j
  const int32_t cb = sq.base + c * P.C, ce = min(sq.ctx, cb + P.C);

  // q rows rb * RL .. of the block, dims d0 .. d0 + nd - 1, as doubles into qs.
  auto load_q = [&](int32_t d0, int32_t nd) {
    for (int32_t e = tid; e < RL * nd; e += kThreads) {
      const int32_t rr = e / nd, dd = e % nd, r2 = rb * RL + rr;
      double v = 0;
      if (r2 < Rs)
        v = double(P.q[out_row(P, sq, r2 / P.G, kvh * P.G + r2 % P.G) * D + d0 + dd]);
      qs[rr * DS + dd] = v;
    }
  };
  const bool q_resident = D <= DS;  // one slice: q is loaded once for the whole chunk
  if (q_resident) load_q(0, D);

  double rmax = -HUGE_VAL, sqmax = 0;
  for (int32_t t0 = cb; t0 < ce; t0 += T1) {
    const int32_t j = t0 + kl;
    const bool vis = row_ok && j < ce && j >= lo && j <= p;
    double dot = 0, sqs = 0;  // the CPU's two accumulators, d increasing across the slices
    for (int32_t d0 = 0; d0 < D; d0 += DS) {
      const int32_t nd = min(DS, D - d0);
      __syncthreads();  // the previous slice is consumed
      for (int32_t e = tid; e < T1 * nd; e += kThreads) {
        const int32_t key = e / nd, dd = e % nd, jj = t0 + key;
        ks[dd * T1p + key] =
            jj < ce ? kv_value(P, P.k_codes, P.k_scales, (sq.tok0 + jj) * P.Hkv + kvh, D, d0 + dd) : 0.0;
      }
      if (!q_resident) load_q(d0, nd);
      __syncthreads();
      if (vis) {
        const double* qr = qs + rl * DS;
        for (int32_t dd = 0; dd < nd; ++dd) {
          const double prod = qr[dd] * ks[dd * T1p + kl];
          dot += prod;
          sqs += prod * prod;
        }
      }
    }
    if (vis) {
      const double x = logit(P, dot, slope, j, p);
      xrow[j] = x;
      rmax = max_of(rmax, x);
      sqmax = max_of(sqmax, sqs);
    }
  }

  // Chunk maximum of each row: its T1 key lanes are threads rl * T1 .. rl * T1 + T1 - 1.
  __syncthreads();
  red[tid] = rmax;
  __syncthreads();
  if (tid < RL && rb * RL + tid < Rs) {
    double m = -HUGE_VAL;
    for (int32_t k = 0; k < T1; ++k) m = max_of(m, red[tid * T1 + k]);
    const int32_t r2 = rb * RL + tid;
    P.pmax[out_row(P, sq, r2 / P.G, kvh * P.G + r2 % P.G) * P.nchunks + c] = m;
  }
  const double m = block_max(red, sqmax);
  if (tid == 0) P.sq_part[blk] = m;
}

// Pass 2 for Dv <= 32 * KD. Thread (rl, dl) = (tid / 32, tid % 32) accumulates P.V rows
// rl + 8u (u < NR) of the block at dims dl + 32k (k < KD): NR * KD accumulators in registers,
// each V element loaded from shared memory once per thread and used by its NR rows.
template <int KD>
struct PvShape {
  static constexpr int NR = KD <= 4 ? 4 : KD == 8 ? 2 : 1;  // rows per thread
  static constexpr int RB = 8 * NR;                         // rows per block
  static constexpr int T = KD <= 4 ? 32 : 128 / KD;         // keys per V tile
  static_assert(T * (32 * KD + 1) <= kSliceDoubles + 128, "V tile exceeds its shared buffer");
};

/// @post part[row][chunk] holds the chunk's acc[0..Dv), denom, p0, p1, p2 for the block's rows
/// (zeros where a row sees none of the chunk); vmax_part[block] max |V| of the chunk's tokens
/// (row block 0; 0 elsewhere)
template <int KD>
__global__ void __launch_bounds__(kThreads) pv_kernel(const Params P) {
  using Sh = PvShape<KD>;
  constexpr int NR = Sh::NR, RB = Sh::RB, T = Sh::T, Tp = T + 1;
  // Lanes per key of the |V_j| sums: a power of two that fits in any warp (kWarpSize >= 32).
  constexpr int L = kThreads / T < 32 ? kThreads / T : 32;
  static_assert(T * L <= kThreads && L <= gpu::kWarpSize, "one key's lanes must share a warp");
  __shared__ double vs[kSliceDoubles + 128];  // [T][Dv + 1]: padded for the per-row norms
  __shared__ double es[RB * Tp];              // [RB][T + 1] weights e_j (1 for uniform rows)
  __shared__ double vn[T];                    // |V_j|
  __shared__ double rm[RB];                   // m of each attention row
  __shared__ double red[kThreads];
  const int32_t c = int32_t(blockIdx.x), kvh = int32_t(blockIdx.y) / P.rb2, rb = int32_t(blockIdx.y) % P.rb2;
  const int32_t s = int32_t(blockIdx.z), tid = int32_t(threadIdx.x), D = P.Dv, Dp = D + 1;
  const int64_t blk = (int64_t(blockIdx.z) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const SeqInfo sq = P.seqs[s];
  if (c >= sq.nchunks) {
    if (tid == 0) P.vmax_part[blk] = 0;
    return;
  }
  const int32_t cb = sq.base + c * P.C, ce = min(sq.ctx, cb + P.C);
  const int32_t R = P.R, R2 = P.R2;
  // Row rr of the block: P.V row r2 = rb * RB + rr; attention rows r2 < R (token r2 / G, head
  // kvh * G + r2 % G), then the uniform row of token r2 - R.
  // A row whose token is past the sequence's q_len (ragged) sees no key.
  auto token_of = [&](int32_t r2) { return r2 < R ? r2 / P.G : r2 - R; };
  auto row_ok = [&](int32_t r2) { return r2 < R2 && token_of(r2) < sq.ql; };
  if (tid < RB) {
    const int32_t r2 = rb * RB + tid;
    double m = 0;
    if (r2 < R && row_ok(r2)) {
      const int32_t h = kvh * P.G + r2 % P.G;
      m = row_max(P, out_row(P, sq, r2 / P.G, h), sq.nchunks, h);
    }
    rm[tid] = m;
  }
  const int32_t dl = tid % 32, rl = tid / 32;
  int32_t lo[NR], hi[NR];  // visible keys of this thread's rows (hi < lo: no row)
  for (int u = 0; u < NR; ++u) {
    const int32_t r2 = rb * RB + rl + 8 * u;
    if (row_ok(r2)) {
      hi[u] = position(P, sq, token_of(r2));
      lo[u] = first_key(P, hi[u]);
    } else {
      lo[u] = 0, hi[u] = -1;
    }
  }
  // The statistics of row tid (tid < RB, an attention row), summed over j increasing.
  const int32_t srow = rb * RB + tid;
  const bool stats_row = tid < RB && srow < R && row_ok(srow);
  const int32_t s_hi = stats_row ? position(P, sq, token_of(srow)) : -1, s_lo = first_key(P, s_hi);
  double denom = 0, p0 = 0, p1 = 0, p2 = 0;
  double acc[NR][KD];
  for (int u = 0; u < NR; ++u)
    for (int k = 0; k < KD; ++k) acc[u][k] = 0;
  double vmax = 0;
  const bool take_vmax = rb == 0;

  for (int32_t t0 = cb; t0 < ce; t0 += T) {
    const int32_t nt = min(T, ce - t0);
    __syncthreads();  // the previous tile is consumed (and rm is written, the first time)
    for (int32_t e = tid; e < nt * D; e += kThreads) {
      const int32_t jj = e / D, d = e % D;
      const double v = kv_value(P, P.v_codes, P.v_scales, (sq.tok0 + t0 + jj) * P.Hkv + kvh, D, d);
      vs[jj * Dp + d] = v;
      if (take_vmax) vmax = max_of(vmax, ::fabs(v));
    }
    for (int32_t e = tid; e < RB * T; e += kThreads) {
      const int32_t rr = e / T, jj = e % T, r2 = rb * RB + rr, j = t0 + jj;
      if (!row_ok(r2) || jj >= nt) continue;
      const int32_t i = token_of(r2), p = position(P, sq, i);
      if (j < first_key(P, p) || j > p) continue;
      double w = 1.0;  // uniform rows: the plain sum of the visible rows
      if (r2 < R) {
        const int32_t h = kvh * P.G + r2 % P.G;
        w = ::exp(P.x[sq.xoff + (int64_t(i) * P.Hq + h) * sq.span + (j - sq.base)] - rm[rr]);
      }
      es[rr * Tp + jj] = w;
    }
    __syncthreads();
    {  // |V_j|: L adjacent lanes per key (a statistic: its order need not be the CPU's)
      const int32_t jj = tid / L, lane = tid % L;
      double q = 0;
      if (jj < nt)
        for (int32_t d = lane; d < D; d += L) q += vs[jj * Dp + d] * vs[jj * Dp + d];
      for (int o = L / 2; o > 0; o >>= 1) q += gpu::shfl_xor(q, o, L);  // every lane takes part
      if (lane == 0 && jj < nt) vn[jj] = ::sqrt(q);
    }
    __syncthreads();
    if (stats_row) {
      const int32_t j0 = max(t0, s_lo), j1 = min(t0 + nt - 1, s_hi);
      for (int32_t j = j0; j <= j1; ++j) {
        const double ej = es[tid * Tp + (j - t0)];
        denom += ej;
        if (!(ej < 1.0)) continue;  // the row's maximum (and NaN) stay out, as on the CPU
        const double e2 = ej * ej, nv = vn[j - t0];
        p0 += e2;
        p1 += e2 * nv;
        p2 += e2 * nv * nv;
      }
    }
    for (int32_t jj = 0; jj < nt; ++jj) {
      const int32_t j = t0 + jj;
      double v[KD];
      for (int k = 0; k < KD; ++k) {
        const int32_t d = dl + 32 * k;
        v[k] = d < D ? vs[jj * Dp + d] : 0.0;
      }
      for (int u = 0; u < NR; ++u) {
        if (j < lo[u] || j > hi[u]) continue;
        const double w = es[(rl + 8 * u) * Tp + jj];
        for (int k = 0; k < KD; ++k) acc[u][k] += w * v[k];
      }
    }
  }

  const int64_t row0 = (int64_t(s) * P.Hkv + kvh) * R2 + rb * RB;  // the block's first P.V row
  for (int u = 0; u < NR; ++u) {
    const int32_t rr = rl + 8 * u;
    if (rb * RB + rr >= R2) continue;
    double* dst = P.part + ((row0 + rr) * P.nchunks + c) * (D + 4);
    for (int k = 0; k < KD; ++k)
      if (dl + 32 * k < D) dst[dl + 32 * k] = acc[u][k];
  }
  if (tid < RB && srow < R2) {
    double* dst = P.part + ((row0 + tid) * P.nchunks + c) * (D + 4) + D;
    dst[0] = denom, dst[1] = p0, dst[2] = p1, dst[3] = p2;
  }
  const double m = block_max(red, vmax);
  if (tid == 0) P.vmax_part[blk] = take_vmax ? m : 0.0;
}

// Pass 3: block g2 = P.V row (s, kvh, r2).
/// @post out, lse, pv_sq of attention row (s, i, h); uniform of the G heads for a uniform row
__global__ void __launch_bounds__(kCombineThreads) combine_kernel(const Params P) {
  __shared__ double wsum[kCombineThreads / 32 + 1];
  const int64_t g2 = blockIdx.x;
  const int32_t R2 = P.R2, r2 = int32_t(g2 % R2), kvh = int32_t(g2 / R2 % P.Hkv), s = int32_t(g2 / R2 / P.Hkv);
  const int32_t tid = int32_t(threadIdx.x), D = P.Dv;
  const SeqInfo sq = P.seqs[s];
  const int32_t nch = sq.nchunks;
  const double* part = P.part + g2 * P.nchunks * (D + 4);
  const int32_t i = r2 >= P.R ? r2 - P.R : r2 / P.G;
  if (i >= sq.ql) return;  // past a shorter sequence's tokens (ragged): not an output row
  const int32_t p = position(P, sq, i), n = p - first_key(P, p) + 1;  // n <= 0: an empty row
  if (r2 >= P.R) {  // uniform row of token i
    for (int32_t d = tid; d < D; d += int32_t(blockDim.x)) {
      double a = 0;
      for (int32_t c = 0; c < nch; ++c) a += part[int64_t(c) * (D + 4) + d];
      const double u = n > 0 ? a / double(n) : 0.0;
      for (int32_t g = 0; g < P.G; ++g) P.uniform[out_row(P, sq, i, kvh * P.G + g) * D + d] = u;
    }
    return;
  }
  const int32_t h = kvh * P.G + r2 % P.G;
  const int64_t orow = out_row(P, sq, i, h);
  const double m = row_max(P, orow, nch, h);
  if (n <= 0) {  // the whole block: the CPU's empty row (m is the sink's logit, or -inf)
    for (int32_t d = tid; d < D; d += int32_t(blockDim.x)) P.out[orow * D + d] = 0.0;
    if (tid == 0) {
      P.lse[orow] = P.has_sinks ? m : -HUGE_VAL;  // the CPU's m + log(exp(sink - m)) = m + log(1)
      P.pv_sq[orow] = 0;
    }
    return;
  }
  double denom = 0, p0 = 0, p1 = 0, p2 = 0;
  for (int32_t c = 0; c < nch; ++c) {
    const double* st = part + int64_t(c) * (D + 4) + D;
    denom += st[0], p0 += st[1], p1 += st[2], p2 += st[3];
  }
  if (P.has_sinks) denom += ::exp(double(P.sinks[h]) - m);  // the sink last, as on the CPU
  double osq = 0;
  for (int32_t d = tid; d < D; d += int32_t(blockDim.x)) {
    double a = 0;
    for (int32_t c = 0; c < nch; ++c) a += part[int64_t(c) * (D + 4) + d];
    const double o = a / denom;
    P.out[orow * D + d] = o;
    osq += o * o;
  }
  osq = gpu::warp_sum(osq);
  const int32_t nwarps = int32_t(blockDim.x) / gpu::kWarpSize;
  if (tid % gpu::kWarpSize == 0) wsum[tid / gpu::kWarpSize] = osq;
  __syncthreads();
  if (tid == 0) {
    double total = 0;
    for (int32_t w = 0; w < nwarps; ++w) total += wsum[w];
    P.lse[orow] = m + ::log(denom);
    const double on = ::sqrt(total);
    P.pv_sq[orow] = (p2 + 2 * on * p1 + on * on * p0) / (denom * denom * double(D));
  }
}

/// @post part[s * gridDim.x + block] = max |V| over tokens [0, base) of sequence s (0 if none)
__global__ void __launch_bounds__(kThreads) vmax_prefix_kernel(const Params P, double* part) {
  __shared__ double red[kThreads];
  const int32_t s = int32_t(blockIdx.y);
  const SeqInfo sq = P.seqs[s];
  const int64_t n = int64_t(sq.base) * P.Hkv * P.Dv, row0 = sq.tok0 * P.Hkv;
  double vmax = 0;
  for (int64_t e = int64_t(blockIdx.x) * kThreads + threadIdx.x; e < n; e += int64_t(gridDim.x) * kThreads)
    vmax = max_of(vmax, ::fabs(kv_value(P, P.v_codes, P.v_scales, row0 + e / P.Dv, P.Dv, int32_t(e % P.Dv))));
  const double m = block_max(red, vmax);
  if (threadIdx.x == 0) part[int64_t(s) * gridDim.x + blockIdx.x] = m;
}

template <class T>
T* scratch(DeviceBuffer& b, size_t count) { return (b = DeviceBuffer(std::max<size_t>(count, 1) * sizeof(T))).as<T>(); }

int32_t pow2_at_least(int32_t n, int32_t cap) {
  int32_t p = 1;
  while (p < n && p < cap) p *= 2;
  return p;
}

template <int KD>
void launch_pv(dim3 grid, const Params& P) {
  hipLaunchKernelGGL((pv_kernel<KD>), grid, dim3(kThreads), 0, 0, P);
}

}  // namespace

ReferenceResult reference_attention_device(const DeviceInputs& in) {
  const Case& c = in.host.c;
  // QL: the largest q_len (c.q_len is the maximum of q_lens in a ragged case).
  const int32_t S = c.num_seqs, QL = c.q_len, Hq = c.num_q_heads, Hkv = c.num_kv_heads, D = c.head_size, Dv = c.dv();
  auto fail = [](const std::string& what) { throw std::invalid_argument("reference_attention_device: " + what); };
  if (Hkv < 1 || Hq % Hkv != 0) fail("Hq must be a multiple of Hkv");
  if (D < 1 || D > 1024 || Dv < 1 || Dv > 1024) fail("head_size and head_size_v must be in [1, 1024]");
  if (int64_t(in.host.context_lens.size()) != S || int64_t(in.host.k.token_base.size()) != int64_t(S) + 1)
    fail("context_lens / token_base size != num_seqs");
  const std::vector<int32_t>& cu = in.host.cu_seqlens_q;
  if (int64_t(cu.size()) != int64_t(S) + 1 || cu[0] != 0) fail("cu_seqlens_q needs S + 1 entries from 0");
  for (int32_t s = 0; s < S; ++s)
    if (cu[size_t(s) + 1] - cu[size_t(s)] != c.q_len_of(s) || c.q_len_of(s) > QL)
      fail("cu_seqlens_q does not match q_lens");
  const int64_t T = in.host.k.token_base.back();
  const size_t rows = size_t(cu[size_t(S)]) * Hq;
  if (in.q.size() < rows * D * sizeof(float)) fail("q is smaller than the case");
  if (in.k_codes.size() < size_t(T) * Hkv * D * sizeof(uint16_t) || in.v_codes.size() < size_t(T) * Hkv * Dv * sizeof(uint16_t) ||
      in.k_scales.size() < size_t(T) * Hkv * sizeof(float) || in.v_scales.size() < size_t(T) * Hkv * sizeof(float))
    fail("logical K/V buffers are smaller than the case");
  if (c.alibi && in.alibi_slopes.size() < size_t(Hq) * sizeof(float)) fail("alibi_slopes needs Hq entries");
  if (c.sinks && in.sinks.size() < size_t(Hq) * sizeof(float)) fail("sinks needs Hq entries");

  Params P{};
  P.k_codes = in.k_codes.as<uint16_t>();
  P.k_scales = in.k_scales.as<float>();
  P.v_codes = in.v_codes.as<uint16_t>();
  P.v_scales = in.v_scales.as<float>();
  P.q = in.q.as<float>();
  P.slopes = in.alibi_slopes.as<float>();
  P.sinks = in.sinks.as<float>();
  P.dtype = c.kv_dtype;
  P.QL = QL, P.Hq = Hq, P.Hkv = Hkv, P.G = Hq / Hkv, P.D = D, P.Dv = Dv, P.W = c.sliding_window;
  P.sm = c.effective_softmax_scale();
  P.cap = c.logit_softcap;
  P.alibi = c.alibi, P.has_sinks = c.sinks;
  P.R = QL * P.G;
  P.R2 = P.R + QL;
  P.rl1 = pow2_at_least(P.R, 8);
  P.rb1 = (P.R + P.rl1 - 1) / P.rl1;

  // Chunks: about kTargetBlocks logits blocks over the longest span, whole multiples of kThreads
  // keys (a multiple of every tile width).
  std::vector<SeqInfo> seqs(static_cast<size_t>(S));
  int32_t max_span = 0;
  for (int32_t s = 0; s < S; ++s) {
    SeqInfo& q = seqs[size_t(s)];
    q.tok0 = in.host.k.token_base[size_t(s)];
    q.q0 = cu[size_t(s)];
    q.ql = c.q_len_of(s);
    q.ctx = in.host.context_lens[size_t(s)];
    if (q.ctx != 0 && q.ctx < q.ql) fail("context shorter than q_len");  // 0: an empty sequence
    const int32_t p0 = q.ctx - q.ql;  // position of query token 0
    q.base = P.W > 0 ? std::max(0, p0 - P.W + 1) : 0;
    q.span = q.ctx - q.base;
    max_span = std::max(max_span, q.span);
  }
  const int64_t per_chunk = int64_t(S) * Hkv * P.rb1;  // logits blocks per chunk index
  const int64_t want_chunks = std::max<int64_t>(1, kTargetBlocks / per_chunk);
  const int64_t chunk = (max_span + want_chunks - 1) / want_chunks;
  P.C = int32_t(std::max<int64_t>(1, (chunk + kThreads - 1) / kThreads) * kThreads);
  P.nchunks = (max_span + P.C - 1) / P.C;
  int64_t xdoubles = 0, prefix_tokens = 0;
  for (SeqInfo& q : seqs) {
    q.nchunks = (q.span + P.C - 1) / P.C;
    q.xoff = xdoubles;
    xdoubles += int64_t(q.ql) * Hq * q.span;
    prefix_tokens += q.base;
  }

  // KD: dims per thread of the P.V blocks, Dv <= 32 * KD.
  const int KD = Dv <= 64 ? 2 : Dv <= 128 ? 4 : Dv <= 256 ? 8 : Dv <= 512 ? 16 : 32;
  const int RB2 = KD == 2 ? PvShape<2>::RB : KD == 4 ? PvShape<4>::RB : KD == 8 ? PvShape<8>::RB
                : KD == 16 ? PvShape<16>::RB : PvShape<32>::RB;
  P.rb2 = (P.R2 + RB2 - 1) / RB2;
  if (int64_t(Hkv) * std::max(P.rb1, P.rb2) > 65535 || S > 65535)
    fail("too many heads or sequences for one grid (Hkv * row blocks and S must be <= 65535)");
  const dim3 grid1(unsigned(P.nchunks), unsigned(Hkv * P.rb1), unsigned(S));
  const dim3 grid2(unsigned(P.nchunks), unsigned(Hkv * P.rb2), unsigned(S));
  const size_t blocks1 = size_t(grid1.x) * grid1.y * grid1.z, blocks2 = size_t(grid2.x) * grid2.y * grid2.z;
  const size_t rows2 = size_t(S) * Hkv * P.R2;

  DeviceBuffer seq_buf = to_device(seqs), x_buf, pmax_buf, part_buf, sq_buf, vmax_buf, prefix_buf, out_buf,
               lse_buf, uni_buf, pv_buf;
  P.seqs = seq_buf.as<SeqInfo>();
  P.x = scratch<double>(x_buf, size_t(xdoubles));
  P.pmax = scratch<double>(pmax_buf, rows * P.nchunks);
  P.part = scratch<double>(part_buf, rows2 * P.nchunks * (size_t(Dv) + 4));
  P.sq_part = scratch<double>(sq_buf, blocks1);
  P.vmax_part = scratch<double>(vmax_buf, blocks2);
  P.out = scratch<double>(out_buf, rows * Dv);
  P.lse = scratch<double>(lse_buf, rows);
  P.uniform = scratch<double>(uni_buf, rows * Dv);
  P.pv_sq = scratch<double>(pv_buf, rows);
  double* prefix_part = scratch<double>(prefix_buf, size_t(S) * kPrefixBlocks);

  hipLaunchKernelGGL(logits_kernel, grid1, dim3(kThreads), 0, 0, P);
  PA_GPU_CHECK(hipGetLastError());
  switch (KD) {
    case 2: launch_pv<2>(grid2, P); break;
    case 4: launch_pv<4>(grid2, P); break;
    case 8: launch_pv<8>(grid2, P); break;
    case 16: launch_pv<16>(grid2, P); break;
    default: launch_pv<32>(grid2, P); break;
  }
  PA_GPU_CHECK(hipGetLastError());
  hipLaunchKernelGGL(combine_kernel, dim3(unsigned(rows2)), dim3(kCombineThreads), 0, 0, P);
  PA_GPU_CHECK(hipGetLastError());
  if (prefix_tokens > 0) {
    hipLaunchKernelGGL(vmax_prefix_kernel, dim3(kPrefixBlocks, unsigned(S)), dim3(kThreads), 0, 0, P, prefix_part);
    PA_GPU_CHECK(hipGetLastError());
  }
  PA_GPU_CHECK(hipStreamSynchronize(0));

  ReferenceResult r;
  r.out = out_buf.to_vector<double>(rows * Dv);
  r.lse = lse_buf.to_vector<double>(rows);
  r.uniform = uni_buf.to_vector<double>(rows * Dv);
  double sq_max = 0, pv_sq_max = 0, v_max = 0;
  for (double v : sq_buf.to_vector<double>(blocks1)) sq_max = max_of(sq_max, v);
  for (double v : pv_buf.to_vector<double>(rows)) pv_sq_max = max_of(pv_sq_max, v);
  for (double v : vmax_buf.to_vector<double>(blocks2)) v_max = max_of(v_max, v);
  if (prefix_tokens > 0)
    for (double v : prefix_buf.to_vector<double>(size_t(S) * kPrefixBlocks)) v_max = max_of(v_max, v);
  r.stats.v_max = v_max;
  r.stats.logit_rms = std::fabs(P.sm) * std::sqrt(sq_max);
  r.stats.pv_rms = std::sqrt(pv_sq_max);
  r.stats.max_context = c.max_context();
  r.stats.row_length = c.head_size;
  return r;
}

}  // namespace pa
