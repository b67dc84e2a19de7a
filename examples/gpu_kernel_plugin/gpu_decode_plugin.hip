// A paged-attention decode kernel on the GPU, put under test through pacheck's C ABI.
//
// A stranger's plug-in: it includes <pacheck/kernel_abi.h> and its own portability.h, nothing of
// pacheck. It builds with nvcc (as CUDA, -x cu) and with hipcc (-x hip). Its memory kind is DEVICE:
// pacheck allocates every buffer on the GPU (with guard regions), passes device pointers and the
// stream, and times the launch; `launch` only enqueues the kernel and returns.
//
// The kernel: one thread block per (sequence s, query token i, query head h) row, kThreads threads.
// Keys are visited in chunks of blockDim.x tokens: thread j computes the logit of key t0 + j into
// shared memory; then thread d (d < D) folds the chunk into its output element with the online
// softmax (rescale by exp(m_old - m_new)). Only block-wide barriers and shared memory are used, so
// the same code is right for 32-lane warps and 64-lane wavefronts. fp32 throughout; `out` rounds
// to nearest-even in the q dtype, lse = m + log(l) in fp32.
//
// Build with -DGPU_DECODE_PLANT_BUG=1 (CMake: -DPLANT_BUG=ON) for the planted bug in README.md.
#include "portability.h"

#include <pacheck/kernel_abi.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace {

constexpr int kThreads = 128;  // one block per row; at least the largest declared head size
constexpr int kMaxHead = 128;

// The problem as the kernel needs it, by value (the pacheck_problem itself lives in host memory).
struct Params {
  int32_t q_len, num_q_heads, num_kv_heads, head_size, block_size, max_blocks_per_seq, sliding_window;
  int32_t q_dtype, kv_dtype, kv_layout, per_tensor_scale;
  int64_t page_stride;
  float softmax_scale;
};

// ---- 16-bit element codes --------------------------------------------------------------------

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

// Element offset of (page blk, KV head h, slot tok, dim d); NHD and HND lay K and V out alike.
PA_DEVICE int64_t cache_offset(const Params& p, int64_t blk, int32_t h, int32_t tok, int32_t d) {
  const int64_t H = p.num_kv_heads, B = p.block_size, D = p.head_size;
  if (p.kv_layout == PACHECK_LAYOUT_NHD) return blk * p.page_stride + (tok * H + h) * D + d;
  return blk * p.page_stride + (h * B + tok) * D + d;
}

PA_GLOBAL void decode_kernel(Params p, const uint16_t* q, uint16_t* out, float* lse, const uint16_t* k_cache,
                             const uint16_t* v_cache, const float* k_scales, const float* v_scales,
                             const int32_t* block_tables, const int32_t* context_lens) {
  __shared__ float q_s[kMaxHead];
  __shared__ float x_s[kThreads];
  const int64_t row = blockIdx.x;  // rows are [S, q_len, Hq] row-major, like q and out
  const int32_t h = int32_t(row % p.num_q_heads);
  const int32_t i = int32_t((row / p.num_q_heads) % p.q_len);
  const int32_t s = int32_t(row / (int64_t(p.num_q_heads) * p.q_len));
  const int32_t hk = h / (p.num_q_heads / p.num_kv_heads);
  const int32_t D = p.head_size, B = p.block_size, tid = threadIdx.x, nt = blockDim.x;
  const int32_t* table = block_tables + int64_t(s) * p.max_blocks_per_seq;

  for (int32_t d = tid; d < D; d += nt) q_s[d] = decode16(p.q_dtype, q[row * D + d]);
  const float ks = p.per_tensor_scale ? k_scales[0] : 1.f;
#if GPU_DECODE_PLANT_BUG
  const float vs = 1.f;  // PLANTED BUG: V is dequantised without its scale (K keeps its own)
  (void)v_scales;
#else
  const float vs = p.per_tensor_scale ? v_scales[0] : 1.f;
#endif
  __syncthreads();

  const int32_t pos = context_lens[s] - p.q_len + i;  // sees keys t <= pos ...
  int32_t first = 0;
  if (p.sliding_window > 0) first = max(0, pos - p.sliding_window + 1);  // ... and t > pos - W

  float m = -INFINITY, l = 0.f, acc = 0.f;  // acc: output element d = tid
  for (int32_t t0 = first; t0 <= pos; t0 += nt) {
    const int32_t n = min(nt, pos - t0 + 1);
    float x = -INFINITY;
    if (tid < n) {
      const int32_t t = t0 + tid;
      const int64_t blk = table[t / B];  // only visible tokens' table entries are read
      float dot = 0.f;
      for (int32_t d = 0; d < D; ++d)
        dot += q_s[d] * (decode16(p.kv_dtype, k_cache[cache_offset(p, blk, hk, t % B, d)]) * ks);
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
        const int64_t blk = table[t / B];
        acc += pj * (decode16(p.kv_dtype, v_cache[cache_offset(p, blk, hk, t % B, tid)]) * vs);
      }
    }
    m = m_new;
    __syncthreads();  // x_s is overwritten by the next chunk
  }
  // pos >= first (ctx >= q_len, W >= 1): every row sees at least its own key, so l >= 1.
  if (tid < D) out[row * D + tid] = encode16(p.q_dtype, acc / l);
  if (tid == 0 && lse) lse[row] = m + logf(l);
}

// ---- the descriptor ----------------------------------------------------------------------------

const int32_t kHeadSizes[] = {64, 128};
const int32_t kBlockSizes[] = {16, 32};

const pacheck_capability kCapability = {
    sizeof(pacheck_capability),
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16),
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16),
    PACHECK_BIT(PACHECK_LAYOUT_NHD) | PACHECK_BIT(PACHECK_LAYOUT_HND),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR),
    kHeadSizes, 2, kBlockSizes, 2,
    8, nullptr, 0,  // G up to 8, no tiles
    4, 0, 0,        // q_len up to 4; no q_len*G or context limit
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_SLIDING_WINDOW | PACHECK_CAP_LSE,
};
// fp32 logits, P and accumulation; only the output rounds.
const pacheck_numerics kNumerics = {sizeof(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_NONE,
                                    PACHECK_ROUND_NONE};

thread_local std::string t_last_error;

int fail(int status, const std::string& why) {
  t_last_error = why;
  return status;
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
  for (int32_t dt : {p->q_dtype, p->kv_dtype})
    if (dt != PACHECK_DTYPE_BF16 && dt != PACHECK_DTYPE_FP16)
      return "dtype=" + std::to_string(dt) + " is neither BF16 (0) nor FP16 (1)";
  if (p->scale_mode != PACHECK_SCALE_NONE && p->scale_mode != PACHECK_SCALE_PER_TENSOR)
    return "scale_mode=" + std::to_string(p->scale_mode) + " is neither NONE (0) nor PER_TENSOR (1)";
  if (p->logit_softcap > 0 || p->has_alibi || p->has_sinks) return "soft-cap, ALiBi and sinks are not implemented";
  if (int64_t(p->num_seqs) * p->q_len * p->num_q_heads > 0x7FFFFFFF)
    return "num_seqs*q_len*num_q_heads above the grid limit 2^31-1";
  return "";
}

int gpu_supports(const pacheck_kernel*, const pacheck_problem* p, char* why, size_t len) {
  const std::string r = unsupported_reason(p);
  if (r.empty()) return 1;
  std::snprintf(why, len, "%s", r.c_str());
  return 0;
}

const char* gpu_last_error(const pacheck_kernel*) { return t_last_error.c_str(); }

int gpu_launch(const pacheck_kernel*, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  const std::string r = unsupported_reason(p);
  if (!r.empty()) return fail(PACHECK_NOT_SUPPORTED, r);
  if (!b || b->struct_size < offsetof(pacheck_buffers, sinks) + sizeof(b->sinks))
    return fail(PACHECK_ERROR, "pacheck_buffers.struct_size too small for ABI version 1");
  const int64_t rows = int64_t(p->num_seqs) * p->q_len * p->num_q_heads;
  if (rows == 0) return PACHECK_OK;
  Params k{};
  k.q_len = p->q_len;
  k.num_q_heads = p->num_q_heads;
  k.num_kv_heads = p->num_kv_heads;
  k.head_size = p->head_size;
  k.block_size = p->block_size;
  k.max_blocks_per_seq = p->max_blocks_per_seq;
  k.sliding_window = p->sliding_window;
  k.q_dtype = p->q_dtype;
  k.kv_dtype = p->kv_dtype;
  k.kv_layout = p->kv_layout;
  k.per_tensor_scale = p->scale_mode == PACHECK_SCALE_PER_TENSOR;
  k.page_stride = p->page_stride;
  k.softmax_scale = float(p->softmax_scale);
  (void)hipGetLastError();  // clear a stale error so the check below reports this launch only
  PA_LAUNCH(decode_kernel, dim3(unsigned(rows)), dim3(kThreads), 0, static_cast<hipStream_t>(stream), k,
            static_cast<const uint16_t*>(b->q), static_cast<uint16_t*>(b->out), b->lse,
            static_cast<const uint16_t*>(b->k_cache), static_cast<const uint16_t*>(b->v_cache), b->k_scales,
            b->v_scales, b->block_tables, b->context_lens);
  const hipError_t e = hipGetLastError();
  if (e != hipSuccess) return fail(PACHECK_ERROR, std::string("kernel launch failed: ") + hipGetErrorString(e));
  return PACHECK_OK;  // asynchronous: pacheck synchronises the stream and checks for faults
}

#if GPU_DECODE_PLANT_BUG
constexpr const char* kVersion = "1.0-planted-bug";
#else
constexpr const char* kVersion = "1.0";
#endif

const pacheck_kernel kKernel = {
    sizeof(pacheck_kernel),
    PACHECK_KERNEL_ABI_VERSION,
    "gpu_decode",
    kVersion,
    "pacheck examples/gpu_kernel_plugin (" GPU_DECODE_VENDOR "): fp32 paged-attention decode, one block per row",
    PACHECK_MEMORY_DEVICE,
    &kCapability,
    &kNumerics,
    nullptr,
    gpu_supports,
    nullptr,  // no workspace
    gpu_launch,
    gpu_last_error,
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
