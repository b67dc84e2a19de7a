// The GPU backend: device discovery, guarded device buffers (ggml's guard regions: canary bytes
// around every buffer, checked after each launch), the marshalling of any device-memory kernel
// (built-in or plug-in) and the descriptors of pacheck's own GPU kernels. Every runtime call is
// checked; a failure becomes an error naming the call.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/device_pool.hpp"
#include "kernels/builtin_capability.hpp"
#include "kernels/cache_write_job.hpp"
#include "kernels/cache_writer.hpp"
#include "kernels/common/split_plan.hpp"
#include "core/gpu_runtime.hpp"
#include "kernels/kernel.hpp"
#include "kernels/launch.hpp"

namespace pa {

namespace {

constexpr size_t kGuardBytes = 256;
constexpr uint8_t kCanary = 0xA5;

/// Thrown inside this file for a failed runtime call; caught at each entry point.
struct GpuError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(hipError_t e, const char* call) {
  if (e != hipSuccess) throw GpuError(std::string(call) + " failed: " + hipGetErrorString(e));
}
#define PA_GPU_CHECK(call) check((call), #call)
// Release calls in destructors and after the result is read cannot throw; a failure is still
// reported, on stderr, naming the call.
void best_effort(hipError_t e, const char* call) {
  if (e != hipSuccess) std::fprintf(stderr, "pacheck: %s failed: %s\n", call, hipGetErrorString(e));
}
#define PA_GPU_RELEASE(call) best_effort((call), #call)

// Guard regions, up to kRegionBatch per launch (a kernel parameter, so the list needs no copy).
constexpr int kRegionBatch = 32;
struct Regions {
  uint8_t* p[kRegionBatch];
  uint64_t n[kRegionBatch];
  unsigned long long* first;  // [kRegionBatch]: the first byte of region r that is not the canary
};
// blockIdx.y = region: fills it with the canary and marks it clean (first = all ones).
__global__ void arm_regions(Regions r) {
  uint8_t* p = r.p[blockIdx.y];
  const uint64_t n = r.n[blockIdx.y];
  if (blockIdx.x == 0 && threadIdx.x == 0) r.first[blockIdx.y] = ~0ull;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x)
    p[i] = kCanary;
}
// blockIdx.y = region: the first byte that is not the canary, into first[region] (atomicMin).
__global__ void check_regions(Regions r) {
  const uint8_t* p = r.p[blockIdx.y];
  const uint64_t n = r.n[blockIdx.y];
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x)
    if (p[i] != kCanary) atomicMin(&r.first[blockIdx.y], static_cast<unsigned long long>(i));
}

/// Device allocations with a canary region before and after each buffer (the tail includes the
/// rounding slack, which no kernel may touch either), from the device pool (core/device_pool.hpp).
/// The guards of every buffer are written by one launch (arm(), before the kernel runs) and
/// checked by one launch and one copy back (check_guards()), not two calls per buffer each.
class GuardedBuffers {
 public:
  GuardedBuffers() = default;
  GuardedBuffers(const GuardedBuffers&) = delete;
  GuardedBuffers& operator=(const GuardedBuffers&) = delete;
  ~GuardedBuffers() {
    // A launch that failed half-way may still be running on this thread's stream: wait for it
    // before its buffers can go to another caller.
    PA_GPU_RELEASE(hipStreamSynchronize(0));
    for (auto& b : bufs_) device_give(b.base, b.total);
    if (first_) device_give(first_, first_bytes_);
  }
  /// Allocates `bytes` and fills the body with `init` (host or device memory as `where` says), or
  /// with `fill` when init is null. Its guards are written by arm().
  void* alloc(const std::string& name, size_t bytes, const void* init = nullptr, int fill = 0,
              Memory where = Memory::host) {
    const size_t body = (bytes + kGuardBytes - 1) / kGuardBytes * kGuardBytes;
    Buf b{name, nullptr, bytes, 2 * kGuardBytes + body};
    b.base = static_cast<uint8_t*>(take(b.total, name.c_str()));
    bufs_.push_back(b);
    uint8_t* body_at = b.base + kGuardBytes;
    if (init && bytes)
      PA_GPU_CHECK(hipMemcpyAsync(body_at, init, bytes, where == Memory::device ? hipMemcpyDeviceToDevice
                                                                                : hipMemcpyHostToDevice, 0));
    else if (!init)
      PA_GPU_CHECK(hipMemsetAsync(body_at, fill, bytes, 0));
    return body_at;
  }
  template <class T>
  const T* upload(const std::string& name, View<T> v, Memory where) {
    return v.empty() ? nullptr : static_cast<const T*>(alloc(name, v.size * sizeof(T), v.data, 0, where));
  }
  /// Writes the canary into every guard. @pre every buffer is allocated; call before the launch
  /// (a host source of alloc() must stay alive until the stream is synchronised).
  void arm() {
    const size_t regions = 2 * bufs_.size();
    if (regions == 0) return;
    first_bytes_ = regions * sizeof(unsigned long long);
    first_ = static_cast<unsigned long long*>(take(first_bytes_, "guard check"));
    for_batches([&](const Regions& r, unsigned count) {
      hipLaunchKernelGGL(arm_regions, dim3(4, count), dim3(256), 0, 0, r);
    });
    PA_GPU_CHECK(hipGetLastError());
  }
  /// "" when every guard holds its canary, else the first corrupted buffer and where.
  /// @pre arm() was called before the launch
  std::string check_guards() const {
    if (bufs_.empty()) return "";
    for_batches([&](const Regions& r, unsigned count) {
      hipLaunchKernelGGL(check_regions, dim3(4, count), dim3(256), 0, 0, r);
    });
    PA_GPU_CHECK(hipGetLastError());
    std::vector<unsigned long long> at(2 * bufs_.size());
    PA_GPU_CHECK(hipMemcpy(at.data(), first_, first_bytes_, hipMemcpyDeviceToHost));
    for (size_t i = 0; i < bufs_.size(); ++i) {
      const Buf& b = bufs_[i];
      if (at[2 * i] != ~0ull)
        return "guard of buffer '" + b.name + "' corrupted at byte " + std::to_string(int64_t(at[2 * i]) - int64_t(kGuardBytes)) +
               " (before the buffer, which is " + std::to_string(b.bytes) + " bytes)";
      if (at[2 * i + 1] != ~0ull)
        return "guard of buffer '" + b.name + "' corrupted at byte " + std::to_string(b.bytes + at[2 * i + 1]) +
               " (the buffer is " + std::to_string(b.bytes) + " bytes)";
    }
    return "";
  }

 private:
  struct Buf {
    std::string name;
    uint8_t* base;
    size_t bytes, total;
  };
  static void* take(size_t bytes, const char* what) {
    try {
      return device_take(bytes, what);
    } catch (const std::runtime_error& e) {
      throw GpuError(e.what());
    }
  }
  /// Calls f(regions, count) for the guard regions in batches: region 2i is buffer i's head
  /// guard, 2i + 1 its tail (the slack after the body included).
  template <class F>
  void for_batches(F&& f) const {
    const size_t regions = 2 * bufs_.size();
    for (size_t r0 = 0; r0 < regions; r0 += kRegionBatch) {
      Regions r{};
      r.first = first_ + r0;
      const unsigned count = unsigned(std::min<size_t>(kRegionBatch, regions - r0));
      for (unsigned k = 0; k < count; ++k) {
        const Buf& b = bufs_[(r0 + k) / 2];
        const bool head = (r0 + k) % 2 == 0;
        r.p[k] = head ? b.base : b.base + kGuardBytes + b.bytes;
        r.n[k] = head ? kGuardBytes : b.total - kGuardBytes - b.bytes;
      }
      f(r, count);
    }
  }
  std::vector<Buf> bufs_;
  unsigned long long* first_ = nullptr;
  size_t first_bytes_ = 0;
};

std::string last_error_of(const pacheck_kernel& k) {
  const char* e = k.last_error ? k.last_error(&k) : nullptr;
  return e && *e ? e : "(the kernel gave no last_error)";
}

}  // namespace

bool gpu_available(std::string* why) { return device_inputs_available(why); }

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
  PA_GPU_CHECK(hipGetDevice(&dev));
  PA_GPU_CHECK(hipGetDeviceProperties(&prop, dev));
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

KernelOutput run_on_device(const pacheck_kernel& k, const KernelCall& call) {
  KernelOutput r;
  std::string why;
  if (!gpu_available(&why)) {
    r.status = Status::Skipped;
    r.reason = why;
    return r;
  }
  const pacheck_problem& p = call.problem;
  const int64_t rows = int64_t(p.num_seqs) * p.q_len * p.num_q_heads;
  const DType qt = DType(p.q_dtype);
  try {
    GuardedBuffers g;
    pacheck_buffers b{};
    b.struct_size = sizeof b;
    b.q = g.upload("q", call.q, call.memory);
    b.k_cache = g.upload("k_cache", call.k_cache, call.memory);
    b.v_cache = g.upload("v_cache", call.v_cache, call.memory);
    b.k_scales = g.upload("k_scales", call.k_scales, call.memory);
    b.v_scales = g.upload("v_scales", call.v_scales, call.memory);
    b.block_tables = g.upload("block_tables", call.block_tables, call.memory);
    b.context_lens = g.upload("context_lens", call.context_lens, call.memory);
    b.alibi_slopes = g.upload("alibi_slopes", call.alibi_slopes, call.memory);
    b.sinks = g.upload("sinks", call.sinks, call.memory);
    b.workspace_bytes = k.workspace_bytes ? k.workspace_bytes(&k, &p) : 0;
    b.workspace = b.workspace_bytes ? g.alloc("workspace", size_t(b.workspace_bytes), nullptr, 0xFF) : nullptr;
    // Outputs start as NaN (0xFF.. bytes) so an element the kernel forgets to write fails.
    b.out = g.alloc("out", size_t(rows * p.head_size) * size_t(dtype_bytes(qt)), nullptr, 0xFF);
    b.lse = p.want_lse ? static_cast<float*>(g.alloc("lse", size_t(rows) * 4, nullptr, 0xFF)) : nullptr;
    g.arm();
    hipEvent_t start, stop;
    PA_GPU_CHECK(hipEventCreate(&start));
    PA_GPU_CHECK(hipEventCreate(&stop));
    PA_GPU_CHECK(hipEventRecord(start, 0));
    const int status = k.launch(&k, &p, &b, nullptr);
    PA_GPU_CHECK(hipEventRecord(stop, 0));
    const hipError_t se = hipEventSynchronize(stop);
    float ms = 0;
    if (se == hipSuccess) PA_GPU_CHECK(hipEventElapsedTime(&ms, start, stop));
    PA_GPU_RELEASE(hipEventDestroy(start));
    PA_GPU_RELEASE(hipEventDestroy(stop));
    r.elapsed_ms = ms;
    if (status == PACHECK_NOT_SUPPORTED) {
      r.status = Status::NotSupported;
      r.reason = last_error_of(k);
      return r;
    }
    if (status != PACHECK_OK) {
      r.status = Status::Fail;
      r.metric = "kernel_error";
      r.reason = "launch returned " + std::to_string(status) + ": " + last_error_of(k);
      return r;
    }
    if (se != hipSuccess) {
      r.status = Status::Fail;
      r.metric = "kernel_error";
      r.reason = std::string("kernel execution failed: ") + hipGetErrorString(se);
      return r;
    }
    if (auto bad = g.check_guards(); !bad.empty()) {
      r.status = Status::Fail;
      r.metric = "guard";
      r.reason = bad;
      return r;
    }
    std::vector<uint8_t> out(size_t(rows * p.head_size) * size_t(dtype_bytes(qt)));
    PA_GPU_CHECK(hipMemcpy(out.data(), b.out, out.size(), hipMemcpyDeviceToHost));
    if (b.lse) {
      r.lse.resize(size_t(rows));
      PA_GPU_CHECK(hipMemcpy(r.lse.data(), b.lse, r.lse.size() * 4, hipMemcpyDeviceToHost));
    }
    r.out.resize(size_t(rows * p.head_size));
    for (size_t i = 0; i < r.out.size(); ++i) {
      uint16_t code = 0;
      std::memcpy(&code, out.data() + i * size_t(dtype_bytes(qt)), size_t(dtype_bytes(qt)));
      r.out[i] = codec::decode(qt, code);
    }
  } catch (const GpuError& e) {
    r.status = Status::Fail;
    r.metric = "kernel_error";
    r.reason = e.what();
  }
  return r;
}

// ---- pacheck's own GPU kernels as descriptors -------------------------------------------------------

namespace {

enum class GpuPath { v1, hip, asm_ };

struct GpuState {
  GpuPath path;
  const pacheck_capability* cap;
};

thread_local std::string t_gpu_error;
const char* gpu_last_error(const pacheck_kernel*) { return t_gpu_error.c_str(); }

uint64_t gpu_workspace(const pacheck_kernel* self, const pacheck_problem* p) {
  const auto* st = static_cast<const GpuState*>(self->user_data);
  if (st->path == GpuPath::hip) return uint64_t(split_plan(*p).bytes());
  return 0;
}

int gpu_launch(const pacheck_kernel* self, const pacheck_problem* pr, const pacheck_buffers* b, void*) {
  const auto* st = static_cast<const GpuState*>(self->user_data);
  const pacheck_problem& p = *pr;
  const DType kv = DType(p.kv_dtype);
  const KvLayout kind = KvLayout(p.kv_layout);
  const int32_t eb = dtype_bytes(kv);
  if (auto e = layout_error(kind, p.num_kv_heads, p.block_size, p.head_size, eb)) {
    t_gpu_error = *e;
    return PACHECK_NOT_SUPPORTED;
  }
  gpu::AttentionParams a;
  a.q = b->q;
  a.k_cache = b->k_cache;
  a.v_cache = b->v_cache;
  a.k_scales = b->k_scales;
  a.v_scales = b->v_scales;
  a.block_tables = b->block_tables;
  a.context_lens = b->context_lens;
  a.sinks = b->sinks;
  a.k_layout = make_page_layout(kind, KvTensor::key, p.num_kv_heads, p.block_size, p.head_size, eb, p.page_stride);
  a.v_layout = make_page_layout(kind, KvTensor::value, p.num_kv_heads, p.block_size, p.head_size, eb, p.page_stride);
  a.scale_layout = ScaleLayout{ScaleMode(p.scale_mode), p.num_kv_heads, p.block_size, p.num_blocks};
  a.lt = make_logit_transform(p.softmax_scale, p.logit_softcap, p.sliding_window, b->alibi_slopes);
  a.q_dtype = DType(p.q_dtype);
  a.kv_dtype = kv;
  a.num_seqs = p.num_seqs;
  a.q_len = p.q_len;
  a.num_q_heads = p.num_q_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.head_size = p.head_size;
  a.block_size = p.block_size;
  a.max_blocks = p.max_blocks_per_seq;
  a.max_context = p.max_context;
  a.gqa = p.num_q_heads / p.num_kv_heads;
  a.gqa_tile = st->path == GpuPath::asm_ ? padded_gqa(capability_from_abi(st->cap, "built-in"), a.gqa) : a.gqa;
  a.round_p = st->path == GpuPath::hip || st->path == GpuPath::asm_;
  a.out = b->out;
  a.lse = b->lse;
  if (st->path == GpuPath::hip) {
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

const GpuState kV1{GpuPath::v1, &builtin::kV1Capability};
const GpuState kHip{GpuPath::hip, &builtin::kHipCapability};
const GpuState kAsm{GpuPath::asm_, &builtin::kAsmCapability};

pacheck_kernel make_gpu(const char* name, const GpuState& st, const pacheck_numerics* num, const char* provenance) {
  pacheck_kernel k{};
  k.struct_size = sizeof k;
  k.abi_version = PACHECK_KERNEL_ABI_VERSION;
  k.name = name;
  k.version = "1";
  k.provenance = provenance;
  k.memory = PACHECK_MEMORY_DEVICE;
  k.capability = st.cap;
  k.numerics = num;
  k.user_data = const_cast<GpuState*>(&st);
  k.supports = nullptr;
  k.workspace_bytes = gpu_workspace;
  k.launch = gpu_launch;
  k.last_error = gpu_last_error;
  return k;
}

}  // namespace

std::vector<const pacheck_kernel*> gpu_kernel_descriptors() {
  static const char* kProv = "pacheck GPU kernel (kernels/attention.hip), built for " PA_GPU_VENDOR;
  static const pacheck_kernel kV1K = make_gpu("v1", kV1, &builtin::kV1Numerics, kProv);
  static const pacheck_kernel kHipK = make_gpu("hip", kHip, &builtin::kMfmaNumerics, kProv);
  static const pacheck_kernel kAsmK = make_gpu("asm", kAsm, &builtin::kMfmaNumerics, kProv);
  return {&kV1K, &kHipK, &kAsmK};
}

std::string gpu_write_cache(const Inputs& in, const std::vector<bool>& skip, PhysicalKv& out) {
  std::string why;
  if (!gpu_available(&why)) return why;
  try {
    const Case& c = in.c;
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
    p.block_size = c.block_size;
    g.arm();
    const gpu::LaunchStatus ls = gpu::launch_reshape_and_cache(p);
    if (!ls.ok()) return ls.error;
    PA_GPU_CHECK(hipDeviceSynchronize());
    if (auto bad = g.check_guards(); !bad.empty()) return bad;
    PA_GPU_CHECK(hipMemcpy(out.k_cache.data(), p.k_cache, out.k_cache.size(), hipMemcpyDeviceToHost));
    PA_GPU_CHECK(hipMemcpy(out.v_cache.data(), p.v_cache, out.v_cache.size(), hipMemcpyDeviceToHost));
    PA_GPU_CHECK(hipMemcpy(out.k_scales.data(), p.k_scales, out.k_scales.size() * 4, hipMemcpyDeviceToHost));
    PA_GPU_CHECK(hipMemcpy(out.v_scales.data(), p.v_scales, out.v_scales.size() * 4, hipMemcpyDeviceToHost));
  } catch (const GpuError& e) {
    return e.what();
  }
  return "";
}

}  // namespace pa

// ---- timing (pacheck bench) ---------------------------------------------------------------------

namespace pa {

namespace {

__global__ void fill_codes(uint8_t* p, int64_t bytes, uint32_t seed, int elem_bytes, int is_fp8, int is_int8) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < bytes / elem_bytes;
       i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    if (elem_bytes == 2) {  // bf16 / fp16 codes of magnitude below 1: finite in both formats
      const uint16_t code = uint16_t(0x3000u | (h & 0x8FFFu));
      reinterpret_cast<uint16_t*>(p)[i] = code;
    } else if (is_fp8) {
      p[i] = uint8_t(0x20u | (h & 0x9Fu));  // exponent field away from NaN/Inf in every fp8 flavour
    } else if (is_int8) {
      p[i] = uint8_t(h & 0xFFu);
    } else {
      p[i] = uint8_t(h);
    }
  }
}

__global__ void fill_floats(float* p, int64_t n, float value) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

// A plain streaming read: 16-byte loads, four independent ones in flight per thread (one at a
// time leaves HBM idle between round trips), the sum kept so the loads cannot be elided.
__global__ void stream_read(const uint4* p, int64_t n, uint32_t* sink) {
  uint32_t acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n; i += 4 * stride) {
    const uint4 a = p[i], b = p[i + stride], c = p[i + 2 * stride], d = p[i + 3 * stride];
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < n; i += stride) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) sink[0] = acc;  // practically never: only keeps acc live
}

struct DeviceArena {
  std::vector<void*> ptrs;
  ~DeviceArena() {
    for (void* p : ptrs) PA_GPU_RELEASE(hipFree(p));
  }
  void* alloc(size_t bytes, const char* what) {
    void* p = nullptr;
    const hipError_t e = hipMalloc(&p, std::max<size_t>(bytes, 16));
    if (e != hipSuccess)
      throw GpuError(std::string("hipMalloc of ") + what + " (" + std::to_string(bytes) + " bytes) failed: " + hipGetErrorString(e));
    ptrs.push_back(p);
    return p;
  }
};

void launch_fill(void* p, size_t bytes, uint32_t seed, DType t) {
  const int eb = dtype_bytes(t);
  hipLaunchKernelGGL(fill_codes, dim3(1024), dim3(256), 0, 0, static_cast<uint8_t*>(p), int64_t(bytes), seed, eb,
                     int(is_fp8(t)), int(t == DType::int8));
  PA_GPU_CHECK(hipGetLastError());
}

template <class F>
std::vector<double> time_launches(const TimingOptions& o, int sets, F&& launch) {
  for (int i = 0; i < o.warmup; ++i) launch(i % sets);
  std::vector<hipEvent_t> ev(size_t(2 * o.repetitions));
  for (auto& e : ev) PA_GPU_CHECK(hipEventCreate(&e));
  for (int r = 0; r < o.repetitions; ++r) {
    PA_GPU_CHECK(hipEventRecord(ev[size_t(2 * r)], 0));
    launch((o.warmup + r) % sets);
    PA_GPU_CHECK(hipEventRecord(ev[size_t(2 * r + 1)], 0));
  }
  PA_GPU_CHECK(hipDeviceSynchronize());
  std::vector<double> ms;
  for (int r = 0; r < o.repetitions; ++r) {
    float t = 0;
    PA_GPU_CHECK(hipEventElapsedTime(&t, ev[size_t(2 * r)], ev[size_t(2 * r + 1)]));
    ms.push_back(t);
  }
  for (auto& e : ev) PA_GPU_RELEASE(hipEventDestroy(e));
  return ms;
}

}  // namespace

Timing time_on_device(const pacheck_kernel& k, const KernelCall& call, const TimingOptions& o) {
  Timing t;
  std::string why;
  if (!gpu_available(&why)) {
    t.error = why;
    return t;
  }
  try {
    const pacheck_problem& p = call.problem;
    const DType qt = DType(p.q_dtype), kv = DType(p.kv_dtype);
    const KvLayout kind = KvLayout(p.kv_layout);
    const PageLayout kl = make_page_layout(kind, KvTensor::key, p.num_kv_heads, p.block_size, p.head_size,
                                           dtype_bytes(kv), p.page_stride);
    const ScaleLayout sl{ScaleMode(p.scale_mode), p.num_kv_heads, p.block_size, p.num_blocks};
    const int64_t rows = int64_t(p.num_seqs) * p.q_len * p.num_q_heads;
    const size_t cache_bytes = size_t(kl.cosize(p.num_blocks)) * size_t(dtype_bytes(kv));
    const size_t q_bytes = size_t(rows * p.head_size) * size_t(dtype_bytes(qt));
    const size_t set_bytes = 2 * cache_bytes + q_bytes;
    const int sets = int(std::min<size_t>(64, std::max<size_t>(1, (o.rotate_bytes + set_bytes - 1) / set_bytes)));
    t.input_sets = sets;
    DeviceArena a;
    const auto upload = [&](const void* host, size_t bytes, const char* what) -> void* {
      void* d = a.alloc(bytes, what);
      if (host && bytes) PA_GPU_CHECK(hipMemcpy(d, host, bytes, hipMemcpyHostToDevice));
      return d;
    };
    // Shared by every set: tables, lengths, scales, slopes, sinks, the output and the scratch.
    pacheck_buffers b{};
    b.struct_size = sizeof b;
    b.block_tables = static_cast<const int32_t*>(upload(call.block_tables.data, call.block_tables.size * 4, "block_tables"));
    b.context_lens = static_cast<const int32_t*>(upload(call.context_lens.data, call.context_lens.size * 4, "context_lens"));
    const size_t n_scales = size_t(sl.size());
    float* ks = static_cast<float*>(upload(call.k_scales.empty() ? nullptr : call.k_scales.data, n_scales * 4, "k_scales"));
    float* vs = static_cast<float*>(upload(call.v_scales.empty() ? nullptr : call.v_scales.data, n_scales * 4, "v_scales"));
    if (call.k_scales.empty()) {
      hipLaunchKernelGGL(fill_floats, dim3(256), dim3(256), 0, 0, ks, int64_t(n_scales), 0.5f);
      hipLaunchKernelGGL(fill_floats, dim3(256), dim3(256), 0, 0, vs, int64_t(n_scales), 0.25f);
      PA_GPU_CHECK(hipGetLastError());
    }
    b.k_scales = ks;
    b.v_scales = vs;
    b.alibi_slopes = call.alibi_slopes.empty() ? nullptr
                                               : static_cast<const float*>(upload(call.alibi_slopes.data, call.alibi_slopes.size * 4, "alibi"));
    b.sinks = call.sinks.empty() ? nullptr : static_cast<const float*>(upload(call.sinks.data, call.sinks.size * 4, "sinks"));
    b.out = a.alloc(q_bytes, "out");
    b.lse = p.want_lse ? static_cast<float*>(a.alloc(size_t(rows) * 4, "lse")) : nullptr;
    b.workspace_bytes = k.workspace_bytes ? k.workspace_bytes(&k, &p) : 0;
    b.workspace = b.workspace_bytes ? a.alloc(size_t(b.workspace_bytes), "workspace") : nullptr;
    struct Set {
      const void *q, *k, *v;
    };
    std::vector<Set> in(static_cast<size_t>(sets));
    for (int s = 0; s < sets; ++s) {
      void* q = upload(call.q.empty() ? nullptr : call.q.data, q_bytes, "q");
      void* kc = upload(call.k_cache.empty() ? nullptr : call.k_cache.data, cache_bytes, "k_cache");
      void* vc = upload(call.v_cache.empty() ? nullptr : call.v_cache.data, cache_bytes, "v_cache");
      if (call.q.empty()) launch_fill(q, q_bytes, 17u + uint32_t(s), qt);
      if (call.k_cache.empty()) launch_fill(kc, cache_bytes, 1000u + uint32_t(s), kv);
      if (call.v_cache.empty()) launch_fill(vc, cache_bytes, 2000u + uint32_t(s), kv);
      in[size_t(s)] = {q, kc, vc};
    }
    PA_GPU_CHECK(hipDeviceSynchronize());
    std::string launch_error;
    t.samples_ms = time_launches(o, sets, [&](int s) {
      pacheck_buffers bs = b;
      bs.q = in[size_t(s)].q;
      bs.k_cache = in[size_t(s)].k;
      bs.v_cache = in[size_t(s)].v;
      const int st = k.launch(&k, &p, &bs, nullptr);
      if (st != PACHECK_OK && launch_error.empty()) launch_error = last_error_of(k);
    });
    if (!launch_error.empty()) {
      t.error = launch_error;
      t.samples_ms.clear();
    }
  } catch (const GpuError& e) {
    t.error = e.what();
    t.samples_ms.clear();
  }
  return t;
}

double stream_read_gbs(size_t bytes, const TimingOptions& o, std::string* error) {
  std::string why;
  if (!gpu_available(&why)) {
    if (error) *error = why;
    return 0;
  }
  try {
    bytes = std::max<size_t>(bytes / 16 * 16, 1 << 20);
    const int sets = int(std::min<size_t>(64, std::max<size_t>(1, (o.rotate_bytes + bytes - 1) / bytes)));
    DeviceArena a;
    std::vector<const uint4*> bufs;
    for (int s = 0; s < sets; ++s) {
      void* d = a.alloc(bytes, "stream buffer");
      launch_fill(d, bytes, 77u + uint32_t(s), DType::int8);
      bufs.push_back(static_cast<const uint4*>(d));
    }
    uint32_t* sink = static_cast<uint32_t*>(a.alloc(16, "sink"));
    PA_GPU_CHECK(hipDeviceSynchronize());
    int dev = 0;
    hipDeviceProp_t prop;
    PA_GPU_CHECK(hipGetDevice(&dev));
    PA_GPU_CHECK(hipGetDeviceProperties(&prop, dev));
    const unsigned grid = unsigned(prop.multiProcessorCount) * 8;
    std::vector<double> ms = time_launches(o, sets, [&](int s) {
      hipLaunchKernelGGL(stream_read, dim3(grid), dim3(256), 0, 0, bufs[size_t(s)], int64_t(bytes / 16), sink);
    });
    PA_GPU_CHECK(hipGetLastError());
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    return double(bytes) / (median * 1e6);
  } catch (const GpuError& e) {
    if (error) *error = e.what();
    return 0;
  }
}

}  // namespace pa
