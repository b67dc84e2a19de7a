#pragma once
// The one place a launch crosses into a kernel, whatever side of it the kernel lives on: in this
// process on host memory, in this process on device memory (kernels/crossing_device.hip), or in a
// worker process (worker/). Every crossing
//   1. lays out the launch's buffers from one table (Buf), outputs poisoned and between guards,
//   2. launches through the ABI descriptor,
//   3. reports what came back as a Crossed -- the kernel's status, a runtime fault, a broken
//      guard, or "could not run here" -- which outcome() turns into a KernelOutput, one mapping
//      for every memory kind and isolation mode, and
//   4. decodes the output codes once (take_outputs), on the side that judges them.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/problem.hpp"
#include "kernels/kernel.hpp"

namespace pa {

// Guard regions (ggml's habit): canary bytes on both sides of every buffer a kernel writes. The
// canary is not constant (a kernel that happens to write it must still be caught): it is a
// function of the byte's position, kCanary ^ (i * 131) for byte i of the region, see canary().
inline constexpr size_t kGuardBytes = 256;
inline constexpr uint8_t kCanary = 0xA5;
/// Output bodies start as 0xFF bytes: NaN in every output format, so an element the kernel does
/// not write fails the verdict.
inline constexpr uint8_t kPoison = 0xFF;
/// The canary byte at position i of a guard region.
PA_HOST_DEVICE inline uint8_t canary(uint64_t i) { return uint8_t(kCanary ^ uint8_t(i * 131u)); }

/// The buffers of one launch, in pacheck_buffers' order; the last three are written by the kernel.
enum class Buf : uint8_t {
  q, k_cache, v_cache, k_scales, v_scales, block_tables, context_lens, alibi_slopes, sinks,
  cu_seqlens_q, kv_indptr, kv_indices, kv_last_page_len,
  workspace, out, lse
};
inline constexpr size_t kBufCount = 16;
const char* to_string(Buf b);
constexpr bool is_output(Buf b) { return b >= Buf::workspace; }
template <class F>
void for_each_buf(F&& f) {
  for (size_t i = 0; i < kBufCount; ++i) f(Buf(i));
}

/// The byte size of every buffer of a launch and, for inputs, where its bytes are.
struct LaunchBuffers {
  pacheck_problem problem{};
  Memory memory = Memory::host;              // where the inputs' bytes are
  std::array<const void*, kBufCount> src{};  // inputs: the call's views; outputs: null
  std::array<size_t, kBufCount> bytes{};
  const void* at(Buf b) const { return src[size_t(b)]; }
  size_t size(Buf b) const { return bytes[size_t(b)]; }
};
LaunchBuffers launch_buffers(const KernelCall& call, uint64_t workspace_bytes);
/// The inverse: a call whose views are lb's inputs (buffers already laid out elsewhere, such as
/// the worker's shared memory).
KernelCall call_over(const LaunchBuffers& lb);

/// The ABI's buffers over one pointer per Buf (null where a buffer has no bytes).
pacheck_buffers abi_buffers(const std::array<void*, kBufCount>& at, const LaunchBuffers& lb);

/// Every buffer of a host launch inside one byte span: outputs poisoned between two guards;
/// inputs copied in when `copy_inputs` (every launch does: the kernel writes only its own copy,
/// and written() finds it), else left where the call has them. The span is owned by the caller:
/// a vector in process, the memory file for a worker.
class HostSpace {
 public:
  static size_t bytes_needed(const LaunchBuffers& lb, bool copy_inputs);
  /// Fills the span. @pre base holds bytes_needed(lb, copy_inputs) bytes
  HostSpace(uint8_t* base, const LaunchBuffers& lb, bool copy_inputs);
  /// Where a buffer lies (null when it has no bytes) and its offset inside the span.
  void* at(Buf b) const { return ptr_[size_t(b)]; }
  size_t offset(Buf b) const { return off_[size_t(b)]; }
  /// "" when every guard holds its canary, else the first broken guard, named.
  std::string overrun() const;
  /// "" when every input copied in still holds the caller's bytes, else the first input the
  /// kernel wrote, named with the byte. (Inputs not copied in are not checked.)
  std::string written() const;

 private:
  bool copied_ = false;
  const LaunchBuffers* lb_;
  uint8_t* base_;
  std::array<void*, kBufCount> ptr_{};
  std::array<size_t, kBufCount> off_{};
};

/// The input_written message for an input named `name` whose launch copy `got` no longer holds
/// the `bytes` bytes of `want` it was filled from; "" when it still does. One text for every
/// crossing (host span, worker memory file, device copies).
std::string input_written(const std::string& name, const void* got, const void* want, size_t bytes);
/// The same, where the first differing byte `at` is already known (found on the device).
std::string input_written_at(const std::string& name, size_t bytes, size_t at);

/// What came back across the boundary, before anything is judged.
struct Crossed {
  int status = PACHECK_OK;  // as the kernel's launch returned it
  std::string error;        // its last_error, for a status other than OK
  std::string fault;        // a runtime fault during or after the launch (device kernels)
  bool sticky = false;      // the fault poisons the process's device context: it must end
  std::string overrun;      // a broken guard, named
  std::string skipped;      // the launch cannot happen here (no GPU): pacheck's limit, not the kernel's
  double elapsed_ms = 0;    // wall clock (host) or device events (device)
  std::string written;      // an input the kernel wrote (its own copy of it: the caller's stays), named
  std::string instance;     // the instance the kernel says served the launch, when not itself (ABI minor 2)
};

/// The one status vocabulary: Skipped for skipped, NotSupported for a refusal, Fail with metric
/// kernel_error (an error status or a fault), crash (a sticky device fault), guard,
/// input_written or instance (another implementation served the launch), else Ok.
KernelOutput outcome(const Crossed& x);
/// Decodes the output codes (q dtype) into r.out and copies the LSE (when given) into r.lse.
void take_outputs(const pacheck_problem& p, const void* out_codes, const float* lse, KernelOutput& r);

/// The kernel's last_error, or a sentence saying it gave none.
std::string last_error_of(const pacheck_kernel& k);
/// The instance the kernel reports for its last launch on this thread (descriptor `instance`,
/// ABI minor 2) when it names another than the kernel itself; "" when it ran itself or says nothing.
std::string instance_of(const pacheck_kernel& k);
/// The plan of a descriptor in this process: what its plan step returned, released through its
/// release_plan when the last holder lets go.
class AbiPlan : public KernelPlan {
 public:
  AbiPlan(const pacheck_kernel& k, const pacheck_problem& planned, void* handle)
      : KernelPlan(planned), k_(k), handle_(handle) {}
  ~AbiPlan() override;
  const void* handle() const { return handle_; }
  const pacheck_kernel& kernel() const { return k_; }

 private:
  const pacheck_kernel& k_;
  void* handle_;
};
/// Whether a descriptor has a plan step (ABI minor 3: plan, launch_planned and release_plan).
bool has_plan_step(const pacheck_kernel& k);
/// The descriptor's plan step on `p` and `batch` (stream: as for its launch). OK with *plan set,
/// or the status with `error` naming why.
int plan_abi(const pacheck_kernel& k, const pacheck_problem& p, const PlanBatch& batch, void* stream,
             PlanPtr* plan, std::string* error);
/// How a launch enters the kernel: through `plan` (a plan of this kernel made earlier), else for a
/// kernel with a plan step through a plan made for this launch from `batch` (released after it),
/// else, or when `unplanned`, through the plain launch.
struct LaunchVia {
  const KernelPlan* plan = nullptr;
  PlanBatch batch;
  bool unplanned = false;
};
LaunchVia via(const KernelCall& call, bool unplanned);
/// The one launch through the ABI: the kernel's status, `error` its last_error when not OK. A plan
/// made for this launch is handed to `keep` (a device launch's work may still read it: the caller
/// drops it after synchronising), or released on return when `keep` is null.
int launch_abi(const pacheck_kernel& k, const pacheck_problem& p, const pacheck_buffers& b, void* stream,
               const LaunchVia& v, std::string* error, PlanPtr* keep = nullptr);
/// Launches a host-memory kernel on ready buffers, wall-clock timed.
Crossed launch_host(const pacheck_kernel& k, const pacheck_problem& p, const pacheck_buffers& b, const LaunchVia& v);

/// In process, host memory: outputs in a guarded HostSpace, launch, guards, decode.
KernelOutput cross_host(const pacheck_kernel& k, const KernelCall& call, bool unplanned = false);
/// Device memory (crossing_device.hip; crossing_none.cpp says "no GPU" without a toolchain):
/// guarded device buffers filled from the call's views (host or device), launch on this thread's
/// stream, event timing, guards; the raw output codes and LSE are copied to `out_codes` and `lse`
/// (host memory of out_bytes(p) and lse_bytes(p) bytes).
Crossed cross_device(const pacheck_kernel& k, const KernelCall& call, void* out_codes, float* lse,
                     bool unplanned = false);
/// A device buffer as another process opens it: the IPC handle (hex of hipIpcMemHandle_t) of the
/// allocation holding it, the buffer's byte offset in that allocation, its size, and the size of
/// the whole allocation (the other process maps it once and slices every later buffer out of it).
/// Empty handle: the buffer has no bytes.
struct SharedBuffer {
  std::string handle;
  uint64_t offset = 0, bytes = 0, allocation = 0;
};
using SharedBuffers = std::array<SharedBuffer, kBufCount>;
/// The launch half of a shared crossing: runs the kernel in another process over the shared
/// buffers (which that process opens, writes and synchronises before it answers).
using SharedLaunch = std::function<Crossed(const SharedBuffers&)>;
/// Device memory, launched in another process (a worker): the guarded device buffers are laid out,
/// filled, poisoned and armed exactly as for cross_device and the stream synchronised; `launch`
/// gets their IPC handles; then the guards are checked and the raw outputs copied back here. The
/// bytes never pass through host memory. Skipped without a GPU.
Crossed cross_device_shared(const KernelCall& call, uint64_t workspace_bytes, const SharedLaunch& launch,
                            void* out_codes, float* lse);
/// In process, device memory: cross_device, then outcome and decode.
KernelOutput run_device(const pacheck_kernel& k, const KernelCall& call, bool unplanned = false);
/// A graph replay (CUDA/HIP graphs) of a device kernel in this process: buffers laid out for
/// `capture` (guarded, outputs poisoned, filled with its inputs), the launch on `capture`'s problem
/// captured in a graph (through capture.plan, or a plan made for it), then `replay`'s inputs
/// written into the same buffers (the block table at the capture's row length) and the graph
/// replayed: the raw outputs to `out_codes` and `lse`; with `again_codes`, replayed a second time
/// into it. Skipped when the replay does not fit the capture's buffers.
Crossed cross_device_graph(const pacheck_kernel& k, const KernelCall& capture, const KernelCall& replay,
                           void* out_codes, float* lse, void* again_codes);
/// The plan step of a device kernel in this process, on this thread's stream (synchronised).
int plan_device(const pacheck_kernel& k, const pacheck_problem& p, const PlanBatch& batch, PlanPtr* plan,
                std::string* error);

}  // namespace pa
