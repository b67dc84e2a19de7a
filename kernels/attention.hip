// Paged-attention decode kernels: one body serves v1 (single pass, fp32 P), hip (split-K stage 1
// + stage 2 merge, P rounded to the q dtype), asm (single pass over a G tile padded to 8/16,
// P rounded) and the ragged family: unified (single pass, fp32 P) and unified_split (split-K,
// fp32 P), which add per-sequence q_len (cu_seqlens_q), the CSR page table, Dv != D and empty
// sequences (context 0: O = 0, LSE = -inf, the empty partial). A block owns (sequence, kv head,
// up to kRows query rows, partition): the rows of one GQA group share every K/V load. Tokens are
// processed in chunks of kThreads with an online softmax whose per-chunk rescale is
// merge_weights() from common/partial.hpp.
#include "kernels/common/dispatch.hpp"
#include "kernels/common/partial.hpp"
#include "kernels/common/rounding.hpp"
#include "core/gpu_runtime.hpp"
#include "kernels/launch.hpp"

namespace pa::gpu {
namespace {

constexpr int kThreads = 256;  // threads per block = tokens per chunk
constexpr int kRows = 8;       // query rows per block
// Head sizes a block holds in shared memory: (Q/K, V) of 256 for the classic and ragged paths, and
// MLA's (576, 512) (about 42 KiB of shared memory), instantiated for d-contiguous V only.
constexpr int kMaxD = 256;
constexpr int kMlaD = 576, kMlaDv = 512;

/// Context of sequence s: from the CSR encoding when the table is CSR, else context_lens.
__device__ inline int32_t context_of(const AttentionParams& p, int32_t s) {
  return p.csr.indptr ? p.csr.context(s) : p.context_lens[s];
}
/// First packed query row of sequence s.
__device__ inline int64_t q_start(const AttentionParams& p, int32_t s) {
  return p.cu_seqlens_q ? int64_t(p.cu_seqlens_q[s]) : int64_t(s) * p.q_len;
}
/// The sequence of packed query token `token` (bisection of cu_seqlens_q when ragged).
__device__ inline int32_t seq_of_token(const AttentionParams& p, int64_t token) {
  if (!p.cu_seqlens_q) return int32_t(token / p.q_len);
  int32_t lo = 0, hi = p.num_seqs;  // invariant: cu[lo] <= token < cu[hi]
  while (hi - lo > 1) {
    const int32_t mid = (lo + hi) / 2;
    if (p.cu_seqlens_q[mid] <= token) lo = mid;
    else hi = mid;
  }
  return lo;
}

/// The scale of physical slot (blk, h, tok): per-token scales follow the physical slot.
__device__ inline float slot_scale(const AttentionParams& p, const float* scales, int32_t blk, int32_t h, int32_t tok) {
  return scales[p.scale_layout(blk, h, tok)];
}

/// N consecutive codes along d from `off`, as one 16-byte (or 8-byte) load when `vec`.
template <DType T, int N>
__device__ inline void load_decode(const void* base, int64_t off, bool vec, float (&out)[N]) {
  using S = typename codec::Codec<T>::Storage;
  S s[N];
  if (vec && N * sizeof(S) == 16) {
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const S*>(base) + off);
    PA_MEMCPY(s, &raw, 16);
  } else if (vec && N * sizeof(S) == 8) {
    const uint2 raw = *reinterpret_cast<const uint2*>(static_cast<const S*>(base) + off);
    PA_MEMCPY(s, &raw, 8);
  } else {
    for (int j = 0; j < N; ++j) s[j] = static_cast<const S*>(base)[off + j];
  }
  for (int j = 0; j < N; ++j) out[j] = codec::Codec<T>::decode(s[j]);
}

struct Row {
  bool real;    // a query row that is written out (not padding, not past the tile)
  int32_t h;    // query head
  int32_t pos;  // query position ctx - q_len_s + i
  int64_t idx;  // flat row index (q_start(s) + i) * Hq + h
};

/// How a thread reads V in P.V:
///   kColumns: kVV consecutive d of one token per load (nhd, hnd: d is contiguous);
///   kTokens:  one d of 16/sizeof(elem) consecutive tokens per 16-byte load (vllm V, shuffled V:
///             the token is the contiguous dimension), adjacent threads on adjacent d;
///   kScalar:  one element per load (any layout; the fallback, e.g. vllm V with B < x).
enum class VRead { kColumns, kTokens, kScalar };

template <DType KV, DType QT, VRead kRead, int MaxD, int MaxDv>
__device__ void attention_body(const AttentionParams& p) {
  constexpr int kVV = kRead == VRead::kColumns ? 8 : 1;  // output columns per thread
  using KS = typename codec::Codec<KV>::Storage;
  constexpr int kVK = 16 / int(sizeof(KS));  // K elements per 16-byte load
  __shared__ float q_s[kRows][MaxD];
  __shared__ float x_s[kRows][kThreads];
  __shared__ float o_s[kRows][MaxDv];
  __shared__ float m_s[kRows], l_s[kRows], a_s[kRows];
  __shared__ int32_t blk_s[kThreads];

  const int tid = threadIdx.x;
  const int32_t D = p.head_size, Dv = p.dv();
  const int32_t s = blockIdx.x / p.num_kv_heads, hk_group = blockIdx.x - s * p.num_kv_heads;
  // The KV head the group reads: h / G for every head of the group.
  const int32_t hk = hk_group;
  const int32_t ctx = context_of(p, s);
  // This sequence's query tokens: q_len, or its own count in a ragged batch (the grid is sized for
  // the largest, so a shorter sequence's trailing row blocks have nothing to do).
  const int64_t q0 = q_start(p, s);
  const int32_t ql = p.cu_seqlens_q ? int32_t(p.cu_seqlens_q[s + 1] - q0) : p.q_len;
  const int32_t rows_total = ql * p.gqa_tile;
  if (int32_t(blockIdx.y) * kRows >= rows_total) return;  // the whole block: no barrier is skipped
  Row rows[kRows];
  for (int r = 0; r < kRows; ++r) {
    const int32_t rr = blockIdx.y * kRows + r;
    const int32_t i = rr / p.gqa_tile, g = rr - i * p.gqa_tile;
    rows[r].real = rr < rows_total && g < p.gqa;
    rows[r].h = hk_group * p.gqa + (g < p.gqa ? g : 0);
    rows[r].pos = query_position(ctx, ql, i < ql ? i : ql - 1);
    rows[r].idx = (q0 + (i < ql ? i : 0)) * p.num_q_heads + rows[r].h;
  }
  // An empty sequence (ctx 0) runs no chunk: every row keeps the empty partial (m = -inf, l = 0).
  const int32_t t_begin = p.partition ? int32_t(blockIdx.z) * p.partition : 0;
  const int32_t t_stop = ctx;
  const int32_t t_end = p.partition ? min(t_stop, t_begin + p.partition) : t_stop;
  // Keys before the first query's window start are invisible to every row of the block.
  const int32_t t_first = max(t_begin, p.lt.first_visible(ctx - ql));
  // Chunks start 16-aligned so a 16-byte token vector never straddles a page (B % x == 0 is
  // checked by the launcher); keys in [t_lo, t_first) are read but masked.
  const int32_t t_lo = t_first & ~15;

  for (int r = 0; r < kRows; ++r)
    for (int d = tid; d < D; d += kThreads)
      q_s[r][d] = rows[r].real ? codec::Codec<QT>::decode(
                                     static_cast<const typename codec::Codec<QT>::Storage*>(p.q)[rows[r].idx * D + d])
                               : 0.f;  // padded rows run on zero queries and are discarded
  if (tid < kRows) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.f;
  }
  const int32_t nown = Dv / kVV, nslices = kThreads / nown;
  const int32_t dv = tid % nown, slice = tid / nown;
  float acc[kRows][kVV];
  for (int r = 0; r < kRows; ++r)
    for (int j = 0; j < kVV; ++j) acc[r][j] = 0.f;
  const PagedLayout paged{p.k_layout, p.block_tables, p.max_blocks};  // the padded table's one reader
  const bool k_vec = p.k_layout.contiguous_d() >= kVK && p.k_layout.page_stride % kVK == 0;
  // mla_split: K's first k_from_v elements are the latent (V) cache's.
  const bool latent_vec = p.v_layout.contiguous_d() >= kVK && p.v_layout.page_stride % kVK == 0;
  const bool v_vec = kVV > 1 && p.v_layout.page_stride % kVV == 0;
  const int nwarps = kThreads / kWarpSize, lane = tid % kWarpSize, warp = tid / kWarpSize;
  __syncthreads();

  for (int32_t c0 = t_lo; c0 < t_end; c0 += kThreads) {
    const int32_t n = min(kThreads, t_end - c0);
    // 1. logits: one token per thread, K read once for all rows of the group.
    {
      const int32_t t = c0 + tid;
      // P.V reads blk_s for masked keys too.
      if (tid < n) blk_s[tid] = p.csr.indptr ? p.csr.block_of(s, t) : paged.block_of(s, t);
      if (tid < n && t >= t_first) {
        const int32_t blk = blk_s[tid], tok = paged.slot_of(t);
        float dot[kRows];
        for (int r = 0; r < kRows; ++r) dot[r] = 0.f;
        for (int32_t d0 = 0; d0 < D; d0 += kVK) {
          float k[kVK];
          if (d0 < p.k_from_v) load_decode<KV, kVK>(p.v_cache, p.v_layout(blk, hk, tok, d0), latent_vec, k);
          else load_decode<KV, kVK>(p.k_cache, p.k_layout(blk, hk, tok, d0 - p.k_from_v), k_vec, k);
          for (int j = 0; j < kVK; ++j)
            for (int r = 0; r < kRows; ++r) dot[r] += q_s[r][d0 + j] * k[j];
        }
        const float ks = slot_scale(p, p.k_scales, blk, hk, tok);
        for (int r = 0; r < kRows; ++r)
          x_s[r][tid] = p.lt.visible(t, rows[r].pos) ? p.lt(dot[r] * ks, rows[r].h, t, rows[r].pos) : -INFINITY;
      } else {
        for (int r = 0; r < kRows; ++r) x_s[r][tid] = -INFINITY;
      }
    }
    __syncthreads();
    // 2. chunk max per row, running max and the rescale factor of what came before.
    for (int r = warp; r < kRows; r += nwarps) {
      float v = -INFINITY;
      for (int k = lane; k < kThreads; k += kWarpSize) v = fmaxf(v, x_s[r][k]);
      v = warp_max(v);
      if (lane == 0) {
        const MergeWeights w = merge_weights(m_s[r], v);
        a_s[r] = w.wa;
        m_s[r] = w.m;
      }
    }
    __syncthreads();
    // 3. P = exp(x - m) in place.
    for (int r = 0; r < kRows; ++r) {
      const float x = x_s[r][tid];
      x_s[r][tid] = x == -INFINITY ? 0.f : expf(x - m_s[r]);
    }
    __syncthreads();
    // 4. denominators from the fp32 P (read-only pass, runs alongside 5).
    for (int r = warp; r < kRows; r += nwarps) {
      float v = 0.f;
      for (int k = lane; k < kThreads; k += kWarpSize) v += x_s[r][k];
      v = warp_sum(v);
      if (lane == 0) l_s[r] = l_s[r] * a_s[r] + v;
    }
    // 5. P.V: thread (slice, dv) owns kVV output columns for every row.
    if (slice < nslices) {
      for (int r = 0; r < kRows; ++r)
        for (int j = 0; j < kVV; ++j) acc[r][j] *= a_s[r];
    }
    if (kRead == VRead::kTokens && slice < nslices) {
      constexpr int kTV = 16 / int(sizeof(KS));
      for (int32_t g0 = slice * kTV; g0 < n; g0 += nslices * kTV) {
        const int32_t blk = blk_s[g0], tok = paged.slot_of(c0 + g0);
        float v[kTV];
        load_decode<KV, kTV>(p.v_cache, p.v_layout(blk, hk, tok, dv), true, v);
        for (int j = 0; j < kTV; ++j) {
          if (g0 + j >= n) break;  // slots past the chunk may be poison: never multiplied in
          const float val = v[j] * slot_scale(p, p.v_scales, blk, hk, tok + j);
          for (int r = 0; r < kRows; ++r) {
            float pr = x_s[r][g0 + j];
            if (p.round_p) pr = round_to<QT>(pr);
            acc[r][0] += pr * val;
          }
        }
      }
    } else if (slice < nslices) {
      for (int32_t tt = slice; tt < n; tt += nslices) {
        const int32_t blk = blk_s[tt], tok = paged.slot_of(c0 + tt);
        float v[kVV];
        load_decode<KV, kVV>(p.v_cache, p.v_layout(blk, hk, tok, dv * kVV), v_vec, v);
        const float vs = slot_scale(p, p.v_scales, blk, hk, tok);
        for (int r = 0; r < kRows; ++r) {
          float pr = x_s[r][tt];
          if (p.round_p) pr = round_to<QT>(pr);
          for (int j = 0; j < kVV; ++j) acc[r][j] += pr * (v[j] * vs);
        }
      }
    }
    __syncthreads();
  }

  // Reduce the token slices in a fixed order (deterministic), then write.
  for (int r = 0; r < kRows; ++r)
    for (int d = tid; d < Dv; d += kThreads) o_s[r][d] = 0.f;
  __syncthreads();
  for (int sl = 0; sl < nslices; ++sl) {
    if (slice == sl)
      for (int r = 0; r < kRows; ++r)
        for (int j = 0; j < kVV; ++j) o_s[r][dv * kVV + j] += acc[r][j];
    __syncthreads();
  }
  using QS = typename codec::Codec<QT>::Storage;
  for (int r = 0; r < kRows; ++r) {
    if (!rows[r].real) continue;  // padded rows are never written
    float m = m_s[r], l = l_s[r], wo = 1.f;
    if (!p.partition && p.sinks) {
      const MergeWeights w = merge_weights(m, p.sinks[rows[r].h]);
      wo = w.wa;
      l = l * w.wa + w.wb;
      m = w.m;
    }
    const float inv_l = l == 0.f ? 0.f : wo / l;  // a NaN l (poison read) must stay NaN
    if (!p.partition) {
      for (int d = tid; d < Dv; d += kThreads)
        static_cast<QS*>(p.out)[rows[r].idx * Dv + d] = codec::Codec<QT>::encode(o_s[r][d] * inv_l);
      if (tid == 0) p.lse[rows[r].idx] = l == 0.f ? -INFINITY : m + logf(l);
    } else {
      const int64_t w = rows[r].idx * p.num_partitions + blockIdx.z;
      for (int d = tid; d < Dv; d += kThreads) p.tmp_out[w * Dv + d] = o_s[r][d] * inv_l;
      if (tid == 0) {
        p.max_logits[w] = m;
        p.exp_sums[w] = l;
      }
    }
  }
}

template <DType KV, DType QT, VRead kRead, int MaxD = kMaxD, int MaxDv = kMaxD>
__global__ void __launch_bounds__(kThreads) attention_kernel(const AttentionParams p) {
  attention_body<KV, QT, kRead, MaxD, MaxDv>(p);
}

/// The V read mode for a layout (see VRead).
VRead v_read_mode(const PageLayout& v, int32_t elem_bytes) {
  const int32_t x = 16 / elem_bytes;
  if (v.contiguous_d() >= 8 && v.head_size % 8 == 0) return VRead::kColumns;
  // Length of the aligned run of consecutive tokens: x for shuffled V, B for vllm V.
  const int32_t run = v.s_tlo == 1 ? int32_t(v.t_mask + 1) : (v.s_thi == 1 ? v.block : 1);
  if (run >= x && run % x == 0 && v.block % x == 0 && v.page_stride % x == 0) return VRead::kTokens;
  return VRead::kScalar;
}

// Stage 2 of the split-K path: thread d merges the partitions' (tmp_out, max_logits, exp_sums).
template <DType QT>
__device__ void merge_body(const AttentionParams& p) {
  const int64_t row = blockIdx.x;
  const int32_t d = threadIdx.x, Dv = p.dv();
  const int32_t s = seq_of_token(p, row / p.num_q_heads);
  const int32_t h = int32_t(row % p.num_q_heads);
  const int32_t nparts = (context_of(p, s) + p.partition - 1) / p.partition;  // 0: empty, O = 0
  Partial<1> total = Partial<1>::empty();
  for (int32_t k = 0; k < nparts; ++k) {
    const int64_t w = row * p.num_partitions + k;
    const Partial<1> pk = Partial<1>::from_normalised(&p.tmp_out[w * Dv + d], p.max_logits[w], p.exp_sums[w]);
    total.merge(pk);
  }
  if (p.sinks) total.merge(Partial<1>::sink(p.sinks[h]));
  using QS = typename codec::Codec<QT>::Storage;
  static_cast<QS*>(p.out)[row * Dv + d] = codec::Codec<QT>::encode(total.normalised(0));
  if (d == 0) p.lse[row] = total.lse();
}
template <DType QT>
__global__ void merge_kernel(const AttentionParams p) {
  merge_body<QT>(p);
}

std::string last_error(const char* what) {
  const hipError_t e = hipGetLastError();
  return e == hipSuccess ? std::string() : std::string(what) + ": " + hipGetErrorString(e);
}

}  // namespace

// PA_KERNELS_MINIMAL (compile checks): one instantiation per kernel keeps CI time small.
#if defined(PA_KERNELS_MINIMAL)
#define PA_KV_SWITCH(t, KV, fail, ...) \
  if (t == DType::bf16) { constexpr DType KV = DType::bf16; __VA_ARGS__ } else { fail; }
#define PA_Q_SWITCH(t, QT, fail, ...) \
  if (t == DType::bf16) { constexpr DType QT = DType::bf16; __VA_ARGS__ } else { fail; }
#else
#define PA_KV_SWITCH PA_DISPATCH_KV_DTYPE
#define PA_Q_SWITCH PA_DISPATCH_Q_DTYPE
#endif

LaunchStatus launch_attention(const AttentionParams& p) {
  // Above 256: the MLA instantiation (head sizes up to 576 / 512, d-contiguous V).
  const bool wide = p.head_size > kMaxD || p.dv() > kMaxD;
  if (p.head_size > kMlaD || p.head_size % 16 != 0)
    return {"launch_attention: head_size=" + std::to_string(p.head_size) + " not a multiple of 16 <= 576"};
  if (p.dv() < 1 || p.dv() > (wide ? kMlaDv : kMaxD))
    return {"launch_attention: head_size_v=" + std::to_string(p.dv()) + " not in [1, 512] (up to 256 with head_size <= 256)"};
  if (p.k_from_v % 16 != 0 || p.k_from_v > p.head_size)
    return {"launch_attention: k_from_v=" + std::to_string(p.k_from_v) + " is not a multiple of 16 <= head_size"};
  if (p.block_size & (p.block_size - 1))
    return {"launch_attention: block_size=" + std::to_string(p.block_size) + " not a power of two"};
  const int32_t rows = p.q_len * p.gqa_tile;
  const dim3 grid(unsigned(p.num_seqs * p.num_kv_heads), unsigned((rows + kRows - 1) / kRows),
                  unsigned(p.partition ? p.num_partitions : 1));
  const VRead mode = v_read_mode(p.v_layout, dtype_bytes(p.kv_dtype));
  std::string err = "launch_attention: unsupported dtype";
  PA_KV_SWITCH(p.kv_dtype, KV, return {err},
    PA_Q_SWITCH(p.q_dtype, QT, return {err},
      if (wide && mode != VRead::kColumns) return {"launch_attention: head sizes above 256 need a d-contiguous V layout"};
      if (wide)
        hipLaunchKernelGGL((attention_kernel<KV, QT, VRead::kColumns, kMlaD, kMlaDv>), grid, dim3(kThreads), 0, 0, p);
      else if (mode == VRead::kColumns)
        hipLaunchKernelGGL((attention_kernel<KV, QT, VRead::kColumns>), grid, dim3(kThreads), 0, 0, p);
      else if (mode == VRead::kTokens)
        hipLaunchKernelGGL((attention_kernel<KV, QT, VRead::kTokens>), grid, dim3(kThreads), 0, 0, p);
      else hipLaunchKernelGGL((attention_kernel<KV, QT, VRead::kScalar>), grid, dim3(kThreads), 0, 0, p);
      if (auto e = last_error("attention_kernel"); !e.empty()) return {e};
      if (p.partition) {
        hipLaunchKernelGGL((merge_kernel<QT>), dim3(unsigned(p.rows())), dim3(unsigned(p.dv())), 0, 0, p);
        if (auto e = last_error("merge_kernel"); !e.empty()) return {e};
      }))
  return {};
}

}  // namespace pa::gpu
