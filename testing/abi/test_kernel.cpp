// One small host kernel, built as several plug-ins (testing/abi/CMakeLists.txt), each variant
// reproducing one way a real kernel met the ABI. It includes only <pacheck/kernel_abi.h>: the
// TK_ABI_1_0 build finds testing/abi_v1_0/pacheck/kernel_abi.h (the 1.0 header, verbatim) first,
// so that library is a binary built against the 1.0 contract.
//
// The kernel: NHD layout, one pass per (sequence, query head) row over the visible keys in fp32,
// scales NONE / PER_TENSOR / PER_HEAD, KV in bf16, fp16 and the three fp8 formats; output rounded
// to the q dtype, lse in fp32. Variants (compile definitions):
//   TK_ABI_1_0              built against the 1.0 header; declares only 1.0 fields
//   TK_ABI_1_1, TK_ABI_1_2, TK_ABI_1_3  built against the 1.1 / 1.2 / 1.3 header (checked)
//   TK_IGNORE_16BIT_SCALES  reads 16-bit caches without scales (vLLM's kv_cache_dtype "auto")
//   TK_ONLY_SCALES_ON_8BIT  ... and declares it (PACHECK_CAP_ONLY_SCALES_ON_8BIT)
//   TK_ROUND_FP8_KV         rounds K and V to the q dtype after fp8 dequantization (vLLM)
//   TK_LOOSE_FP8_NUMERICS   declares that rounding for fp8 KV only (numerics_by_kv)
//   TK_LOOSE_ALL_NUMERICS   declares it for every KV dtype (all 1.0 could say)
//   TK_PLANT_16BIT_ERROR    scales 16-bit-KV outputs by (1 + 2^-6): a small uniform error
//   TK_SPLIT512             two stages, the context split at 512 tokens whatever the case says
//   TK_SPLIT512_BUG         ... whose reduce merges ctx/512 + 1 partitions: one too many when
//                           ctx is a multiple of 512 (it reads a partition stage 1 never wrote)
//   TK_NEEDS_ALIGN16        refuses (PACHECK_ERROR, as a faulting 16-byte load would) a
//                           page_stride that is not a multiple of 16 elements
//   TK_DECLARE_ALIGN16      ... and declares page_stride_align = 16
//   TK_NO_GQA_LIMIT         max_gqa = PACHECK_NO_LIMIT
//   TK_COUNT_INIT           init/destroy hooks that count and log "init PID" / "destroy PID"
//                           lines to the file named by PA_TEST_INIT_LOG
//   TK_FALLBACK             names a fallback instance (descriptor `instance`, minor 2) for
//                           contexts past 64 tokens: a silent fallback, metric instance
//   TK_PLAN                 a plan step (minor 3): the plan records the problem and the contexts,
//                           serves the same batch with contexts no longer (PLAN_COVERS_SHORTER),
//                           and refuses any other; empty sequences (EMPTY_ROWS) give O = 0, -inf
//   TK_PLAN_SHAPE_BLIND     ... whose launch trusts the plan: no refusal, and it reads the planned
//                           contexts instead of context_lens (a plan reused for another batch)
//   TK_PLAN_PAST_BATCH      ... reads the planned contexts, though it declares that a plan serves
//                           shorter batches (a graph replayed on fewer real tokens reads past them)
//   TK_PLAN_DTYPE_BLIND     ... planned without the dtypes: the plan assumes a 16-bit cache, so
//                           the launch skips the 8-bit caches' scales (16-bit caches carry none)
#include <pacheck/kernel_abi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#if defined(PACHECK_KERNEL_ABI_MINOR) && PACHECK_KERNEL_ABI_MINOR >= 3 && !defined(TK_ABI_1_0)
#define TK_MINOR 3
#elif defined(PACHECK_KERNEL_ABI_MINOR) && PACHECK_KERNEL_ABI_MINOR >= 2 && !defined(TK_ABI_1_0)
#define TK_MINOR 2
#elif defined(PACHECK_KERNEL_ABI_MINOR) && !defined(TK_ABI_1_0)
#define TK_MINOR 1
#else
#define TK_MINOR 0
#endif
#if defined(TK_ABI_1_0) && defined(PACHECK_KERNEL_ABI_MINOR)
#error "TK_ABI_1_0 must be built against testing/abi_v1_0 (the 1.0 header has no PACHECK_KERNEL_ABI_MINOR)"
#endif
#if defined(TK_ABI_1_1) && PACHECK_KERNEL_ABI_MINOR != 1
#error "TK_ABI_1_1 must be built against testing/abi_v1_1 (the 1.1 header verbatim)"
#endif
#if defined(TK_ABI_1_2) && PACHECK_KERNEL_ABI_MINOR != 2
#error "TK_ABI_1_2 must be built against testing/abi_v1_2 (the 1.2 header verbatim)"
#endif
#if defined(TK_ABI_1_3) && PACHECK_KERNEL_ABI_MINOR != 3
#error "TK_ABI_1_3 must be built against testing/abi_v1_3 (the 1.3 header verbatim)"
#endif

namespace {

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

float fp16_to_float(uint32_t code) {
  const float sign = (code & 0x8000u) ? -1.f : 1.f;
  const uint32_t e = (code >> 10) & 0x1Fu, m = code & 0x3FFu;
  if (e == 0) return sign * std::ldexp(float(m), -24);
  if (e == 31) return m ? NAN : sign * INFINITY;
  return sign * std::ldexp(float(m | 0x400u), int(e) - 25);
}

// e4m3: 1 sign, 4 exponent, 3 mantissa bits. fn: bias 7, NaN 0x7F/0xFF; fnuz: bias 8, NaN 0x80.
float e4m3_to_float(uint32_t code, bool fnuz) {
  if (fnuz ? code == 0x80u : (code & 0x7Fu) == 0x7Fu) return NAN;
  const float sign = (code & 0x80u) ? -1.f : 1.f;
  const int bias = fnuz ? 8 : 7;
  const uint32_t e = (code >> 3) & 0xFu, m = code & 7u;
  if (e == 0) return sign * std::ldexp(float(m), 1 - bias - 3);
  return sign * std::ldexp(float(m | 8u), int(e) - bias - 3);
}

float decode(int32_t dtype, const void* base, int64_t i) {
  const uint8_t* p = static_cast<const uint8_t*>(base);
  switch (dtype) {
    case PACHECK_DTYPE_BF16: return bits_to_float(uint32_t(p[2 * i] | p[2 * i + 1] << 8) << 16);
    case PACHECK_DTYPE_FP16: return fp16_to_float(uint32_t(p[2 * i] | p[2 * i + 1] << 8));
    case PACHECK_DTYPE_FP8_E4M3FN: return e4m3_to_float(p[i], false);
    case PACHECK_DTYPE_FP8_E4M3FNUZ: return e4m3_to_float(p[i], true);
    case PACHECK_DTYPE_FP8_E5M2: return fp16_to_float(uint32_t(p[i]) << 8);  // the top byte of an fp16
  }
  return NAN;
}

[[maybe_unused]] bool is_8bit(int32_t dtype) { return dtype != PACHECK_DTYPE_BF16 && dtype != PACHECK_DTYPE_FP16; }

// Round to nearest even in a 16-bit format, returned as the float it decodes to.
[[maybe_unused]] float round_to(int32_t dtype, float f) {
  if (std::isnan(f) || std::isinf(f)) return f;
  if (dtype == PACHECK_DTYPE_BF16) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    x += 0x7FFFu + ((x >> 16) & 1u);
    return bits_to_float(x & 0xFFFF0000u);
  }
  // fp16: 11 significant bits, subnormal step 2^-24; nearbyint rounds half to even.
  int e;
  std::frexp(f, &e);
  const int step = std::max(e - 11, -24);
  return std::ldexp(std::nearbyint(std::ldexp(f, -step)), step);
}

uint16_t encode16(int32_t dtype, float f) {
  f = round_to(dtype, f);
  if (dtype == PACHECK_DTYPE_BF16) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    return uint16_t(std::isnan(f) ? 0x7FC0u : x >> 16);
  }
  if (std::isnan(f)) return 0x7E00u;
  const uint16_t sign = std::signbit(f) ? 0x8000u : 0u;
  const float a = std::fabs(f);
  if (a >= 65520.f) return uint16_t(sign | 0x7C00u);
  if (a < 0x1.0p-14f) return uint16_t(sign | uint16_t(a * 16777216.f));  // exact after round_to
  int e;
  const float m = std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
  return uint16_t(sign | uint16_t((e + 14) << 10) | uint16_t(std::lround((m * 2.f - 1.f) * 1024.f)));
}

float scale_of(const pacheck_problem* p, const float* scales, int32_t h) {
#if defined(TK_IGNORE_16BIT_SCALES)
  if (!is_8bit(p->kv_dtype)) return 1.f;  // vLLM "auto": 16-bit caches are read as they are
#endif
  if (p->scale_mode == PACHECK_SCALE_PER_TENSOR) return scales[0];
  if (p->scale_mode == PACHECK_SCALE_PER_HEAD) return scales[h];
  return 1.f;
}

// One element of K or V as the kernel sees it: dequantized, and on fp8 caches rounded to the q
// dtype when the variant models vLLM's conversion to the compute type.
float kv_value(const pacheck_problem* p, const void* cache, float scale, int64_t off) {
  const float x = decode(p->kv_dtype, cache, off) * scale;
#if defined(TK_ROUND_FP8_KV)
  if (is_8bit(p->kv_dtype)) return round_to(p->q_dtype, x);
#endif
  return x;
}

constexpr int32_t kPartition = 512;

#if defined(TK_SPLIT512)
// Partitions the reduce reads for n visible keys. ceil(n / 512) are written by stage 1.
int32_t partitions_read(int32_t n) {
#if defined(TK_SPLIT512_BUG)
  return n / kPartition + 1;  // the off-by-one: one past the last written partition when 512 | n
#else
  return (n + kPartition - 1) / kPartition;
#endif
}
// Per row: (max_context / 512 + 1) partitions of {max logit, exp sum, D outputs}, fp32. The +1
// keeps the buggy reduce inside the buffer (it reads poison, not a neighbour's row).
uint64_t tk_workspace_bytes(const pacheck_kernel*, const pacheck_problem* p) {
  const uint64_t rows = uint64_t(p->num_seqs) * uint64_t(p->q_len) * uint64_t(p->num_q_heads);
  return rows * uint64_t(p->max_context / kPartition + 1) * uint64_t(2 + p->head_size) * 4u;
}
#endif

thread_local std::string t_error;
int fail(int status, const std::string& why) {
  t_error = why;
  return status;
}

#if defined(TK_FALLBACK)
// Contexts past 64 tokens are served by a "naive" fallback (the same arithmetic here), which the
// kernel names through `instance` as a kernel library would in its logs, and nowhere else.
thread_local bool t_fell_back = false;
const char* tk_instance(const pacheck_kernel*) { return t_fell_back ? "tk_naive_fallback" : nullptr; }
#define TK_INSTANCE tk_instance
#else
#define TK_INSTANCE nullptr
#endif

// What a plan holds (TK_PLAN): the problem and the contexts it was made for.
struct TkPlan {
  pacheck_problem p;
  std::vector<int32_t> ctx;
};

int tk_run(const pacheck_problem* p, const pacheck_buffers* b, const TkPlan* plan) {
  if (p->kv_layout != PACHECK_LAYOUT_NHD) return fail(PACHECK_NOT_SUPPORTED, "NHD only");
  bool kv_scales = true;  // dequantize with the scales (the 16-bit ones too, unless ignored)
#if defined(TK_PLAN_DTYPE_BLIND)
  kv_scales = !plan || is_8bit(plan->p.kv_dtype);  // through a plan: the plan's idea of the cache
#else
  (void)plan;
#endif
  // The context the kernel reads for sequence s: context_lens, or the buggy variants' planned one
  // (kept inside the table's row so that the reads stay in the buffers).
  const auto context_of = [&](int32_t s) {
#if defined(TK_PLAN_SHAPE_BLIND) || defined(TK_PLAN_PAST_BATCH)
    if (plan && size_t(s) < plan->ctx.size())
      return std::min(plan->ctx[size_t(s)], p->max_blocks_per_seq * p->block_size);
#endif
    return b->context_lens[s];
  };
#if defined(TK_FALLBACK)
  t_fell_back = p->max_context > 64;
#endif
#if defined(TK_NEEDS_ALIGN16)
  if (p->page_stride % 16 != 0)
    return fail(PACHECK_ERROR, "misaligned 16-byte load: page_stride=" + std::to_string(p->page_stride));
#endif
  const int32_t D = p->head_size, B = p->block_size, Hq = p->num_q_heads, G = Hq / p->num_kv_heads;
  const int64_t hkv_stride = int64_t(D), tok_stride = int64_t(p->num_kv_heads) * D;
  std::vector<float> q(static_cast<size_t>(D)), o(static_cast<size_t>(D));
  std::vector<float> logits;
  for (int32_t s = 0; s < p->num_seqs; ++s) {
    const int32_t ctx = context_of(s);
    for (int32_t i = 0; i < p->q_len; ++i) {
      const int32_t pos = ctx - p->q_len + i, n = pos + 1;  // keys 0..pos are visible
      for (int32_t h = 0; h < Hq; ++h) {
        const int32_t hk = h / G;
        const int64_t row = (int64_t(s) * p->q_len + i) * Hq + h;
        for (int32_t d = 0; d < D; ++d) q[size_t(d)] = decode(p->q_dtype, b->q, row * D + d);
        const float ks = kv_scales ? scale_of(p, b->k_scales, hk) : 1.f, vs = kv_scales ? scale_of(p, b->v_scales, hk) : 1.f;
        const auto base = [&](int32_t t) {
          int64_t blk = b->block_tables[int64_t(s) * p->max_blocks_per_seq + t / B];
          if (blk < 0 || blk >= p->num_blocks) blk = 0;  // a pad entry (a bug reads it): page 0, in bounds
          return blk * p->page_stride + int64_t(t % B) * tok_stride + int64_t(hk) * hkv_stride;
        };
        if (n <= 0) {  // an empty sequence: no key, O = 0 and LSE = -inf
          for (int32_t d = 0; d < D; ++d) std::memset(static_cast<uint8_t*>(b->out) + (row * D + d) * 2, 0, 2);
          if (b->lse) b->lse[row] = -INFINITY;
          continue;
        }
        logits.assign(size_t(n), 0.f);
        for (int32_t t = 0; t < n; ++t) {
          float x = 0;
          for (int32_t d = 0; d < D; ++d) x += q[size_t(d)] * kv_value(p, b->k_cache, ks, base(t) + d);
          logits[size_t(t)] = float(p->softmax_scale) * x;
        }
        // One pass over keys [lo, hi): running max m, sum l, o = sum exp(x - m) v (unnormalized).
        const auto pass = [&](int32_t lo, int32_t hi, float& m, float& l, float* acc) {
          m = -INFINITY;
          l = 0;
          for (int32_t t = lo; t < hi; ++t) m = std::max(m, logits[size_t(t)]);
          for (int32_t d = 0; d < D; ++d) acc[d] = 0;
          for (int32_t t = lo; t < hi; ++t) {
            const float w = std::exp(logits[size_t(t)] - m);
            l += w;
            for (int32_t d = 0; d < D; ++d) acc[d] += w * kv_value(p, b->v_cache, vs, base(t) + d);
          }
        };
        float m = 0, l = 0;
#if defined(TK_SPLIT512)
        // Stage 1 writes each partition's {m, l, o/l}; stage 2 merges what it reads.
        float* ws = static_cast<float*>(b->workspace) + row * int64_t(p->max_context / kPartition + 1) * (2 + D);
        for (int32_t part = 0; part * kPartition < n; ++part) {
          float* w = ws + int64_t(part) * (2 + D);
          pass(part * kPartition, std::min(n, (part + 1) * kPartition), w[0], w[1], w + 2);
          for (int32_t d = 0; d < D; ++d) w[2 + d] /= w[1];
        }
        m = -INFINITY;
        for (int32_t part = 0; part < partitions_read(n); ++part) m = std::max(m, ws[int64_t(part) * (2 + D)]);
        for (int32_t d = 0; d < D; ++d) o[size_t(d)] = 0;
        for (int32_t part = 0; part < partitions_read(n); ++part) {
          const float* w = ws + int64_t(part) * (2 + D);
          const float wl = w[1] * std::exp(w[0] - m);
          l += wl;
          for (int32_t d = 0; d < D; ++d) o[size_t(d)] += wl * w[2 + d];
        }
#else
        pass(0, n, m, l, o.data());
#endif
        for (int32_t d = 0; d < D; ++d) {
          float v = o[size_t(d)] / l;
#if defined(TK_PLANT_16BIT_ERROR)
          if (!is_8bit(p->kv_dtype)) v *= 1.f + 0x1.0p-6f;
#endif
          const uint16_t code = encode16(p->q_dtype, v);
          std::memcpy(static_cast<uint8_t*>(b->out) + (row * D + d) * 2, &code, 2);
        }
        if (b->lse) b->lse[row] = m + std::log(l);
      }
    }
  }
  return PACHECK_OK;
}

int tk_launch(const pacheck_kernel*, const pacheck_problem* p, const pacheck_buffers* b, void*) { return tk_run(p, b, nullptr); }

#if defined(TK_PLAN)
int tk_plan(const pacheck_kernel*, const pacheck_problem* p, const pacheck_plan_batch* batch, void*, void** out) {
  if (!batch || !batch->context_lens) return fail(PACHECK_ERROR, "plan: no batch");
  auto* plan = new TkPlan{*p, std::vector<int32_t>(batch->context_lens, batch->context_lens + p->num_seqs)};
#if defined(TK_PLAN_DTYPE_BLIND)
  plan->p.kv_dtype = PACHECK_DTYPE_BF16;  // planned without the dtypes: the default one
#endif
  *out = plan;
  return PACHECK_OK;
}

void tk_release(const pacheck_kernel*, void* plan) { delete static_cast<TkPlan*>(plan); }

// Whether the plan serves the problem: the same batch and options, each context at most planned.
const char* plan_mismatch(const TkPlan& plan, const pacheck_problem* p, const int32_t* context_lens) {
  const pacheck_problem& q = plan.p;
  if (q.num_seqs != p->num_seqs || q.q_len != p->q_len) return "the plan was made for another batch shape";
  if (q.num_q_heads != p->num_q_heads || q.num_kv_heads != p->num_kv_heads || q.head_size != p->head_size ||
      q.block_size != p->block_size || q.kv_layout != p->kv_layout || q.scale_mode != p->scale_mode ||
      q.softmax_scale != p->softmax_scale || q.want_lse != p->want_lse)
    return "the plan was made for other heads or options";
  if (q.q_dtype != p->q_dtype || q.kv_dtype != p->kv_dtype) return "the plan was made for other dtypes";
#if !defined(TK_PLAN_PAST_BATCH)
  for (int32_t s = 0; s < p->num_seqs; ++s)
    if (context_lens[s] > plan.ctx[size_t(s)]) return "a sequence is longer than the plan was made for";
#else
  (void)context_lens;
#endif
  return nullptr;
}

int tk_launch_planned(const pacheck_kernel*, const void* handle, const pacheck_problem* p, const pacheck_buffers* b, void*) {
  const auto& plan = *static_cast<const TkPlan*>(handle);
#if defined(TK_PLAN_SHAPE_BLIND)
  (void)plan_mismatch;  // it trusts the plan
#elif !defined(TK_PLAN_DTYPE_BLIND)
  if (const char* why = plan_mismatch(plan, p, b->context_lens)) return fail(PACHECK_NOT_SUPPORTED, why);
#else
  // It checks the shape; its dtypes are the default's, so it cannot tell a dtype apart.
  TkPlan as_given = plan;
  as_given.p.kv_dtype = p->kv_dtype;
  if (const char* why = plan_mismatch(as_given, p, b->context_lens)) return fail(PACHECK_NOT_SUPPORTED, why);
#endif
  return tk_run(p, b, &plan);
}
#define TK_PLAN_FNS , tk_plan, tk_launch_planned, tk_release
#else
#define TK_PLAN_FNS , nullptr, nullptr, nullptr
#endif

const char* tk_last_error(const pacheck_kernel*) { return t_error.c_str(); }

const int32_t kHeads[] = {64};
const int32_t kBlocks[] = {16};
constexpr uint32_t kKv = PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16) |
                         PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ) |
                         PACHECK_BIT(PACHECK_DTYPE_FP8_E5M2);
constexpr uint32_t kFlags = PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_LSE
#if defined(TK_ONLY_SCALES_ON_8BIT)
                            | PACHECK_CAP_ONLY_SCALES_ON_8BIT
#endif
#if defined(TK_PLAN)
                            | PACHECK_CAP_EMPTY_ROWS | PACHECK_CAP_DETERMINISTIC
#if !defined(TK_PLAN_SHAPE_BLIND) && !defined(TK_PLAN_DTYPE_BLIND)
                            | PACHECK_CAP_PLAN_COVERS_SHORTER
#endif
#endif
    ;

const pacheck_capability kCap = {
    sizeof(pacheck_capability),
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16),
    kKv,
    PACHECK_BIT(PACHECK_LAYOUT_NHD),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR) | PACHECK_BIT(PACHECK_SCALE_PER_HEAD),
    kHeads, 1, kBlocks, 1,
#if defined(TK_NO_GQA_LIMIT)
    PACHECK_NO_LIMIT,
#else
    4,
#endif
    nullptr, 0,
    1,  // max_q_len
    0, 0, kFlags,
#if TK_MINOR >= 1
#if defined(TK_SPLIT512)
    kPartition,
#else
    0,
#endif
#if defined(TK_DECLARE_ALIGN16)
    16,
#else
    0,
#endif
#endif
#if TK_MINOR >= 2
    0, nullptr, 0, PACHECK_LSE_NATURAL,  // minor 2: padded table, Dv == D, natural LSE (declares nothing new)
#endif
};

#if TK_MINOR >= 1
#define TK_V1_FIELDS(v, pv, kv) , v, pv, kv
#else
#define TK_V1_FIELDS(v, pv, kv)
#endif
// What the kernel rounds on fp8 caches: K (a Q.K operand) and V to the q dtype.
const pacheck_numerics kLoose = {sizeof(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_AS_Q,
                                 PACHECK_ROUND_NONE TK_V1_FIELDS(PACHECK_ROUND_AS_Q, 0,
                                     PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ) |
                                         PACHECK_BIT(PACHECK_DTYPE_FP8_E5M2))};
const pacheck_numerics kTight = {sizeof(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_NONE,
                                 PACHECK_ROUND_NONE TK_V1_FIELDS(0, 0, 0)};
#if defined(TK_LOOSE_ALL_NUMERICS)
const pacheck_numerics* const kNumerics = &kLoose;
#else
const pacheck_numerics* const kNumerics = &kTight;
#endif
#if defined(TK_LOOSE_FP8_NUMERICS)
const pacheck_numerics* const kByKv[] = {&kLoose};
constexpr uint32_t kNumByKv = 1;
#else
const pacheck_numerics* const* const kByKv = nullptr;
constexpr uint32_t kNumByKv = 0;
#endif

#if defined(TK_COUNT_INIT)
struct Counts {
  int inits = 0, destroys = 0;
} g_counts;

void log_line(const char* what) {
  if (const char* path = std::getenv("PA_TEST_INIT_LOG")) {
    if (FILE* f = std::fopen(path, "a")) {
      std::fprintf(f, "%s %ld\n", what, long(getpid()));
      std::fclose(f);
    }
  }
}
int tk_init(const pacheck_kernel*) {
  ++g_counts.inits;
  log_line("init");
  return PACHECK_OK;
}
void tk_destroy(const pacheck_kernel*) {
  ++g_counts.destroys;
  log_line("destroy");
}
#define TK_USER_DATA &g_counts
#define TK_INIT tk_init
#define TK_DESTROY tk_destroy
#else
#define TK_USER_DATA nullptr
#define TK_INIT nullptr
#define TK_DESTROY nullptr
#endif

#if defined(TK_SPLIT512)
#define TK_WORKSPACE tk_workspace_bytes
#else
#define TK_WORKSPACE nullptr
#endif

const pacheck_kernel kKernel = {
    sizeof(pacheck_kernel), PACHECK_KERNEL_ABI_VERSION, TK_NAME, "1", "pacheck testing/abi/test_kernel.cpp",
    PACHECK_MEMORY_HOST, &kCap, kNumerics, TK_USER_DATA, nullptr, TK_WORKSPACE, tk_launch, tk_last_error,
#if TK_MINOR >= 1
    PACHECK_KERNEL_ABI_MINOR, kByKv, kNumByKv, TK_INIT, TK_DESTROY,
#endif
#if TK_MINOR >= 2
    TK_INSTANCE
#endif
#if TK_MINOR >= 3
    TK_PLAN_FNS
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
