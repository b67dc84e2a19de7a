// GPU known-bad kernels: the four algorithmic bugs of known_bad_host.cpp as device-memory
// kernels, so the catalogue is measured on the GPU backend as well. One thread per query row
// (per (sequence, query token, KV head) group for the padded-tile bug, so its overwrite order is
// the host's and the result does not depend on scheduling); fp32 throughout, through the same
// PageLayout / ScaleLayout / codec / Partial values every kernel uses.
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/layout.hpp"
#include "core/problem.hpp"
#include "kernels/builtin_capability.hpp"
#include "kernels/common/logits.hpp"
#include "kernels/common/partial.hpp"
#include "core/gpu_runtime.hpp"
#include "testing/known_bad/known_bad.hpp"

namespace pa {

namespace {

constexpr int kMaxHead = 256;
constexpr int kThreads = 64;
using RowPartial = Partial<kMaxHead>;

enum class Bug { merge_without_rescale, causal_mask_ignored, padded_heads_written, max_not_subtracted };

struct BadParams {
  const void* q = nullptr;        // [S, q_len, Hq, D] codes of q_dtype (16-bit)
  void* out = nullptr;            // [S, q_len, Hq, D]
  float* lse = nullptr;           // [S, q_len, Hq] or null
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  const float* k_scales = nullptr;
  const float* v_scales = nullptr;
  const float* sinks = nullptr;   // [Hq] or null
  PagedLayout K, V;               // block_tables: device pointer
  const int32_t* context_lens = nullptr;
  ScaleLayout sl;
  LogitTransform lt;              // lt.alibi: device pointer or null
  DType qt = DType::bf16, kv = DType::bf16;
  int32_t num_seqs = 0, q_len = 1, num_q_heads = 0, num_kv_heads = 0, head_size = 0;
  int32_t gqa = 1, gqa_tile = 1, partition = 0;
};

__device__ inline float load_kv(const BadParams& p, const void* base, int64_t off) {
  const uint32_t c = dtype_bytes(p.kv) == 1 ? uint32_t(static_cast<const uint8_t*>(base)[off])
                                            : uint32_t(static_cast<const uint16_t*>(base)[off]);
  return codec::decode(p.kv, c);
}
__device__ inline float load_q(const BadParams& p, int64_t r, int32_t d) {
  return codec::decode(p.qt, static_cast<const uint16_t*>(p.q)[r * p.head_size + d]);
}
__device__ inline int64_t row_of(const BadParams& p, int32_t s, int32_t i, int32_t h) {
  return (int64_t(s) * p.q_len + i) * p.num_q_heads + h;
}

/// Keys [t0, t1) of sequence s, visible up to `visible_to`, for query row r (zero query when
/// `zero_q`), query head h, KV head hk, at position pos.
__device__ void attend(const BadParams& p, RowPartial& part, int64_t r, bool zero_q, int32_t s, int32_t h,
                       int32_t hk, int32_t pos, int32_t visible_to, int32_t t0, int32_t t1) {
  part = RowPartial::empty();
  const int32_t lo = t0 > p.lt.first_visible(pos) ? t0 : p.lt.first_visible(pos);
  const int32_t hi = t1 < visible_to + 1 ? t1 : visible_to + 1;
  for (int32_t t = lo; t < hi; ++t) {
    const int32_t blk = p.K.block_of(s, t), tok = p.K.slot_of(t);
    float dot = 0.f;
    for (int32_t d = 0; d < p.head_size; ++d)
      dot += (zero_q ? 0.f : load_q(p, r, d)) * load_kv(p, p.k_cache, p.K(s, t, hk, d));
    const float x = p.lt(dot * p.k_scales[p.sl(blk, hk, tok)], h, t, pos);
    const MergeWeights w = merge_weights(part.m, x);
    const float vs = p.v_scales[p.sl(blk, hk, tok)];
    for (int32_t d = 0; d < p.head_size; ++d)
      part.o[d] = part.o[d] * w.wa + load_kv(p, p.v_cache, p.V(s, t, hk, d)) * vs * w.wb;
    part.l = part.l * w.wa + w.wb;
    part.m = w.m;
  }
}

__device__ void write_row(const BadParams& p, int64_t r, int32_t h, RowPartial& part) {
  if (p.sinks) part.merge(RowPartial::sink(p.sinks[h]));
  for (int32_t d = 0; d < p.head_size; ++d)
    static_cast<uint16_t*>(p.out)[r * p.head_size + d] = uint16_t(codec::encode(p.qt, part.normalised(d)));
  if (p.lse) p.lse[r] = part.lse();
}

// Stage 2 adds the partitions' o and l without rescaling them to a common max.
__global__ void merge_without_rescale_kernel(const BadParams p) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= int64_t(p.num_seqs) * p.q_len * p.num_q_heads) return;
  const int32_t h = int32_t(r % p.num_q_heads), i = int32_t((r / p.num_q_heads) % p.q_len);
  const int32_t s = int32_t(r / (int64_t(p.q_len) * p.num_q_heads));
  const int32_t ctx = p.context_lens[s], pos = query_position(ctx, p.q_len, i);
  RowPartial total = RowPartial::empty(), part;
  for (int32_t t0 = 0; t0 < ctx; t0 += p.partition) {
    attend(p, part, r, false, s, h, h / p.gqa, pos, pos, t0, t0 + p.partition < ctx ? t0 + p.partition : ctx);
    if (part.l == 0.f) continue;
    for (int32_t d = 0; d < p.head_size; ++d) total.o[d] += part.o[d];
    total.l += part.l;
    total.m = total.m > part.m ? total.m : part.m;
  }
  write_row(p, r, h, total);
}

// Every MTP query token sees the keys of the later query tokens.
__global__ void causal_mask_ignored_kernel(const BadParams p) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= int64_t(p.num_seqs) * p.q_len * p.num_q_heads) return;
  const int32_t h = int32_t(r % p.num_q_heads), i = int32_t((r / p.num_q_heads) % p.q_len);
  const int32_t s = int32_t(r / (int64_t(p.q_len) * p.num_q_heads));
  const int32_t ctx = p.context_lens[s], pos = query_position(ctx, p.q_len, i);
  RowPartial part;
  attend(p, part, r, false, s, h, h / p.gqa, pos, ctx - 1, 0, ctx);
  write_row(p, r, h, part);
}

// One thread per (sequence, query token, KV head) runs the padded tile in order: the padded
// rows (zero queries) are written after the real ones, over head g % G of the group.
__global__ void padded_heads_written_kernel(const BadParams p) {
  const int64_t w = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (w >= int64_t(p.num_seqs) * p.q_len * p.num_kv_heads) return;
  const int32_t hk = int32_t(w % p.num_kv_heads), i = int32_t((w / p.num_kv_heads) % p.q_len);
  const int32_t s = int32_t(w / (int64_t(p.q_len) * p.num_kv_heads));
  const int32_t ctx = p.context_lens[s], pos = query_position(ctx, p.q_len, i);
  RowPartial part;
  for (int32_t g = 0; g < p.gqa_tile; ++g) {
    const int32_t h = hk * p.gqa + g % p.gqa;
    const int64_t r = row_of(p, s, i, h);
    attend(p, part, r, g >= p.gqa, s, h, hk, pos, pos, 0, ctx);
    write_row(p, r, h, part);
  }
}

// softmax as exp(x) / sum exp(x), without subtracting the running max: exp overflows fp32 on the
// logits of outlier channels.
__global__ void max_not_subtracted_kernel(const BadParams p) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= int64_t(p.num_seqs) * p.q_len * p.num_q_heads) return;
  const int32_t h = int32_t(r % p.num_q_heads), i = int32_t((r / p.num_q_heads) % p.q_len);
  const int32_t s = int32_t(r / (int64_t(p.q_len) * p.num_q_heads)), hk = h / p.gqa;
  const int32_t ctx = p.context_lens[s], pos = query_position(ctx, p.q_len, i);
  RowPartial part = RowPartial::empty();
  part.m = 0.f;  // every weight taken against 0 instead of the row's maximum
  const int32_t lo = p.lt.first_visible(pos) > 0 ? p.lt.first_visible(pos) : 0;
  for (int32_t t = lo; t <= pos; ++t) {
    const int32_t blk = p.K.block_of(s, t), tok = p.K.slot_of(t);
    float dot = 0.f;
    for (int32_t d = 0; d < p.head_size; ++d) dot += load_q(p, r, d) * load_kv(p, p.k_cache, p.K(s, t, hk, d));
    const float w = expf(p.lt(dot * p.k_scales[p.sl(blk, hk, tok)], h, t, pos));
    const float vs = p.v_scales[p.sl(blk, hk, tok)];
    part.l += w;
    for (int32_t d = 0; d < p.head_size; ++d) part.o[d] += w * load_kv(p, p.v_cache, p.V(s, t, hk, d)) * vs;
  }
  if (p.sinks) part.l += expf(p.sinks[h]);
  for (int32_t d = 0; d < p.head_size; ++d)
    static_cast<uint16_t*>(p.out)[r * p.head_size + d] = uint16_t(codec::encode(p.qt, part.normalised(d)));
  if (p.lse) p.lse[r] = part.lse();
}

thread_local std::string t_error;
const char* bad_last_error(const pacheck_kernel*) { return t_error.c_str(); }

int bad_launch(const pacheck_kernel* self, const pacheck_problem* pr, const pacheck_buffers* b, void*) {
  const Bug bug = *static_cast<const Bug*>(self->user_data);
  const pacheck_problem& pp = *pr;
  if (pp.head_size > kMaxHead || (pp.q_dtype != PACHECK_DTYPE_BF16 && pp.q_dtype != PACHECK_DTYPE_FP16)) {
    t_error = "known-bad kernel: head_size <= 256 and a 16-bit q dtype only";
    return PACHECK_NOT_SUPPORTED;
  }
  if (auto e = kv_layouts_error(pp)) {
    t_error = *e;
    return PACHECK_NOT_SUPPORTED;
  }
  BadParams p;
  p.q = b->q;
  p.out = b->out;
  p.lse = b->lse;
  p.k_cache = b->k_cache;
  p.v_cache = b->v_cache;
  p.k_scales = b->k_scales;
  p.v_scales = b->v_scales;
  p.sinks = b->sinks;
  const KvLayouts L = kv_layouts(pp);
  p.K = {L.k, b->block_tables, pp.max_blocks_per_seq};
  p.V = {L.v, b->block_tables, pp.max_blocks_per_seq};
  p.context_lens = b->context_lens;
  p.sl = L.scale;
  p.lt = make_logit_transform(pp.softmax_scale, pp.logit_softcap, pp.sliding_window, b->alibi_slopes);
  p.qt = DType(pp.q_dtype);
  p.kv = DType(pp.kv_dtype);
  p.num_seqs = pp.num_seqs;
  p.q_len = pp.q_len;
  p.num_q_heads = pp.num_q_heads;
  p.num_kv_heads = pp.num_kv_heads;
  p.head_size = pp.head_size;
  p.gqa = pp.num_q_heads / pp.num_kv_heads;
  p.gqa_tile = p.gqa;
  for (uint32_t j = 0; j < builtin::kAsmCapability.num_gqa_tiles; ++j)  // the smallest tile >= G
    if (p.gqa <= builtin::kAsmTiles[j]) {
      p.gqa_tile = builtin::kAsmTiles[j];
      break;
    }
  p.partition = pp.partition_size > 0 ? pp.partition_size : 256;
  const int64_t threads = bug == Bug::padded_heads_written ? int64_t(p.num_seqs) * p.q_len * p.num_kv_heads
                                                           : int64_t(p.num_seqs) * p.q_len * p.num_q_heads;
  const dim3 grid(unsigned((threads + kThreads - 1) / kThreads));
  switch (bug) {
    case Bug::merge_without_rescale:
      hipLaunchKernelGGL(merge_without_rescale_kernel, grid, dim3(kThreads), 0, 0, p);
      break;
    case Bug::causal_mask_ignored:
      hipLaunchKernelGGL(causal_mask_ignored_kernel, grid, dim3(kThreads), 0, 0, p);
      break;
    case Bug::padded_heads_written:
      hipLaunchKernelGGL(padded_heads_written_kernel, grid, dim3(kThreads), 0, 0, p);
      break;
    case Bug::max_not_subtracted:
      hipLaunchKernelGGL(max_not_subtracted_kernel, grid, dim3(kThreads), 0, 0, p);
      break;
  }
  const hipError_t e = hipGetLastError();
  if (e != hipSuccess) {
    t_error = std::string("known-bad kernel launch failed: ") + hipGetErrorString(e);
    return PACHECK_ERROR;
  }
  return PACHECK_OK;
}

pacheck_kernel make_bad(const char* name, const Bug& bug, const pacheck_capability* cap, const char* provenance,
                        const pacheck_numerics* numerics = &builtin::kMfmaNumerics) {
  pacheck_kernel k{};
  k.struct_size = sizeof k;
  k.abi_version = PACHECK_KERNEL_ABI_VERSION;
  k.name = name;
  k.version = "known-bad";
  k.provenance = provenance;
  k.memory = PACHECK_MEMORY_DEVICE;
  k.capability = cap;
  k.numerics = numerics;
  k.user_data = const_cast<Bug*>(&bug);
  k.launch = bad_launch;
  k.last_error = bad_last_error;
  return k;
}

const Bug kMerge = Bug::merge_without_rescale, kCausal = Bug::causal_mask_ignored, kPadded = Bug::padded_heads_written,
          kNoMax = Bug::max_not_subtracted;

}  // namespace

std::vector<KnownBad> known_bad_gpu() {
  static const pacheck_kernel merge = make_bad("hip", kMerge, &builtin::kHipCapability,
      "pacheck known-bad GPU kernel merge_without_rescale (testing/known_bad/known_bad_gpu.hip), " PA_GPU_VENDOR);
  static const pacheck_kernel causal = make_bad("hip", kCausal, &builtin::kHipCapability,
      "pacheck known-bad GPU kernel causal_mask_ignored (testing/known_bad/known_bad_gpu.hip), " PA_GPU_VENDOR);
  static const pacheck_kernel padded = make_bad("asm", kPadded, &builtin::kAsmCapability,
      "pacheck known-bad GPU kernel padded_heads_written (testing/known_bad/known_bad_gpu.hip), " PA_GPU_VENDOR);
  static const pacheck_kernel nomax = make_bad("v1", kNoMax, &builtin::kV1Capability,
      "pacheck known-bad GPU kernel max_not_subtracted (testing/known_bad/known_bad_gpu.hip), " PA_GPU_VENDOR,
      &builtin::kV1Numerics);
  return {{"merge_without_rescale", "split-K stage 2 adds partitions without rescaling to a common max", &merge},
          {"causal_mask_ignored", "MTP: query tokens see the keys of later query tokens", &causal},
          {"padded_heads_written", "asm GQA tile padding: padded rows written over real heads g % G", &padded},
          {"max_not_subtracted", "softmax without the running-max subtraction: exp overflows on outlier logits", &nomax}};
}

std::vector<const pacheck_kernel*> known_bad_gpu_kernels() {
  std::vector<const pacheck_kernel*> v;
  for (const KnownBad& k : known_bad_gpu()) v.push_back(k.kernel);
  return v;
}

}  // namespace pa
