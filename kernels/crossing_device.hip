// The device side of the one crossing (kernels/crossing.hpp): device discovery, the guarded device
// buffers, and the launch of any device-memory descriptor (built-in or plug-in, in process or in a
// worker). Every runtime call is checked; a failure becomes an error naming the call.
#include <algorithm>
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "core/gpu_runtime.hpp"
#include "kernels/crossing.hpp"
#include "kernels/device_buffers.hpp"

namespace pa {

namespace {

// Regions checked on the device, up to kRegionBatch per launch (a kernel parameter, so the list
// needs no copy): a guard holds the canary; an input's copy holds the bytes it was copied from.
constexpr int kRegionBatch = 32;
struct Regions {
  uint8_t* p[kRegionBatch];
  const uint8_t* ref[kRegionBatch];  // null: the canary
  uint64_t n[kRegionBatch];
  unsigned long long* first;  // [kRegionBatch]: the first byte of region r that differs
};
// blockIdx.y = region: fills it with the canary and marks it clean (first = all ones).
__global__ void arm_regions(Regions r) {
  uint8_t* p = r.p[blockIdx.y];
  const uint64_t n = r.n[blockIdx.y];
  if (blockIdx.x == 0 && threadIdx.x == 0) r.first[blockIdx.y] = ~0ull;
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x)
    p[i] = canary(i);
}
// blockIdx.y = region: the first byte that differs from what it must hold, into first[region]
// (atomicMin; first was set to all ones when the guards were armed).
__global__ void check_regions(Regions r) {
  const uint8_t* p = r.p[blockIdx.y];
  const uint8_t* ref = r.ref[blockIdx.y];
  const uint64_t n = r.n[blockIdx.y];
  for (uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x)
    if (p[i] != (ref ? ref[i] : canary(i))) atomicMin(&r.first[blockIdx.y], static_cast<unsigned long long>(i));
}

void* take(size_t bytes, const char* what) {
  try {
    return device_take(bytes, what);
  } catch (const std::runtime_error& e) {
    throw gpu::Error(e.what());
  }
}

using Span = GuardedBuffers::Span;

/// Calls f(regions, count) for `spans` in batches; region r of the whole list reports into
/// first[r].
template <class F>
void for_batches(const std::vector<Span>& spans, unsigned long long* first, F&& f) {
  for (size_t r0 = 0; r0 < spans.size(); r0 += kRegionBatch) {
    Regions r{};
    r.first = first + r0;
    const unsigned count = unsigned(std::min<size_t>(kRegionBatch, spans.size() - r0));
    for (unsigned k = 0; k < count; ++k) {
      r.p[k] = spans[r0 + k].p;
      r.ref[k] = spans[r0 + k].ref;
      r.n[k] = spans[r0 + k].n;
    }
    f(r, count);
  }
}

}  // namespace

GuardedBuffers::~GuardedBuffers() {
  // A launch that failed half-way may still be running on this thread's stream: wait for it
  // before its buffers can go to another caller.
  PA_GPU_RELEASE(hipStreamSynchronize(0));
  for (auto& b : bufs_) device_give(b.base);
  if (first_) device_give(first_);
}

void* GuardedBuffers::alloc(const std::string& name, size_t bytes, const void* init, int fill, Memory where) {
  const size_t body = (bytes + kGuardBytes - 1) / kGuardBytes * kGuardBytes;
  Entry b{name, nullptr, bytes, 2 * kGuardBytes + body, init && bytes ? init : nullptr, where};
  b.base = static_cast<uint8_t*>(take(b.total, name.c_str()));
  bufs_.push_back(b);
  uint8_t* body_at = b.base + kGuardBytes;
  if (init && bytes)
    PA_GPU_CHECK(hipMemcpyAsync(body_at, init, bytes,
                                where == Memory::device ? hipMemcpyDeviceToDevice : hipMemcpyHostToDevice, 0));
  else if (!init)
    PA_GPU_CHECK(hipMemsetAsync(body_at, fill, bytes, 0));
  return body_at;
}

std::vector<GuardedBuffers::Span> GuardedBuffers::guards() const {
  std::vector<Span> v;  // 2i: buffer i's head guard; 2i + 1: its tail, the slack after the body included
  for (const Entry& b : bufs_) {
    v.push_back({b.base, nullptr, kGuardBytes});
    v.push_back({b.base + kGuardBytes + b.bytes, nullptr, b.total - kGuardBytes - b.bytes});
  }
  return v;
}

void GuardedBuffers::arm() {
  const std::vector<Span> spans = guards();
  if (spans.empty()) return;
  const size_t first_bytes = (spans.size() + bufs_.size()) * sizeof(unsigned long long);  // guards, then inputs
  first_ = static_cast<unsigned long long*>(take(first_bytes, "guard check"));
  for_batches(spans, first_, [&](const Regions& r, unsigned count) {
    hipLaunchKernelGGL(arm_regions, dim3(4, count), dim3(256), 0, 0, r);
  });
  PA_GPU_CHECK(hipMemsetAsync(first_ + spans.size(), 0xFF, bufs_.size() * sizeof(unsigned long long), 0));
  PA_GPU_CHECK(hipGetLastError());
}

GuardedBuffers::Breaches GuardedBuffers::check() const {
  Breaches out;
  if (bufs_.empty()) return out;
  // One launch checks every guard and every input copied from device memory; one copy brings
  // the answers back. Inputs copied from host memory come back and are compared here.
  std::vector<Span> spans = guards();
  const size_t guard_count = spans.size();
  std::vector<size_t> compared;  // the buffer of each input region
  for (size_t i = 0; i < bufs_.size(); ++i)
    if (bufs_[i].src && bufs_[i].where == Memory::device) {
      spans.push_back({bufs_[i].base + kGuardBytes, static_cast<const uint8_t*>(bufs_[i].src), bufs_[i].bytes});
      compared.push_back(i);
    }
  // Guards are 256 bytes; an input copy can be gigabytes: the grid is sized for the largest
  // region (about 16 bytes a thread), so the check runs at memory speed, not at 4 blocks' pace.
  uint64_t largest = 0;
  for (const Span& sp : spans) largest = std::max<uint64_t>(largest, sp.n);
  const unsigned blocks = unsigned(std::min<uint64_t>(4096, std::max<uint64_t>(4, (largest + 4095) / 4096)));
  for_batches(spans, first_, [&](const Regions& r, unsigned count) {
    hipLaunchKernelGGL(check_regions, dim3(blocks, count), dim3(256), 0, 0, r);
  });
  PA_GPU_CHECK(hipGetLastError());
  std::vector<unsigned long long> at(spans.size());
  download_staged(at.data(), first_, at.size() * sizeof(unsigned long long));
  for (size_t i = 0; i < bufs_.size() && out.overrun.empty(); ++i) {
    const Entry& b = bufs_[i];
    if (at[2 * i] != ~0ull)
      out.overrun = "guard of buffer '" + b.name + "' corrupted at byte " + std::to_string(int64_t(at[2 * i]) - int64_t(kGuardBytes)) +
                    " (before the buffer, which is " + std::to_string(b.bytes) + " bytes)";
    else if (at[2 * i + 1] != ~0ull)
      out.overrun = "guard of buffer '" + b.name + "' corrupted at byte " + std::to_string(b.bytes + at[2 * i + 1]) +
                    " (the buffer is " + std::to_string(b.bytes) + " bytes)";
  }
  for (size_t j = 0; j < compared.size() && out.written.empty(); ++j)
    if (at[guard_count + j] != ~0ull)
      out.written = input_written_at(bufs_[compared[j]].name, bufs_[compared[j]].bytes, at[guard_count + j]);
  std::vector<uint8_t> back;
  for (size_t i = 0; i < bufs_.size() && out.written.empty(); ++i) {
    const Entry& b = bufs_[i];
    if (!b.src || b.where != Memory::host) continue;
    back.resize(b.bytes);
    download_staged(back.data(), b.base + kGuardBytes, b.bytes);
    out.written = input_written(b.name, back.data(), b.src, b.bytes);
  }
  return out;
}

std::string GuardedBuffers::overrun() const { return check().overrun; }

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

std::string gpu_compiler_version() {
#if defined(__CUDACC__)
  return "nvcc " + std::to_string(__CUDACC_VER_MAJOR__) + "." + std::to_string(__CUDACC_VER_MINOR__) + "." +
         std::to_string(__CUDACC_VER_BUILD__);
#elif defined(HIP_VERSION_MAJOR)
  return "hipcc (HIP " + std::to_string(HIP_VERSION_MAJOR) + "." + std::to_string(HIP_VERSION_MINOR) + ")";
#else
  return "unknown";
#endif
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

namespace {

// What the launch half of a crossing reports back to the common body.
// `at` holds each Buf's body (null where it has no bytes).
using Launch = std::function<Crossed(const pacheck_buffers& b, const GuardedBuffers& g, const std::array<void*, kBufCount>& at)>;

// The one body of every device crossing: guarded buffers laid out from the one table (outputs
// poisoned), armed, launched by `launch`, faults classified, guards checked, outputs copied back.
Crossed cross_device_body(const KernelCall& call, uint64_t workspace_bytes, const Launch& launch, void* out_codes,
                          float* lse) {
  Crossed x;
  if (!gpu_available(&x.skipped)) return x;
  x.skipped.clear();
  try {
    const LaunchBuffers lb = launch_buffers(call, workspace_bytes);
    GuardedBuffers g;
    std::array<void*, kBufCount> at{};
    for_each_buf([&](Buf b) {
      if (is_output(b))  // poisoned: an element the kernel forgets to write fails
        at[size_t(b)] = lb.size(b) ? g.alloc(to_string(b), lb.size(b), nullptr, kPoison) : nullptr;
      else if (lb.size(b))
        at[size_t(b)] = g.alloc(to_string(b), lb.size(b), lb.at(b), 0, lb.memory);
    });
    g.arm();
    pacheck_buffers b = abi_buffers(at, lb);
    PA_GPU_CHECK(hipGetDevice(&b.device_id));
    x = launch(b, g, at);
    if (!x.fault.empty() || x.status != PACHECK_OK || !x.skipped.empty()) return x;
    const GuardedBuffers::Breaches breach = g.check();
    x.overrun = breach.overrun;
    x.written = breach.written;
    if (!x.overrun.empty() || !x.written.empty()) return x;
    download_staged(out_codes, b.out, lb.size(Buf::out));
    if (b.lse) download_staged(lse, b.lse, lb.size(Buf::lse));
  } catch (const gpu::Error& e) {
    x.fault = e.what();
  }
  return x;
}

std::string hex(const void* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = static_cast<const uint8_t*>(p)[i];
    s += kDigits[c >> 4];
    s += kDigits[c & 15];
  }
  return s;
}

}  // namespace

SharedBuffer GuardedBuffers::share(const void* body) const {
  for (const Entry& e : bufs_)
    if (body == e.base + kGuardBytes) {
      // Each buffer is a whole allocation of the device pool (a hipMalloc block), so the handle
      // opens at e.base in the other process and the body lies kGuardBytes into it.
      hipIpcMemHandle_t h;
      PA_GPU_CHECK(hipIpcGetMemHandle(&h, e.base));
      return {hex(&h, sizeof h), kGuardBytes, e.bytes, e.total};
    }
  return {};
}

Crossed cross_device(const pacheck_kernel& k, const KernelCall& call, void* out_codes, float* lse, bool unplanned) {
  const uint64_t ws = k.workspace_bytes ? k.workspace_bytes(&k, &call.problem) : 0;
  return cross_device_body(call, ws, [&](const pacheck_buffers& b, const GuardedBuffers&, const std::array<void*, kBufCount>&) {
    Crossed x;
    hipEvent_t start, stop;
    PA_GPU_CHECK(hipEventCreate(&start));
    PA_GPU_CHECK(hipEventCreate(&stop));
    PA_GPU_CHECK(hipEventRecord(start, 0));
    // The stream is named explicitly: this thread's default stream (pacheck builds with per-thread
    // default streams), the one every copy above is queued on. A plug-in built the ordinary way
    // would take NULL for the legacy stream instead.
    PlanPtr planned;  // a plan made for this launch lives until the stream is synchronised
    x.status = launch_abi(k, call.problem, b, reinterpret_cast<void*>(hipStreamPerThread), via(call, unplanned),
                          &x.error, &planned);
    if (x.status == PACHECK_OK) x.instance = instance_of(k);
    PA_GPU_CHECK(hipEventRecord(stop, 0));
    const hipError_t se = hipEventSynchronize(stop);
    float ms = 0;
    if (se == hipSuccess) PA_GPU_CHECK(hipEventElapsedTime(&ms, start, stop));
    PA_GPU_RELEASE(hipEventDestroy(start));
    PA_GPU_RELEASE(hipEventDestroy(stop));
    x.elapsed_ms = ms;
    if (se != hipSuccess) {
      x.fault = hipGetErrorString(se);
      // A fault that a second, harmless call still reports poisons the context (an illegal
      // address, a trap): nothing on this device can be trusted until the process ends.
      const hipError_t pending = hipGetLastError();  // clears a non-sticky error; a sticky one stays
      if (pending != hipSuccess && pending != se) x.fault += std::string(" (then ") + hipGetErrorString(pending) + ")";
      x.sticky = hipDeviceSynchronize() != hipSuccess;
    }
    return x;
  }, out_codes, lse);
}

int plan_device(const pacheck_kernel& k, const pacheck_problem& p, const PlanBatch& batch, PlanPtr* plan,
                std::string* error) {
  const int st = plan_abi(k, p, batch, reinterpret_cast<void*>(hipStreamPerThread), plan, error);
  const hipError_t e = hipStreamSynchronize(hipStreamPerThread);
  if (e != hipSuccess) {
    plan->reset();
    *error = std::string("the plan step faulted: ") + hipGetErrorString(e);
    return PACHECK_ERROR;
  }
  return st;
}

Crossed cross_device_shared(const KernelCall& call, uint64_t workspace_bytes, const SharedLaunch& launch,
                            void* out_codes, float* lse) {
  return cross_device_body(call, workspace_bytes, [&](const pacheck_buffers&, const GuardedBuffers& g,
                                                      const std::array<void*, kBufCount>& at) {
    SharedBuffers shared;
    for (size_t i = 0; i < kBufCount; ++i)
      if (at[i]) shared[i] = g.share(at[i]);
    // The other process reads the buffers as soon as it has the handles: every copy and the guards'
    // arming must be done by then.
    PA_GPU_CHECK(hipStreamSynchronize(0));
    return launch(shared);
  }, out_codes, lse);
}

}  // namespace pa

namespace pa {

Crossed cross_device_graph(const pacheck_kernel& k, const KernelCall& capture, const KernelCall& replay,
                           void* out_codes, float* lse, void* again_codes) {
  Crossed x;
  if (!gpu_available(&x.skipped)) return x;
  x.skipped.clear();
  hipStream_t s = nullptr;
  hipGraph_t graph = nullptr;
  hipGraphExec_t exec = nullptr;
  try {
    const uint64_t ws = k.workspace_bytes ? k.workspace_bytes(&k, &capture.problem) : 0;
    const LaunchBuffers cap = launch_buffers(capture, ws), rep = launch_buffers(replay, ws);
    for (Buf b : {Buf::q, Buf::out, Buf::lse})
      if (rep.size(b) != cap.size(b)) {
        x.skipped = std::string("graph replay: the replay's '") + to_string(b) + "' differs in size from the capture's";
        return x;
      }
    bool fits = replay.problem.num_seqs == capture.problem.num_seqs &&
                replay.problem.max_blocks_per_seq <= capture.problem.max_blocks_per_seq;
    for_each_buf([&](Buf b) { fits = fits && (is_output(b) || rep.size(b) <= cap.size(b)); });
    if (!fits) {
      x.skipped = "graph replay: the replay batch does not fit the buffers of the capture";
      return x;
    }
    // The capture's buffers, filled with the capture batch (what an engine's buffers hold when it
    // captures); inputs are not compared afterwards (the replay rewrites them).
    GuardedBuffers g;
    std::array<void*, kBufCount> at{};
    for_each_buf([&](Buf b) {
      if (!cap.size(b)) return;
      at[size_t(b)] = g.alloc(to_string(b), cap.size(b), nullptr, is_output(b) ? kPoison : 0);
      if (!is_output(b) && cap.at(b))
        PA_GPU_CHECK(hipMemcpyAsync(at[size_t(b)], cap.at(b), cap.size(b), hipMemcpyDefault, 0));
    });
    g.arm();
    pacheck_buffers b = abi_buffers(at, cap);
    PA_GPU_CHECK(hipGetDevice(&b.device_id));
    PA_GPU_CHECK(hipStreamSynchronize(0));
    PA_GPU_CHECK(hipStreamCreateWithFlags(&s, hipStreamNonBlocking));
    // The plan is made before the capture, as an engine plans before it captures.
    PlanPtr planned = capture.plan, made;
    if (!planned && has_plan_step(k)) {
      x.status = plan_device(k, capture.problem, capture.batch, &planned, &x.error);
      if (x.status != PACHECK_OK) {
        x.error = "plan: " + x.error;
        return x;
      }
    }
    LaunchVia v = via(capture, false);
    v.plan = planned.get();
    PA_GPU_CHECK(hipStreamBeginCapture(s, hipStreamCaptureModeThreadLocal));
    x.status = launch_abi(k, capture.problem, b, reinterpret_cast<void*>(s), v, &x.error, &made);
    const hipError_t ce = hipStreamEndCapture(s, &graph);
    // A refused or uncapturable launch leaves its error pending: it is reported, not dropped.
    const hipError_t pending = x.status != PACHECK_OK || ce != hipSuccess ? hipGetLastError() : hipSuccess;
    if (x.status != PACHECK_OK) {
      if (pending != hipSuccess) x.error += std::string(" (runtime: ") + hipGetErrorString(pending) + ")";
    } else if (ce != hipSuccess) {
      x.fault = std::string("the launch could not be captured in a graph: ") + hipGetErrorString(ce);
      if (pending != hipSuccess && pending != ce) x.fault += std::string(" (then ") + hipGetErrorString(pending) + ")";
    } else {
      PA_GPU_CHECK(hipGraphInstantiateWithFlags(&exec, graph, 0));
      // The replay batch, written in place: the block table keeps the capture's row length.
      for_each_buf([&](Buf bf) {
        if (is_output(bf) || !rep.size(bf)) return;
        if (bf == Buf::block_tables) {
          const size_t dpitch = size_t(capture.problem.max_blocks_per_seq) * 4,
                       spitch = size_t(replay.problem.max_blocks_per_seq) * 4;
          PA_GPU_CHECK(hipMemsetAsync(at[size_t(bf)], 0, cap.size(bf), 0));
          PA_GPU_CHECK(hipMemcpy2DAsync(at[size_t(bf)], dpitch, rep.at(bf), spitch, spitch,
                                        size_t(replay.problem.num_seqs), hipMemcpyDefault, 0));
        } else {
          PA_GPU_CHECK(hipMemcpyAsync(at[size_t(bf)], rep.at(bf), rep.size(bf), hipMemcpyDefault, 0));
        }
      });
      PA_GPU_CHECK(hipStreamSynchronize(0));
      for (int round = 0; round < (again_codes ? 2 : 1) && x.fault.empty(); ++round) {
        PA_GPU_CHECK(hipGraphLaunch(exec, s));
        const hipError_t se = hipStreamSynchronize(s);
        if (se != hipSuccess) {
          x.fault = std::string("graph replay: ") + hipGetErrorString(se);
          x.sticky = hipDeviceSynchronize() != hipSuccess;
          break;
        }
        if (round == 0) {
          const GuardedBuffers::Breaches breach = g.check();
          x.overrun = breach.overrun;
          if (!x.overrun.empty()) break;
          download_staged(out_codes, b.out, cap.size(Buf::out));
          if (b.lse) download_staged(lse, b.lse, cap.size(Buf::lse));
        } else {
          download_staged(again_codes, b.out, cap.size(Buf::out));
        }
      }
      if (x.status == PACHECK_OK && x.fault.empty()) x.instance = instance_of(k);
    }
  } catch (const gpu::Error& e) {
    x.fault = e.what();
  }
  if (exec) PA_GPU_RELEASE(hipGraphExecDestroy(exec));
  if (graph) PA_GPU_RELEASE(hipGraphDestroy(graph));
  if (s) {
    PA_GPU_RELEASE(hipStreamSynchronize(s));
    PA_GPU_RELEASE(hipStreamDestroy(s));
  }
  return x;
}

}  // namespace pa
