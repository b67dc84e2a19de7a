// A paged-attention decode kernel on the GPU, put under test through pacheck's C ABI.
//
// A stranger's plug-in: it includes <pacheck/kernel_abi.h> and its own portability.h, nothing of
// pacheck. It builds with nvcc (as CUDA, -x cu) and with hipcc (-x hip). Its memory kind is DEVICE:
// pacheck allocates every buffer on the GPU (with guard regions), passes device pointers and the
// stream, and times the launch; `launch` only enqueues the kernel and returns.
//
// The kernel runs in two stages over a split-K partition fixed at 512 tokens (as vLLM's
// paged_attention_v2 does), declared as capability.fixed_partition so pacheck aims contexts at it.
// Stage 1: one thread block per (row, partition k), row = (sequence s, query token i, query head
// h), kThreads threads. Keys of the partition are visited in chunks of blockDim.x tokens: thread j
// computes the logit of key t0 + j into shared memory; then thread d (d < D) folds the chunk into
// its output element with the online softmax (rescale by exp(m_old - m_new)). The block writes
// {m_k, l_k, o_k / l_k} to the workspace; a partition with no visible key writes l_k = 0.
// Stage 2: one block per row merges the partitions by their share l_k exp(m_k - m).
// Only block-wide barriers and shared memory are used, so the same code is right for 32-lane warps
// and 64-lane wavefronts. fp32 throughout; `out` rounds to nearest-even in the q dtype, lse =
// m + log(l) in fp32. fp8 caches (e4m3fn, e4m3fnuz, e5m2) are dequantized and then rounded to the
// q dtype, as vLLM converts them to its compute type; the kernel declares that rounding for fp8
// caches only (numerics_by_kv), so 16-bit caches keep the tight tolerance.
//
// Launches go on the stream pacheck passes (explicit, never the default stream), on the device
// pacheck names in buffers.device_id.
//
// It has a plan step (ABI minor 3), as FlashInfer's plan/run: the plan fixes the partition count
// from the planned longest context and owns the workspace and a device copy of the planned
// contexts (a planner's metadata). A plan serves its batch with other values and with shorter
// contexts (PLAN_COVERS_SHORTER), so a launch may be captured in a CUDA/HIP graph at a padded
// batch and replayed on shorter ones (GRAPH_SAFE): the kernel reads the real contexts from
// context_lens, never from the plan. The same inputs give the same bits (DETERMINISTIC). A plan
// refuses any other batch, dtypes or options.
//
// Build with -DGPU_DECODE_PLANT_BUG=1 (CMake: -DPLANT_BUG=ON) for the planted bug in README.md;
// =2 a launch that trusts any plan and reads its planned contexts (a plan reused for another
// batch); =3 a plan made without the dtypes (it decodes a 16-bit cache as bf16); =4 reads the
// planned contexts although it declares graph safety (a graph replayed on a shorter batch reads
// past its real tokens).
#include "portability.h"

#include <pacheck/kernel_abi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace {

constexpr int kThreads = 128;  // one block per row; at least the largest declared head size
constexpr int kMaxHead = 128;
constexpr int32_t kPartition = 512;  // the fixed split-K partition, in tokens

// The problem as the kernel needs it, by value (the pacheck_problem itself lives in host memory).
struct Params {
  int32_t q_len, num_q_heads, num_kv_heads, head_size, block_size, max_blocks_per_seq, sliding_window;
  int32_t q_dtype, kv_dtype, kv_layout, per_tensor_scale;
  int64_t page_stride, num_blocks;
  float softmax_scale;
};

// ---- 16-bit element codes --------------------------------------------------------------------

// ---- element codes -----------------------------------------------------------------------------

PA_DEVICE float decode16(int32_t dtype, uint16_t code) {
  if (dtype == PACHECK_DTYPE_BF16) return __uint_as_float(uint32_t(code) << 16);
  const uint32_t sign = uint32_t(code & 0x8000u) << 16;
  const uint32_t exp = (code >> 10) & 0x1Fu, man = code & 0x3FFu;
  uint32_t mag;
  if (exp == 0) mag = __float_as_uint(float(man) * 5.9604644775390625e-8f);  // man * 2^-24, exact
  else if (exp == 31) mag = man ? 0x7FC00000u : 0x7F800000u;
  else mag = ((exp + 112u) << 23) | (man << 13);  // rebias 15 -> 127
  return __uint_as_float(sign | mag);
}

PA_DEVICE uint16_t encode16(int32_t dtype, float f) {
  uint32_t x = __float_as_uint(f);
  if (dtype == PACHECK_DTYPE_BF16) {
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x0040u);  // quiet NaN
    x += 0x7FFFu + ((x >> 16) & 1u);  // nearest, ties to even
    return uint16_t(x >> 16);
  }
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return uint16_t(sign | 0x7E00u);
  if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds past 65504
  if (ax < 0x38800000u)  // subnormal: x 2^24 is exact, rintf rounds to nearest even
    return uint16_t(sign | uint16_t(rintf(__uint_as_float(ax) * 16777216.0f)));
  uint32_t h = (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3FFu);
  const uint32_t rest = ax & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

// e4m3 (FN: bias 7, NaN 0x7F/0xFF; FNUZ: bias 8, NaN 0x80) and e5m2 (an fp16's top byte).
PA_DEVICE float decode8(int32_t dtype, uint8_t code) {
  if (dtype == PACHECK_DTYPE_FP8_E5M2) return decode16(PACHECK_DTYPE_FP16, uint16_t(code << 8));
  const bool fnuz = dtype == PACHECK_DTYPE_FP8_E4M3FNUZ;
  if (fnuz ? code == 0x80u : (code & 0x7Fu) == 0x7Fu) return __uint_as_float(0x7FC00000u);
  const float sign = (code & 0x80u) ? -1.f : 1.f;
  const int bias = fnuz ? 8 : 7, e = (code >> 3) & 0xF, m = code & 7;
  return sign * (e == 0 ? ldexpf(float(m), -bias - 2) : ldexpf(float(8 + m), e - bias - 3));
}

PA_DEVICE bool is_fp8(int32_t dtype) {
  return dtype == PACHECK_DTYPE_FP8_E4M3FN || dtype == PACHECK_DTYPE_FP8_E4M3FNUZ || dtype == PACHECK_DTYPE_FP8_E5M2;
}

// A cache element as the kernel computes with it: decoded, scaled, and on fp8 caches rounded to
// the q dtype (the declared qk_round / v_round of the fp8 numerics).
PA_DEVICE float cache_value(int32_t kv_dtype, int32_t q_dtype, const uint8_t* cache, int64_t off, float scale) {
  if (!is_fp8(kv_dtype)) return decode16(kv_dtype, reinterpret_cast<const uint16_t*>(cache)[off]) * scale;
  return decode16(q_dtype, encode16(q_dtype, decode8(kv_dtype, cache[off]) * scale));
}

// Element offset of (page blk, KV head h, slot tok, dim d); NHD and HND lay K and V out alike.
PA_DEVICE int64_t cache_offset(const Params& p, int64_t blk, int32_t h, int32_t tok, int32_t d) {
  const int64_t H = p.num_kv_heads, B = p.block_size, D = p.head_size;
  if (p.kv_layout == PACHECK_LAYOUT_NHD) return blk * p.page_stride + (tok * H + h) * D + d;
  return blk * p.page_stride + (h * B + tok) * D + d;
}

// Stage 1: block (row, k) over the keys of partition k: [512k, 512(k+1)) within [first, pos].
// ws[row][k] = {m_k, l_k, o_k[D] / l_k}, fp32; P partitions per row.
PA_GLOBAL void partition_kernel(Params p, int32_t P, const uint16_t* q, const uint8_t* k_cache,
                                const uint8_t* v_cache, const float* k_scales, const float* v_scales,
                                const int32_t* block_tables, const int32_t* context_lens, float* ws) {
  __shared__ float q_s[kMaxHead];
  __shared__ float x_s[kThreads];
  const int64_t row = blockIdx.x;  // rows are [S, q_len, Hq] row-major, like q and out
  const int32_t k = int32_t(blockIdx.y);
  const int32_t h = int32_t(row % p.num_q_heads);
  const int32_t i = int32_t((row / p.num_q_heads) % p.q_len);
  const int32_t s = int32_t(row / (int64_t(p.num_q_heads) * p.q_len));
  const int32_t hk = h / (p.num_q_heads / p.num_kv_heads);
  const int32_t D = p.head_size, B = p.block_size, tid = threadIdx.x, nt = blockDim.x;
  const int32_t* table = block_tables + int64_t(s) * p.max_blocks_per_seq;
  float* part = ws + (row * P + k) * (2 + D);

  for (int32_t d = tid; d < D; d += nt) q_s[d] = decode16(p.q_dtype, q[row * D + d]);
  const float ks = p.per_tensor_scale ? k_scales[0] : 1.f;
#if GPU_DECODE_PLANT_BUG == 1
  const float vs = 1.f;  // PLANTED BUG: V is dequantised without its scale (K keeps its own)
  (void)v_scales;
#else
  const float vs = p.per_tensor_scale ? v_scales[0] : 1.f;
#endif
  __syncthreads();

  // A context is kept inside the table's row (only a wrong one could pass it).
  const int32_t pos = min(context_lens[s], p.max_blocks_per_seq * p.block_size) - p.q_len + i;  // sees keys t <= pos ...
  int32_t first = 0;
  if (p.sliding_window > 0) first = max(0, pos - p.sliding_window + 1);  // ... and t > pos - W
  const int32_t lo = max(first, k * kPartition), hi = min(pos, (k + 1) * kPartition - 1);

  float m = -INFINITY, l = 0.f, acc = 0.f;  // acc: output element d = tid
  for (int32_t t0 = lo; t0 <= hi; t0 += nt) {
    const int32_t n = min(nt, hi - t0 + 1);
    float x = -INFINITY;
    if (tid < n) {
      const int32_t t = t0 + tid;
      int64_t blk = table[t / B];  // only visible tokens' table entries are read
      if (blk < 0 || blk >= p.num_blocks) blk = 0;  // (a pad entry only a wrong context reaches)
      float dot = 0.f;
      for (int32_t d = 0; d < D; ++d)
        dot += q_s[d] * cache_value(p.kv_dtype, p.q_dtype, k_cache, cache_offset(p, blk, hk, t % B, d), ks);
      x = p.softmax_scale * dot;
    }
    x_s[tid] = x;
    __syncthreads();
    float m_new = m;
    for (int32_t j = 0; j < n; ++j) m_new = fmaxf(m_new, x_s[j]);
    const float alpha = expf(m - m_new);  // 0 on the first chunk (m = -inf, m_new finite)
    l *= alpha;
    acc *= alpha;
    for (int32_t j = 0; j < n; ++j) {
      const float pj = expf(x_s[j] - m_new);
      l += pj;
      if (tid < D) {
        const int32_t t = t0 + j;
        int64_t blk = table[t / B];
        if (blk < 0 || blk >= p.num_blocks) blk = 0;
        acc += pj * cache_value(p.kv_dtype, p.q_dtype, v_cache, cache_offset(p, blk, hk, t % B, tid), vs);
      }
    }
    m = m_new;
    __syncthreads();  // x_s is overwritten by the next chunk
  }
  // A partition with no visible key (past pos, or before a window) has l = 0: stage 2 skips it.
  if (tid == 0) {
    part[0] = m;
    part[1] = l;
  }
  if (tid < D) part[2 + tid] = l > 0.f ? acc / l : 0.f;
}

// Stage 2: block row merges its P partitions; thread d writes output element d.
PA_GLOBAL void merge_kernel(Params p, int32_t P, const float* ws, uint16_t* out, float* lse) {
  const int64_t row = blockIdx.x;
  const int32_t D = p.head_size, tid = threadIdx.x;
  const float* parts = ws + row * P * (2 + D);
  float m = -INFINITY;
  for (int32_t k = 0; k < P; ++k)
    if (parts[k * (2 + D) + 1] > 0.f) m = fmaxf(m, parts[k * (2 + D)]);
  float l = 0.f, acc = 0.f;
  for (int32_t k = 0; k < P; ++k) {
    const float* part = parts + k * (2 + D);
    if (part[1] == 0.f) continue;
    const float w = part[1] * expf(part[0] - m);
    l += w;
    if (tid < D) acc += w * part[2 + tid];
  }
  // pos >= first (ctx >= q_len, W >= 1): every row of a sequence sees its own key, so l >= 1; a
  // sequence of context 0 (an empty slot of a padded batch) sees none: O = 0, LSE = -inf.
  if (tid < D) out[row * D + tid] = encode16(p.q_dtype, l > 0.f ? acc / l : 0.f);
  if (tid == 0 && lse) lse[row] = l > 0.f ? m + logf(l) : -INFINITY;
}

// ---- the descriptor ----------------------------------------------------------------------------

const int32_t kHeadSizes[] = {64, 128};
const int32_t kBlockSizes[] = {16, 32};

constexpr uint32_t kFp8 = PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ) |
                          PACHECK_BIT(PACHECK_DTYPE_FP8_E5M2);

const pacheck_capability kCapability = {
    PACHECK_STRUCT_SIZE(pacheck_capability),
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16),
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16) | kFp8,
    PACHECK_BIT(PACHECK_LAYOUT_NHD) | PACHECK_BIT(PACHECK_LAYOUT_HND),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR),
    kHeadSizes, 2, kBlockSizes, 2,
    8, nullptr, 0,  // G up to 8, no tiles
    4, 0, 0,        // q_len up to 4; no q_len*G or context limit
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_SLIDING_WINDOW | PACHECK_CAP_LSE |
        PACHECK_CAP_EMPTY_ROWS | PACHECK_CAP_DETERMINISTIC
#if GPU_DECODE_PLANT_BUG != 2 && GPU_DECODE_PLANT_BUG != 3
        | PACHECK_CAP_PLAN_COVERS_SHORTER | PACHECK_CAP_GRAPH_SAFE
#endif
    ,
    kPartition,  // fixed_partition: two stages split at 512 tokens, whatever partition_size says
    0,           // page_stride_align: element-wise loads, any stride
    0,           // page_tables (minor 2): the padded 2-D table only
    nullptr, 0,  // head_sizes_v: V has the QK head size
    PACHECK_LSE_NATURAL,
};
// 16-bit caches: fp32 logits, P, accumulation and partials; only the output rounds.
const pacheck_numerics kNumerics = {PACHECK_STRUCT_SIZE(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_NONE,
                                    PACHECK_ROUND_NONE, PACHECK_ROUND_NONE, PACHECK_ROUND_NONE, 0};
// fp8 caches: K (a Q.K operand) and V are rounded to the q dtype after dequantization.
const pacheck_numerics kFp8Numerics = {PACHECK_STRUCT_SIZE(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_AS_Q,
                                       PACHECK_ROUND_NONE, PACHECK_ROUND_AS_Q, PACHECK_ROUND_NONE, kFp8};
const pacheck_numerics* const kNumericsByKv[] = {&kFp8Numerics};

thread_local std::string t_last_error;

int fail(int status, const std::string& why) {
  t_last_error = why;
  return status;
}

// Partitions of the longest context, and the workspace: per row and partition {m, l, o[D]} fp32.
int64_t partitions(const pacheck_problem* p) { return std::max<int64_t>(1, (int64_t(p->max_context) + kPartition - 1) / kPartition); }
uint64_t gpu_workspace_bytes(const pacheck_kernel*, const pacheck_problem* p) {
  const uint64_t rows = uint64_t(p->num_seqs) * uint64_t(p->q_len) * uint64_t(p->num_q_heads);
  return rows * uint64_t(partitions(p)) * uint64_t(2 + p->head_size) * sizeof(float);
}

std::string unsupported_reason(const pacheck_problem* p) {
  if (!p || p->struct_size < offsetof(pacheck_problem, want_lse) + sizeof(p->want_lse))
    return "pacheck_problem.struct_size too small for ABI version 1";
  if (p->num_kv_heads <= 0 || p->num_q_heads % p->num_kv_heads != 0)
    return "num_q_heads=" + std::to_string(p->num_q_heads) + " is not a multiple of num_kv_heads=" +
           std::to_string(p->num_kv_heads);
  if (p->head_size > kMaxHead || p->head_size > kThreads)
    return "head_size=" + std::to_string(p->head_size) + " above 128";
  if (p->kv_layout != PACHECK_LAYOUT_NHD && p->kv_layout != PACHECK_LAYOUT_HND)
    return "kv_layout=" + std::to_string(p->kv_layout) + " is neither NHD (0) nor HND (1)";
  if (p->q_dtype != PACHECK_DTYPE_BF16 && p->q_dtype != PACHECK_DTYPE_FP16)
    return "q_dtype=" + std::to_string(p->q_dtype) + " is neither BF16 (0) nor FP16 (1)";
  if (p->kv_dtype != PACHECK_DTYPE_BF16 && p->kv_dtype != PACHECK_DTYPE_FP16 &&
      p->kv_dtype != PACHECK_DTYPE_FP8_E4M3FN && p->kv_dtype != PACHECK_DTYPE_FP8_E4M3FNUZ &&
      p->kv_dtype != PACHECK_DTYPE_FP8_E5M2)
    return "kv_dtype=" + std::to_string(p->kv_dtype) + " is neither a 16-bit nor an fp8 dtype";
  if (p->scale_mode != PACHECK_SCALE_NONE && p->scale_mode != PACHECK_SCALE_PER_TENSOR)
    return "scale_mode=" + std::to_string(p->scale_mode) + " is neither NONE (0) nor PER_TENSOR (1)";
  if (p->logit_softcap > 0 || p->has_alibi || p->has_sinks) return "soft-cap, ALiBi and sinks are not implemented";
  if (int64_t(p->num_seqs) * p->q_len * p->num_q_heads > 0x7FFFFFFF)
    return "num_seqs*q_len*num_q_heads above the grid limit 2^31-1";
  if (partitions(p) > 65535) return "max_context=" + std::to_string(p->max_context) + " needs more than 65535 partitions";
  return "";
}

int gpu_supports(const pacheck_kernel*, const pacheck_problem* p, char* why, size_t len) {
  const std::string r = unsupported_reason(p);
  if (r.empty()) return 1;
  std::snprintf(why, len, "%s", r.c_str());
  return 0;
}

const char* gpu_last_error(const pacheck_kernel*) { return t_last_error.c_str(); }

// What a plan holds: the problem and contexts it was made for, the partition count of its longest
// context, and the workspace and device copy of the contexts it owns.
struct Plan {
  pacheck_problem p;
  std::string ctx_bytes;  // the planned contexts (host copy; the source of ctx_dev's upload)
  int32_t P = 0;
  float* ws = nullptr;
  int32_t* ctx_dev = nullptr;
};

// The launch of both entry points: P partitions over workspace `ws`, contexts from `context_lens`.
int launch_body(const pacheck_problem* p, const pacheck_buffers* b, void* stream, int32_t P, float* ws,
                const int32_t* context_lens, int32_t kv_dtype);

int gpu_launch(const pacheck_kernel*, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  const std::string r = unsupported_reason(p);
  if (!r.empty()) return fail(PACHECK_NOT_SUPPORTED, r);
  if (!b || b->struct_size < offsetof(pacheck_buffers, sinks) + sizeof(b->sinks))
    return fail(PACHECK_ERROR, "pacheck_buffers.struct_size too small for ABI version 1");
  if (int64_t(p->num_seqs) * p->q_len * p->num_q_heads == 0) return PACHECK_OK;
  if (!b->workspace || b->workspace_bytes < gpu_workspace_bytes(nullptr, p))
    return fail(PACHECK_ERROR, "the workspace is smaller than workspace_bytes() asked for");
  return launch_body(p, b, stream, int32_t(partitions(p)), static_cast<float*>(b->workspace), b->context_lens,
                     p->kv_dtype);
}

#if PACHECK_KERNEL_ABI_MINOR >= 3
int gpu_plan(const pacheck_kernel*, const pacheck_problem* p, const pacheck_plan_batch* batch, void* stream,
             void** out) {
  const std::string r = unsupported_reason(p);
  if (!r.empty()) return fail(PACHECK_NOT_SUPPORTED, r);
  if (!batch || !batch->context_lens) return fail(PACHECK_ERROR, "plan: no batch");
  Plan* plan = new Plan;
  plan->p = *p;
#if GPU_DECODE_PLANT_BUG == 3
  plan->p.kv_dtype = PACHECK_DTYPE_BF16;  // PLANTED BUG: planned without the dtypes (the default one)
#endif
  plan->ctx_bytes.assign(reinterpret_cast<const char*>(batch->context_lens), size_t(p->num_seqs) * 4);
  plan->P = int32_t(partitions(p));
  const size_t ws = size_t(gpu_workspace_bytes(nullptr, p)), cb = plan->ctx_bytes.size();
  if ((ws && hipMalloc(reinterpret_cast<void**>(&plan->ws), ws) != hipSuccess) ||
      (cb && hipMalloc(reinterpret_cast<void**>(&plan->ctx_dev), cb) != hipSuccess) ||
      (cb && hipMemcpyAsync(plan->ctx_dev, plan->ctx_bytes.data(), cb, hipMemcpyHostToDevice,
                            static_cast<hipStream_t>(stream)) != hipSuccess)) {
    *out = plan;  // pacheck releases a half-made plan
    return fail(PACHECK_ERROR, std::string("plan: ") + hipGetErrorString(hipGetLastError()));
  }
  *out = plan;
  return PACHECK_OK;
}

void gpu_release_plan(const pacheck_kernel*, void* handle) {
  Plan* plan = static_cast<Plan*>(handle);
  // release_plan returns nothing: a failed free is kept as this thread's last error.
  for (void* p : {static_cast<void*>(plan->ws), static_cast<void*>(plan->ctx_dev)})
    if (p && hipFree(p) != hipSuccess) t_last_error = std::string("release_plan: ") + hipGetErrorString(hipGetLastError());
  delete plan;
}

// Why the plan does not serve the problem ("" when it does): the same batch shape, dtypes and
// options, and no context longer than planned (the problem's longest is on the host).
std::string plan_mismatch(const pacheck_problem& q, const pacheck_problem* p) {
  if (q.num_seqs != p->num_seqs || q.q_len != p->q_len || q.num_q_heads != p->num_q_heads ||
      q.num_kv_heads != p->num_kv_heads || q.head_size != p->head_size || q.block_size != p->block_size)
    return "the plan was made for another batch shape";
  if (q.q_dtype != p->q_dtype || q.kv_dtype != p->kv_dtype) return "the plan was made for other dtypes";
  if (q.kv_layout != p->kv_layout || q.scale_mode != p->scale_mode || q.softmax_scale != p->softmax_scale ||
      q.sliding_window != p->sliding_window || q.want_lse != p->want_lse)
    return "the plan was made for other options";
  if (p->max_context > q.max_context) return "a sequence is longer than the plan was made for";
  return "";
}

int gpu_launch_planned(const pacheck_kernel*, const void* handle, const pacheck_problem* p, const pacheck_buffers* b,
                       void* stream) {
  const Plan& plan = *static_cast<const Plan*>(handle);
  int32_t kv_dtype = p->kv_dtype;
  const int32_t* contexts = b->context_lens;
#if GPU_DECODE_PLANT_BUG == 2
  contexts = plan.p.num_seqs == p->num_seqs ? plan.ctx_dev : b->context_lens;  // PLANTED BUG: trusts any plan
  (void)plan_mismatch;
#else
  pacheck_problem as_planned = plan.p;
#if GPU_DECODE_PLANT_BUG == 3
  as_planned.kv_dtype = p->kv_dtype;  // it cannot tell the dtypes apart ...
  if (p->kv_dtype == PACHECK_DTYPE_FP16) kv_dtype = plan.p.kv_dtype;  // PLANTED BUG: ... and reads fp16 as bf16
#endif
  const std::string why = plan_mismatch(as_planned, p);
  if (!why.empty()) return fail(PACHECK_NOT_SUPPORTED, why);
#if GPU_DECODE_PLANT_BUG == 4
  contexts = plan.ctx_dev;  // PLANTED BUG: the planned contexts, not the batch's own
#endif
#endif
  if (int64_t(p->num_seqs) * p->q_len * p->num_q_heads == 0) return PACHECK_OK;
  return launch_body(p, b, stream, plan.P, plan.ws, contexts, kv_dtype);
}
#define GPU_PLAN_FNS gpu_plan, gpu_launch_planned, gpu_release_plan,
#endif

int launch_body(const pacheck_problem* p, const pacheck_buffers* b, void* stream, int32_t P, float* ws,
                const int32_t* context_lens, int32_t kv_dtype) {
  const int64_t rows = int64_t(p->num_seqs) * p->q_len * p->num_q_heads;
  // pacheck makes buffers.device_id current and created `stream` on it; a mismatch would launch
  // on a device whose memory the pointers do not address.
  if (PACHECK_HAS_FIELD(b, pacheck_buffers, device_id) && b->device_id >= 0) {
    // A 1.1 pacheck always names the stream; NULL would be the legacy stream, which pacheck's
    // copies and events are not queued on.
    if (!stream) return fail(PACHECK_ERROR, "pacheck 1.1 passes an explicit stream, but stream is NULL");
    int current = -1;
    if (hipGetDevice(&current) != hipSuccess || current != b->device_id)
      return fail(PACHECK_ERROR, "buffers.device_id=" + std::to_string(b->device_id) + " but device " +
                                     std::to_string(current) + " is current");
  }
  Params k{};
  k.q_len = p->q_len;
  k.num_q_heads = p->num_q_heads;
  k.num_kv_heads = p->num_kv_heads;
  k.head_size = p->head_size;
  k.block_size = p->block_size;
  k.max_blocks_per_seq = p->max_blocks_per_seq;
  k.sliding_window = p->sliding_window;
  k.q_dtype = p->q_dtype;
  k.kv_dtype = kv_dtype;
  k.kv_layout = p->kv_layout;
  k.per_tensor_scale = p->scale_mode == PACHECK_SCALE_PER_TENSOR;
  k.page_stride = p->page_stride;
  k.num_blocks = p->num_blocks;
  k.softmax_scale = float(p->softmax_scale);
  const hipStream_t st = static_cast<hipStream_t>(stream);  // pacheck's explicit stream: launch only there
  (void)hipGetLastError();  // clear a stale error so the check below reports these launches only
  PA_LAUNCH(partition_kernel, dim3(unsigned(rows), unsigned(P)), dim3(kThreads), 0, st, k, P,
            static_cast<const uint16_t*>(b->q), static_cast<const uint8_t*>(b->k_cache),
            static_cast<const uint8_t*>(b->v_cache), b->k_scales, b->v_scales, b->block_tables, context_lens, ws);
  PA_LAUNCH(merge_kernel, dim3(unsigned(rows)), dim3(kThreads), 0, st, k, P, ws, static_cast<uint16_t*>(b->out), b->lse);
  const hipError_t e = hipGetLastError();
  if (e != hipSuccess) return fail(PACHECK_ERROR, std::string("kernel launch failed: ") + hipGetErrorString(e));
  return PACHECK_OK;  // asynchronous: pacheck synchronises the stream and checks for faults
}

#if GPU_DECODE_PLANT_BUG
constexpr const char* kVersion = "1.1-planted-bug";
#else
constexpr const char* kVersion = "1.1";
#endif

const pacheck_kernel kKernel = {
    PACHECK_STRUCT_SIZE(pacheck_kernel),
    PACHECK_KERNEL_ABI_VERSION,
    "gpu_decode",
    kVersion,
    "pacheck examples/gpu_kernel_plugin (" GPU_DECODE_VENDOR "): fp32 paged-attention decode, one block per row",
    PACHECK_MEMORY_DEVICE,
    &kCapability,
    &kNumerics,
    nullptr,
    gpu_supports,
    gpu_workspace_bytes,  // the partitions' {m, l, o} between the two stages
    gpu_launch,
    gpu_last_error,
    PACHECK_KERNEL_ABI_MINOR,
    kNumericsByKv, 1,     // the fp8 caches' numerics
    nullptr, nullptr,     // no init/destroy: nothing outlives a launch
    nullptr,              // instance (minor 2): one implementation serves every launch
#if PACHECK_KERNEL_ABI_MINOR >= 3
    GPU_PLAN_FNS          // the plan step (minor 3)
#endif
};

const pacheck_kernel* const kKernels[] = {&kKernel};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) {
    *count = 0;
    return nullptr;
  }
  *count = 1;
  return kKernels;
}
