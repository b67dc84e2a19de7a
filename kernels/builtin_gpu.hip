// pacheck's own GPU kernels as descriptors (kernels/builtin.hpp's factory, the same declarations as
// the host twins), and the GPU cache writer behind gpu_write_cache. The kernels themselves are in
// kernels/attention.hip and kernels/cache_writer.hip.
#include <array>
#include <string>
#include <vector>

#include "core/gpu_runtime.hpp"
#include "core/problem.hpp"
#include "kernels/builtin.hpp"
#include "kernels/cache_write_job.hpp"
#include "kernels/cache_writer.hpp"
#include "kernels/common/split_plan.hpp"
#include "kernels/device_buffers.hpp"
#include "kernels/launch.hpp"

namespace pa {

namespace {

thread_local std::string t_gpu_error;
const char* gpu_last_error(const pacheck_kernel*) { return t_gpu_error.c_str(); }

int gpu_launch(const pacheck_kernel* self, const pacheck_problem* pr, const pacheck_buffers* b, void*) {
  const BuiltinPath path = builtin_path(self);
  const pacheck_problem& p = *pr;
  if (auto e = kv_layouts_error(p)) {
    t_gpu_error = *e;
    return PACHECK_NOT_SUPPORTED;
  }
  // The ragged family reads the minor-2 buffers; the classic paths are never offered a case that
  // needs them (their capability), so they keep reading q_len and block_tables as they always did.
  const bool unified = reads_ragged_batch(path);
  const bool csr = unified && p.page_table == PACHECK_TABLE_CSR;
  if (unified && !b->cu_seqlens_q && p.q_len < 1) {
    t_gpu_error = "a ragged problem (q_len 0) without cu_seqlens_q";
    return PACHECK_ERROR;
  }
  if (csr && (!b->kv_indptr || !b->kv_indices || !b->kv_last_page_len)) {
    t_gpu_error = "page_table=CSR without kv_indptr, kv_indices and kv_last_page_len";
    return PACHECK_ERROR;
  }
  const KvLayouts L = kv_layouts(p);
  gpu::AttentionParams a;
  a.q = b->q;
  a.k_cache = b->k_cache;
  a.v_cache = b->v_cache;
  a.k_scales = b->k_scales;
  a.v_scales = b->v_scales;
  a.block_tables = b->block_tables;
  a.context_lens = b->context_lens;
  a.sinks = b->sinks;
  if (unified) a.cu_seqlens_q = b->cu_seqlens_q;
  if (csr) a.csr = {b->kv_indptr, b->kv_indices, b->kv_last_page_len, p.block_size};
  a.k_layout = L.k;
  a.v_layout = L.v;
  a.scale_layout = L.scale;
  a.lt = make_logit_transform(p.softmax_scale, p.logit_softcap, p.sliding_window, b->alibi_slopes);
  a.q_dtype = DType(p.q_dtype);
  a.kv_dtype = DType(p.kv_dtype);
  a.num_seqs = p.num_seqs;
  a.q_len = unified ? max_q_len(p) : p.q_len;
  a.total_q = unified ? int32_t(total_q(p)) : 0;
  a.num_q_heads = p.num_q_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.head_size = p.head_size;
  a.head_size_v = head_size_v(p);
  a.block_size = p.block_size;
  a.max_blocks = p.max_blocks_per_seq;
  a.max_context = p.max_context;
  a.gqa = p.num_q_heads / p.num_kv_heads;
  a.gqa_tile = pads_gqa(path) ? padded_gqa(capability_from_abi(self->capability, "built-in"), a.gqa) : a.gqa;
  a.round_p = rounds_p(path);  // v1, unified*, mla: P stays fp32
  a.k_from_v = k_from_v(KvLayout(p.kv_layout), a.head_size_v);
  a.out = b->out;
  a.lse = b->lse;
  if (splits_context(path)) {
    const SplitPlan plan = split_plan(p);
    a.partition = plan.partition;
    a.num_partitions = plan.num_partitions;
    a.max_logits = plan.max_logits(b->workspace);
    a.exp_sums = plan.exp_sums(b->workspace);
    a.tmp_out = plan.tmp_out(b->workspace);
  }
  const gpu::LaunchStatus ls = gpu::launch_attention(a);
  if (!ls.ok()) {
    t_gpu_error = ls.error;
    return PACHECK_ERROR;
  }
  return PACHECK_OK;
}

}  // namespace

std::vector<const pacheck_kernel*> gpu_kernel_descriptors() {
  static const auto kGpu = [] {
    static const char* kProv = "pacheck GPU kernel (kernels/attention.hip), built for " PA_GPU_VENDOR;
    std::array<pacheck_kernel, kBuiltinCount> k{};
    for (size_t i = 0; i < k.size(); ++i)
      k[i] = builtin_descriptor(builtin_specs()[i], PACHECK_MEMORY_DEVICE, gpu_launch, gpu_last_error, kProv);
    return k;
  }();
  std::vector<const pacheck_kernel*> out;
  for (const pacheck_kernel& k : kGpu) out.push_back(&k);
  return out;
}

std::string gpu_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out) {
  std::string why;
  if (!gpu_available(&why)) return why;
  try {
    const Case& c = in.c;
    if (is_mla(c.kv_layout))
      return std::string("reshape_and_cache: kv_layout=") + to_string(c.kv_layout) +
             " is a latent (MLA) cache, which this writer does not write";
    const CacheWriteJob job = prepare_cache_write(in, skip, out);
    GuardedBuffers g;
    gpu::CacheWriteParams p;
    p.key = static_cast<const float*>(g.alloc("key", job.key.size() * 4, job.key.data()));
    p.value = static_cast<const float*>(g.alloc("value", job.value.size() * 4, job.value.data()));
    p.slot_mapping = static_cast<const int64_t*>(g.alloc("slot_mapping", job.slots.size() * 8, job.slots.data()));
    p.k_cache = g.alloc("k_cache", out.k_cache.size(), out.k_cache.data());
    p.v_cache = g.alloc("v_cache", out.v_cache.size(), out.v_cache.data());
    p.k_scales = static_cast<float*>(g.alloc("k_scales", out.k_scales.size() * 4, out.k_scales.data()));
    p.v_scales = static_cast<float*>(g.alloc("v_scales", out.v_scales.size() * 4, out.v_scales.data()));
    p.k_layout = out.k_layout;
    p.v_layout = out.v_layout;
    p.scale_layout = out.scale_layout;
    p.kv_dtype = c.kv_dtype;
    p.num_tokens = int32_t(job.tokens);
    p.num_kv_heads = c.num_kv_heads;
    p.head_size = c.head_size;
    p.head_size_v = c.dv();
    p.block_size = c.block_size;
    g.arm();
    const gpu::LaunchStatus ls = gpu::launch_reshape_and_cache(p);
    if (!ls.ok()) return ls.error;
    PA_GPU_CHECK(hipDeviceSynchronize());
    if (auto bad = g.overrun(); !bad.empty()) return bad;
    PA_GPU_CHECK(hipMemcpy(out.k_cache.data(), p.k_cache, out.k_cache.size(), hipMemcpyDeviceToHost));
    PA_GPU_CHECK(hipMemcpy(out.v_cache.data(), p.v_cache, out.v_cache.size(), hipMemcpyDeviceToHost));
    PA_GPU_CHECK(hipMemcpy(out.k_scales.data(), p.k_scales, out.k_scales.size() * 4, hipMemcpyDeviceToHost));
    PA_GPU_CHECK(hipMemcpy(out.v_scales.data(), p.v_scales, out.v_scales.size() * 4, hipMemcpyDeviceToHost));
  } catch (const gpu::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace pa
