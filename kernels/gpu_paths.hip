// The GPU backend of kernels/paths.hpp: device discovery, guarded device buffers (ggml's guard
// regions: canary bytes around every buffer, checked after each launch) and run_gpu.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "kernels/gpu_runtime.hpp"
#include "core/mutants.hpp"
#include "kernels/cache_write_job.hpp"
#include "kernels/launch.hpp"
#include "kernels/paths.hpp"

namespace pa {

namespace {

constexpr size_t kGuardBytes = 256;
constexpr uint8_t kCanary = 0xA5;

/// Device allocations with a canary region before and after each buffer (the tail includes the
/// rounding slack, which no kernel may touch either).
class GuardedBuffers {
 public:
  ~GuardedBuffers() {
    for (auto& b : bufs_) (void)hipFree(b.base);
  }
  /// Allocates `bytes`, fills the guards with the canary and the body with `init` (or `fill`).
  void* alloc(const std::string& name, size_t bytes, const void* init = nullptr, int fill = 0) {
    const size_t body = (bytes + kGuardBytes - 1) / kGuardBytes * kGuardBytes;
    Buf b{name, nullptr, bytes, 2 * kGuardBytes + body};
    if (hipMalloc(reinterpret_cast<void**>(&b.base), b.total) != hipSuccess) {
      error_ = "hipMalloc of " + name + " (" + std::to_string(bytes) + " bytes) failed";
      return nullptr;
    }
    bufs_.push_back(b);
    (void)hipMemset(b.base, kCanary, b.total);
    if (init) (void)hipMemcpy(b.base + kGuardBytes, init, bytes, hipMemcpyHostToDevice);
    else (void)hipMemset(b.base + kGuardBytes, fill, bytes);
    return b.base + kGuardBytes;
  }
  template <class T>
  T* upload(const std::string& name, const std::vector<T>& v) {
    return static_cast<T*>(alloc(name, v.size() * sizeof(T), v.data()));
  }
  /// "" when every guard holds its canary, else the first corrupted buffer and where.
  std::string check() const {
    std::vector<uint8_t> host;
    for (const auto& b : bufs_) {
      host.resize(b.total);
      (void)hipMemcpy(host.data(), b.base, b.total, hipMemcpyDeviceToHost);
      for (size_t i = 0; i < b.total; ++i) {
        const bool guard = i < kGuardBytes || i >= kGuardBytes + b.bytes;
        if (guard && host[i] != kCanary)
          return "guard of buffer '" + b.name + "' corrupted at byte " +
                 std::to_string(int64_t(i) - int64_t(kGuardBytes)) + " (buffer is " + std::to_string(b.bytes) + " bytes)";
      }
    }
    return "";
  }
  const std::string& error() const { return error_; }

 private:
  struct Buf {
    std::string name;
    uint8_t* base;
    size_t bytes, total;
  };
  std::vector<Buf> bufs_;
  std::string error_;
};

std::string hip_error(const char* what, hipError_t e) { return std::string(what) + ": " + hipGetErrorString(e); }

}  // namespace

bool gpu_available(std::string* why) {
  int n = 0;
  const hipError_t e = hipGetDeviceCount(&n);
  if (e != hipSuccess || n == 0) {
    if (why) *why = std::string("built for ") + PA_GPU_VENDOR + " but no GPU is usable: " +
                    (e != hipSuccess ? hipGetErrorString(e) : "no device");
    return false;
  }
  return true;
}

std::string gpu_runtime_version() {
  int v = 0;
  if (hipRuntimeGetVersion(&v) != hipSuccess) return "n/a";
  return std::string(PA_GPU_VENDOR) + " runtime " + std::to_string(v);
}
std::string gpu_driver_version() {
  int v = 0;
  if (hipDriverGetVersion(&v) != hipSuccess) return "n/a";
  return std::string(PA_GPU_VENDOR) + " driver " + std::to_string(v);
}

Device gpu_device() {
  hipDeviceProp_t prop;
  int dev = 0;
  (void)hipGetDevice(&dev);
  (void)hipGetDeviceProperties(&prop, dev);
  Device d;
  d.name = prop.name;
#if defined(__CUDACC__)
  d.arch = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
  d.native_fp8 = DType::fp8_e4m3fn;
#else
  d.arch = prop.gcnArchName;
  // MI300 (gfx94x) decodes e4m3fnuz; gfx950 and later the OCP e4m3fn.
  d.native_fp8 = d.arch.rfind("gfx94", 0) == 0 ? DType::fp8_e4m3fnuz : DType::fp8_e4m3fn;
#endif
  d.cu_count = prop.multiProcessorCount;
  d.warp_size = prop.warpSize;
  return d;
}

namespace {
PathOutput run_on_gpu(PathId path, const Inputs& in, const PhysicalKv& kv, const Device& dev,
                      bool reference) {
  PathOutput r;
  if (reference && in.c.head_size > 256) {
    r.status = Status::NotSupported;
    r.reason = "gpu reference: head_size above 256";
    return r;
  }
  if (auto why = reference ? std::optional<std::string>{} : decline_reason(path, in.c, dev)) {
    r.status = Status::NotSupported;
    r.reason = std::string(to_string(path)) + ": " + *why;
    return r;
  }
  std::string why;
  if (!gpu_available(&why)) {
    r.status = Status::Skipped;
    r.reason = why;
    return r;
  }
  const Case& c = in.c;
  const int64_t rows = int64_t(c.num_seqs) * c.q_len * c.num_q_heads;
  GuardedBuffers g;
  gpu::AttentionParams p;
  p.q = g.upload("q", in.q_codes);
  p.k_cache = g.upload("k_cache", kv.k_cache);
  p.v_cache = g.upload("v_cache", kv.v_cache);
  p.k_scales = g.upload("k_scales", kv.k_scales);
  p.v_scales = g.upload("v_scales", kv.v_scales);
  p.block_tables = g.upload("block_tables", in.block_tables);
  p.context_lens = g.upload("context_lens", in.context_lens);
  p.sinks = in.sinks.empty() ? nullptr : g.upload("sinks", in.sinks);
  const float* alibi = in.alibi_slopes.empty() ? nullptr : g.upload("alibi_slopes", in.alibi_slopes);
  p.k_layout = kv.k_layout;
  p.v_layout = kv.v_layout;
  p.scale_layout = kv.scale_layout;
  p.lt = make_logit_transform(c.effective_softmax_scale(), c.logit_softcap, c.sliding_window, alibi);
  p.q_dtype = c.q_dtype;
  p.kv_dtype = c.kv_dtype;
#ifdef PACHECK_MUTANTS
  // Planted bugs of the GPU path's host side (test-only build, core/mutants.hpp); the device-side
  // ones read p.mutant in attention.hip. The GPU reference kernel is never mutated.
  if (!reference) {
    p.mutant = int(active_mutant());
    if (PA_MUTANT(dense_page_stride)) p.k_layout.page_stride = p.v_layout.page_stride = p.k_layout.size();
    if (PA_MUTANT(v_layout_index)) {
      const KvLayout wrong = mutant_v_layout(c.kv_layout);
      p.v_layout = make_page_layout(wrong, KvTensor::value, c.num_kv_heads, c.block_size, c.head_size,
                                    dtype_bytes(c.kv_dtype), p.v_layout.page_stride);
    }
    if (PA_MUTANT(fp8_wrong_flavour) && is_fp8(c.kv_dtype))
      p.kv_dtype = c.kv_dtype == DType::fp8_e4m3fn ? DType::fp8_e4m3fnuz : DType::fp8_e4m3fn;
    if (PA_MUTANT(drop_custom_scale) || PA_MUTANT(drop_softcap) || PA_MUTANT(drop_window))
      p.lt = make_logit_transform(PA_MUTANT(drop_custom_scale) ? 1.0 / std::sqrt(double(c.head_size))
                                                               : c.effective_softmax_scale(),
                                  PA_MUTANT(drop_softcap) ? 0.0 : c.logit_softcap,
                                  PA_MUTANT(drop_window) ? 0 : c.sliding_window, alibi);
    if (PA_MUTANT(drop_sinks)) p.sinks = nullptr;
  }
#endif
  p.num_seqs = c.num_seqs;
  p.q_len = c.q_len;
  p.num_q_heads = c.num_q_heads;
  p.num_kv_heads = c.num_kv_heads;
  p.head_size = c.head_size;
  p.block_size = c.block_size;
  p.max_blocks = in.max_blocks_per_seq;
  p.max_context = c.max_context();
  p.gqa = c.gqa();
  p.gqa_tile = path == PathId::asm_ ? padded_gqa(capability(path), p.gqa) : p.gqa;
  p.round_p = path != PathId::v1;
  float* scratch = nullptr;
  if (reference) {
    p.round_p = false;
    p.gqa_tile = p.gqa;
    scratch = static_cast<float*>(g.alloc("scratch", size_t(rows * p.max_context) * 4));
  } else if (path == PathId::hip) {
    p.partition = c.partition_size;
    p.num_partitions = (p.max_context + p.partition - 1) / p.partition;
    const int64_t ws = rows * p.num_partitions;
    p.max_logits = static_cast<float*>(g.alloc("max_logits", size_t(ws) * 4));
    p.exp_sums = static_cast<float*>(g.alloc("exp_sums", size_t(ws) * 4));
    p.tmp_out = static_cast<float*>(g.alloc("tmp_out", size_t(ws * c.head_size) * 4));
  }
  // Outputs start as NaN (0xFF.. bytes) so an element the kernel forgets to write fails.
  p.out = g.alloc("out", size_t(rows * c.head_size) * 2, nullptr, 0xFF);
  p.lse = static_cast<float*>(g.alloc("lse", size_t(rows) * 4, nullptr, 0xFF));
  if (!g.error().empty()) {
    r.status = Status::Fail;
    r.reason = g.error();
    return r;
  }
  hipEvent_t start, stop;
  (void)hipEventCreate(&start);
  (void)hipEventCreate(&stop);
  (void)hipEventRecord(start, 0);
  const gpu::LaunchStatus ls = reference ? gpu::launch_reference(p, scratch) : gpu::launch_attention(p);
  (void)hipEventRecord(stop, 0);
  const hipError_t se = hipEventSynchronize(stop);
  float ms = 0;
  (void)hipEventElapsedTime(&ms, start, stop);
  (void)hipEventDestroy(start);
  (void)hipEventDestroy(stop);
  r.elapsed_ms = ms;
  if (!ls.ok() || se != hipSuccess) {
    r.status = Status::Fail;
    r.reason = !ls.ok() ? ls.error : hip_error("kernel execution", se);
    return r;
  }
  if (auto bad = g.check(); !bad.empty()) {
    r.status = Status::Fail;
    r.reason = bad;
    return r;
  }
  std::vector<uint16_t> out(size_t(rows * c.head_size));
  r.lse.resize(size_t(rows));
  (void)hipMemcpy(out.data(), p.out, out.size() * 2, hipMemcpyDeviceToHost);
  (void)hipMemcpy(r.lse.data(), p.lse, r.lse.size() * 4, hipMemcpyDeviceToHost);
  r.out.resize(out.size());
  for (size_t i = 0; i < out.size(); ++i) r.out[i] = codec::decode(c.q_dtype, out[i]);
  return r;
}
}  // namespace

PathOutput run_gpu(PathId path, const Inputs& in, const PhysicalKv& kv, const Device& dev) {
  return run_on_gpu(path, in, kv, dev, false);
}
PathOutput run_gpu_reference(const Inputs& in, const PhysicalKv& kv) {
  return run_on_gpu(PathId::v1, in, kv, Device{}, true);
}

std::string gpu_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out) {
  std::string why;
  if (!gpu_available(&why)) return why;
  const Case& c = in.c;
  const CacheWriteJob job = prepare_cache_write(in, skip, out);
  const int64_t T = job.tokens;
  const int32_t H = c.num_kv_heads, D = c.head_size;
  GuardedBuffers g;
  gpu::CacheWriteParams p;
  p.key = g.upload("key", job.key);
  p.value = g.upload("value", job.value);
  p.slot_mapping = g.upload("slot_mapping", job.slots);
  p.k_cache = g.upload("k_cache", out.k_cache);
  p.v_cache = g.upload("v_cache", out.v_cache);
  p.k_scales = g.upload("k_scales", out.k_scales);
  p.v_scales = g.upload("v_scales", out.v_scales);
  p.k_layout = out.k_layout;
  p.v_layout = out.v_layout;
  p.scale_layout = out.scale_layout;
  p.kv_dtype = c.kv_dtype;
  p.num_tokens = int32_t(T);
  p.num_kv_heads = H;
  p.head_size = D;
  p.block_size = c.block_size;
  if (!g.error().empty()) return g.error();
  const gpu::LaunchStatus ls = gpu::launch_reshape_and_cache(p);
  if (!ls.ok()) return ls.error;
  if (const hipError_t e = hipDeviceSynchronize(); e != hipSuccess) return hip_error("reshape_and_cache", e);
  if (auto bad = g.check(); !bad.empty()) return bad;
  (void)hipMemcpy(out.k_cache.data(), p.k_cache, out.k_cache.size(), hipMemcpyDeviceToHost);
  (void)hipMemcpy(out.v_cache.data(), p.v_cache, out.v_cache.size(), hipMemcpyDeviceToHost);
  (void)hipMemcpy(out.k_scales.data(), p.k_scales, out.k_scales.size() * 4, hipMemcpyDeviceToHost);
  (void)hipMemcpy(out.v_scales.data(), p.v_scales, out.v_scales.size() * 4, hipMemcpyDeviceToHost);
  return "";
}

}  // namespace pa
