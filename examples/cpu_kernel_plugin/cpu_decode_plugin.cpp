// A paged-attention decode kernel on host memory, put under test through pacheck's C ABI.
//
// This is what a stranger's plug-in looks like: it includes only <pacheck/kernel_abi.h> (no
// pacheck source, no pacheck library), reads the problem and the physical cache through the
// offset formulas documented in that header, and exports one function, pacheck_kernels().
//
// The kernel: for every (sequence s, query token i, query head h) row, logits x_t = softmax_scale *
// q.(k_t * k_scale) over the visible keys, causal (t <= p) and windowed (t > p - W), in fp32. Like
// vLLM's paged_attention_v2 it runs in two stages over a partition fixed at 512 tokens: stage 1
// writes each partition's {max logit m_k, sum l_k, o_k = sum_t exp(x_t - m_k) v_t / l_k} to the
// workspace, stage 2 merges them: o = sum_k l_k exp(m_k - m) o_k / l. Then `out` is rounded to
// nearest-even in the q dtype and lse = m + log(l) in fp32. Like vLLM again, an fp8 cache's
// dequantized K and V are rounded to the q dtype before use, and the kernel declares that looser
// rounding for fp8 caches only (numerics_by_kv), keeping the tight tolerance on 16-bit caches.
//
// Build with -DCPU_DECODE_PLANT_BUG=1 (CMake: -DPLANT_BUG=ON) for the planted bug described in
// README.md: pacheck must catch it and shrink the failing case to at most two sequences.
#include <pacheck/kernel_abi.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

// ---- 16-bit element codes (little-endian, as the ABI says) -----------------------------------

float bf16_to_float(uint16_t code) {
  const uint32_t bits = uint32_t(code) << 16;  // bf16 is the top half of an fp32
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x0040u);  // keep NaN a (quiet) NaN
  x += 0x7FFFu + ((x >> 16) & 1u);  // round to nearest, ties to even; overflow carries into Inf
  return uint16_t(x >> 16);
}

float fp16_to_float(uint16_t code) {
  const uint32_t sign = uint32_t(code & 0x8000u) << 16;
  const uint32_t exp = (code >> 10) & 0x1Fu, man = code & 0x3FFu;
  float mag;
  if (exp == 0) {
    mag = std::ldexp(float(man), -24);  // zero and subnormals: man * 2^-24, exact in fp32
  } else if (exp == 31) {
    mag = man ? NAN : INFINITY;
  } else {
    const uint32_t bits = ((exp + 112u) << 23) | (man << 13);  // rebias 15 -> 127
    std::memcpy(&mag, &bits, 4);
  }
  uint32_t bits;
  std::memcpy(&bits, &mag, 4);
  bits |= sign;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return uint16_t(sign | 0x7E00u);   // NaN
  if (ax >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // >= 65520 rounds to Inf (65504 is odd)
  if (ax < 0x38800000u) {                                  // below 2^-14: a subnormal (or zero)
    float a;
    std::memcpy(&a, &ax, 4);
    return uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.0f)));  // x 2^24 is exact; RNE
  }
  uint32_t h = (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3FFu);
  const uint32_t rest = ax & 0x1FFFu;  // the 13 bits rounded away
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return uint16_t(sign | h);
}

// ---- 8-bit element codes ---------------------------------------------------------------------

// e4m3: 1 sign, 4 exponent, 3 mantissa bits. FN (OCP): bias 7, NaN 0x7F/0xFF. FNUZ (MI300): bias
// 8, NaN 0x80 only. Exact in fp32.
float e4m3_to_float(uint8_t code, bool fnuz) {
  if (fnuz ? code == 0x80u : (code & 0x7Fu) == 0x7Fu) return NAN;
  const float sign = (code & 0x80u) ? -1.f : 1.f;
  const int bias = fnuz ? 8 : 7, e = (code >> 3) & 0xF, m = code & 7;
  return sign * (e == 0 ? std::ldexp(float(m), -bias - 2) : std::ldexp(float(8 + m), e - bias - 3));
}

bool is_fp8(int32_t dtype) {
  return dtype == PACHECK_DTYPE_FP8_E4M3FN || dtype == PACHECK_DTYPE_FP8_E4M3FNUZ || dtype == PACHECK_DTYPE_FP8_E5M2;
}

float decode(int32_t dtype, const void* base, int64_t index) {
  const uint8_t* bytes = static_cast<const uint8_t*>(base);
  if (dtype == PACHECK_DTYPE_FP8_E4M3FN || dtype == PACHECK_DTYPE_FP8_E4M3FNUZ)
    return e4m3_to_float(bytes[index], dtype == PACHECK_DTYPE_FP8_E4M3FNUZ);
  if (dtype == PACHECK_DTYPE_FP8_E5M2) return fp16_to_float(uint16_t(bytes[index] << 8));  // an fp16's top byte
  uint16_t code;
  std::memcpy(&code, bytes + index * 2, 2);
  return dtype == PACHECK_DTYPE_BF16 ? bf16_to_float(code) : fp16_to_float(code);
}

// A float rounded to the q dtype and back (what storing it in the compute type does).
float as_q(int32_t q_dtype, float f) {
  return q_dtype == PACHECK_DTYPE_BF16 ? bf16_to_float(float_to_bf16(f)) : fp16_to_float(float_to_fp16(f));
}

void encode(int32_t dtype, void* base, int64_t index, float v) {
  const uint16_t code = dtype == PACHECK_DTYPE_BF16 ? float_to_bf16(v) : float_to_fp16(v);
  std::memcpy(static_cast<uint8_t*>(base) + index * 2, &code, 2);
}

// ---- what this kernel declares ---------------------------------------------------------------

const int32_t kHeadSizes[] = {64, 128};
const int32_t kBlockSizes[] = {16, 32};
constexpr int32_t kMaxHead = 128;

constexpr int32_t kPartition = 512;  // the fixed split-K partition, in tokens
constexpr uint32_t kFp8 = PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ) |
                          PACHECK_BIT(PACHECK_DTYPE_FP8_E5M2);

const pacheck_capability kCapability = {
    PACHECK_STRUCT_SIZE(pacheck_capability),
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16),          // q (and out)
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16) | kFp8,   // kv codes
    PACHECK_BIT(PACHECK_LAYOUT_NHD) | PACHECK_BIT(PACHECK_LAYOUT_HND),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR),
    kHeadSizes, 2,
    kBlockSizes, 2,
    8,           // max_gqa
    nullptr, 0,  // no GQA tiles: every G up to 8 runs as is
    4,           // max_q_len (causal among the new tokens)
    0,           // no q_len * G limit
    0,           // no context limit
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_SLIDING_WINDOW | PACHECK_CAP_LSE,
    kPartition,  // fixed_partition: pacheck aims context lengths at multiples of 512
    0,           // page_stride_align: scalar loads, any stride
    0,           // page_tables (minor 2): the padded 2-D table only
    nullptr, 0,  // head_sizes_v: V has the QK head size
    PACHECK_LSE_NATURAL,
};

// Honest numerics: on 16-bit caches Q.K, P, P.V and the partials all stay in fp32; only the output
// is rounded (to the q dtype), so pacheck holds this kernel to the tightest tolerance its model
// derives. On fp8 caches K and V are also rounded to the q dtype after dequantization.
const pacheck_numerics kNumerics = {PACHECK_STRUCT_SIZE(pacheck_numerics),
                                    PACHECK_ROUND_NONE,  // p_round
                                    PACHECK_ROUND_NONE,  // qk_round
                                    PACHECK_ROUND_NONE,  // partial_round
                                    PACHECK_ROUND_NONE,  // v_round
                                    PACHECK_ROUND_NONE,  // pv_round
                                    0};                  // kv_dtypes: unused on the base numerics
const pacheck_numerics kFp8Numerics = {PACHECK_STRUCT_SIZE(pacheck_numerics),
                                       PACHECK_ROUND_NONE, PACHECK_ROUND_AS_Q, PACHECK_ROUND_NONE,
                                       PACHECK_ROUND_AS_Q, PACHECK_ROUND_NONE, kFp8};
const pacheck_numerics* const kNumericsByKv[] = {&kFp8Numerics};

thread_local std::string t_last_error;  // per calling thread, as the ABI asks

int fail(int status, const std::string& why) {
  t_last_error = why;
  return status;
}

// The fields of pacheck_problem this kernel reads all belong to ABI version 1; a host that sends
// a shorter struct is refused rather than read past its end (the struct_size rule).
bool problem_complete(const pacheck_problem* p) {
  return p && p->struct_size >= offsetof(pacheck_problem, want_lse) + sizeof(p->want_lse);
}

// Everything the table cannot say. The table already bounds D, B, G and q_len; what is left is
// the shape's own consistency, checked here so a refusal names the value instead of misreading.
std::string unsupported_reason(const pacheck_problem* p) {
  if (!problem_complete(p)) return "pacheck_problem.struct_size too small for ABI version 1";
  if (p->num_kv_heads <= 0 || p->num_q_heads % p->num_kv_heads != 0)
    return "num_q_heads=" + std::to_string(p->num_q_heads) + " is not a multiple of num_kv_heads=" +
           std::to_string(p->num_kv_heads);
  if (p->head_size > kMaxHead) return "head_size=" + std::to_string(p->head_size) + " above 128";
  if (p->kv_layout != PACHECK_LAYOUT_NHD && p->kv_layout != PACHECK_LAYOUT_HND)
    return "kv_layout=" + std::to_string(p->kv_layout) + " is neither NHD (0) nor HND (1)";
  if (p->q_dtype != PACHECK_DTYPE_BF16 && p->q_dtype != PACHECK_DTYPE_FP16)
    return "q_dtype=" + std::to_string(p->q_dtype) + " is neither BF16 (0) nor FP16 (1)";
  if (p->kv_dtype != PACHECK_DTYPE_BF16 && p->kv_dtype != PACHECK_DTYPE_FP16 && !is_fp8(p->kv_dtype))
    return "kv_dtype=" + std::to_string(p->kv_dtype) + " is neither a 16-bit nor an fp8 dtype";
  if (p->scale_mode != PACHECK_SCALE_NONE && p->scale_mode != PACHECK_SCALE_PER_TENSOR)
    return "scale_mode=" + std::to_string(p->scale_mode) + " is neither NONE (0) nor PER_TENSOR (1)";
  if (p->logit_softcap > 0 || p->has_alibi || p->has_sinks)
    return "soft-cap, ALiBi and sinks are not implemented";
  return "";
}

int cpu_supports(const pacheck_kernel*, const pacheck_problem* p, char* why, size_t len) {
  const std::string r = unsupported_reason(p);
  if (r.empty()) return 1;
  std::snprintf(why, len, "%s", r.c_str());
  return 0;
}

const char* cpu_last_error(const pacheck_kernel*) { return t_last_error.c_str(); }

// Partitions of the longest context, and the workspace: per row and partition {m, l, o[D]} fp32.
int64_t partitions(const pacheck_problem* p) { return (int64_t(p->max_context) + kPartition - 1) / kPartition; }
uint64_t cpu_workspace_bytes(const pacheck_kernel*, const pacheck_problem* p) {
  const uint64_t rows = uint64_t(p->num_seqs) * uint64_t(p->q_len) * uint64_t(p->num_q_heads);
  return rows * uint64_t(partitions(p)) * uint64_t(2 + p->head_size) * sizeof(float);
}

// Element offset of (page blk, KV head h, slot tok, dim d) in K or V: NHD and HND lay K and V out
// alike, so one formula serves both (kernel_abi.h, "KV layouts").
int64_t cache_offset(const pacheck_problem& p, int64_t blk, int32_t h, int32_t tok, int32_t d) {
  const int64_t H = p.num_kv_heads, B = p.block_size, D = p.head_size;
  if (p.kv_layout == PACHECK_LAYOUT_NHD) return blk * p.page_stride + (tok * H + h) * D + d;
  return blk * p.page_stride + (h * B + tok) * D + d;  // HND
}

int cpu_launch(const pacheck_kernel*, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  (void)stream;  // host kernels get NULL
  const std::string r = unsupported_reason(p);
  if (!r.empty()) return fail(PACHECK_NOT_SUPPORTED, r);
  if (!b || b->struct_size < offsetof(pacheck_buffers, sinks) + sizeof(b->sinks))
    return fail(PACHECK_ERROR, "pacheck_buffers.struct_size too small for ABI version 1");
  if (!b->q || !b->out || !b->k_cache || !b->v_cache || !b->block_tables || !b->context_lens)
    return fail(PACHECK_ERROR, "a required buffer (q, out, k_cache, v_cache, block_tables, context_lens) is NULL");
  if (!b->workspace || b->workspace_bytes < cpu_workspace_bytes(nullptr, p))
    return fail(PACHECK_ERROR, "the workspace is smaller than workspace_bytes() asked for");

  const int32_t S = p->num_seqs, Q = p->q_len, Hq = p->num_q_heads, D = p->head_size, B = p->block_size;
  const int32_t G = Hq / p->num_kv_heads;
  // Per-tensor scales are one float each; NONE means 1 (the buffers then hold 1.0 anyway).
  const bool scaled = p->scale_mode == PACHECK_SCALE_PER_TENSOR;
  const float k_scale = scaled ? b->k_scales[0] : 1.0f;
  const float v_scale = scaled ? b->v_scales[0] : 1.0f;
  const float sm = float(p->softmax_scale);  // always given; 1/sqrt(D) is only pacheck's default
  const bool fp8 = is_fp8(p->kv_dtype);
  // A cache element as the kernel computes with it: dequantized, and on fp8 rounded to the q dtype.
  const auto kv = [&](const void* cache, float scale, int64_t off) {
    const float v = decode(p->kv_dtype, cache, off) * scale;
    return fp8 ? as_q(p->q_dtype, v) : v;
  };
  const int64_t P = partitions(p);

  float q[kMaxHead];
  std::vector<float> x;  // the row's logits over its visible keys
  for (int32_t s = 0; s < S; ++s) {
    const int32_t ctx = b->context_lens[s];
    const int32_t* table = b->block_tables + int64_t(s) * p->max_blocks_per_seq;
    for (int32_t i = 0; i < Q; ++i) {
      const int32_t pos = ctx - Q + i;  // this query token's position: it sees keys t <= pos
      int32_t first = 0;
      if (p->sliding_window > 0) {
#if CPU_DECODE_PLANT_BUG
        // PLANTED BUG: the window keeps W + 1 keys (t >= pos - W) instead of W (t > pos - W).
        first = pos - p->sliding_window;
#else
        first = pos - p->sliding_window + 1;
#endif
        if (first < 0) first = 0;
      }
      for (int32_t h = 0; h < Hq; ++h) {
        const int32_t hk = h / G;  // the KV head this query head reads
        const int64_t row = (int64_t(s) * Q + i) * Hq + h;
        for (int32_t d = 0; d < D; ++d) q[d] = decode(p->q_dtype, b->q, row * D + d);

        float m = -INFINITY;
        x.assign(size_t(pos - first + 1), 0.f);
        for (int32_t t = first; t <= pos; ++t) {
          // Only the table entries of visible tokens are read: the rest may be garbage.
          const int64_t blk = table[t / B];
          float dot = 0.f;
          for (int32_t d = 0; d < D; ++d)
            dot += q[d] * kv(b->k_cache, k_scale, cache_offset(*p, blk, hk, t % B, d));
          x[size_t(t - first)] = sm * dot;
          m = std::fmax(m, x[size_t(t - first)]);
        }
        // Stage 1: partition k holds tokens [512k, 512(k+1)); those before `first` (a window)
        // are not visible, so a partition may hold none (then l_k = 0 and stage 2 skips it).
        float* ws = static_cast<float*>(b->workspace) + row * P * (2 + D);
        const int32_t used = pos / kPartition + 1;  // partitions up to the one holding pos
        for (int32_t k = 0; k < used; ++k) {
          float* part = ws + int64_t(k) * (2 + D);
          const int32_t lo = std::max(first, k * kPartition), hi = std::min(pos, (k + 1) * kPartition - 1);
          float mk = -INFINITY, lk = 0.f;
          for (int32_t t = lo; t <= hi; ++t) mk = std::fmax(mk, x[size_t(t - first)]);
          for (int32_t d = 0; d < D; ++d) part[2 + d] = 0.f;
          for (int32_t t = lo; t <= hi; ++t) {
            const int64_t blk = table[t / B];
            const float pt = std::exp(x[size_t(t - first)] - mk);
            lk += pt;
            for (int32_t d = 0; d < D; ++d) part[2 + d] += pt * kv(b->v_cache, v_scale, cache_offset(*p, blk, hk, t % B, d));
          }
          part[0] = mk;
          part[1] = lk;
          if (lk > 0.f)
            for (int32_t d = 0; d < D; ++d) part[2 + d] /= lk;
        }
        // Stage 2: the partitions merged by their share exp(m_k - m) l_k of the denominator.
        float l = 0.f;
        float out[kMaxHead] = {};
        for (int32_t k = 0; k < used; ++k) {
          const float* part = ws + int64_t(k) * (2 + D);
          if (part[1] == 0.f) continue;
          const float w = std::exp(part[0] - m) * part[1];
          l += w;
          for (int32_t d = 0; d < D; ++d) out[d] += w * part[2 + d];
        }
        // pos >= first always (ctx >= q_len and W >= 1), so l >= 1 and nothing divides by zero.
        for (int32_t d = 0; d < D; ++d) encode(p->q_dtype, b->out, row * D + d, out[d] / l);
        if (b->lse) b->lse[row] = m + std::log(l);
      }
    }
  }
  return PACHECK_OK;
}

#if CPU_DECODE_PLANT_BUG
constexpr const char* kVersion = "1.0-planted-bug";
#else
constexpr const char* kVersion = "1.0";
#endif

const pacheck_kernel kKernel = {
    PACHECK_STRUCT_SIZE(pacheck_kernel),
    PACHECK_KERNEL_ABI_VERSION,
    "cpu_decode",  // names this kernel's records in reports; [A-Za-z0-9_.-]
    kVersion,
    "pacheck examples/cpu_kernel_plugin: fp32 paged-attention decode on host memory",
    PACHECK_MEMORY_HOST,
    &kCapability,
    &kNumerics,
    nullptr,          // user_data: unused, one kernel
    cpu_supports,
    cpu_workspace_bytes,  // the partitions' {m, l, o} between the two stages
    cpu_launch,
    cpu_last_error,
    PACHECK_KERNEL_ABI_MINOR,
    kNumericsByKv, 1,     // the fp8 caches' numerics
    nullptr,              // init: nothing to set up
    nullptr,              // destroy
    nullptr,              // instance (minor 2): one implementation serves every launch
};

const pacheck_kernel* const kKernels[] = {&kKernel};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  // A host speaking another ABI version gets nothing (and says so) rather than misread structs.
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) {
    *count = 0;
    return nullptr;
  }
  *count = 1;
  return kKernels;
}
