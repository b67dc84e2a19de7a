#pragma once
// A kernel under test, as the rest of pacheck sees it: one C ABI descriptor
// (include/pacheck/kernel_abi.h) -- pacheck's own paths and every plug-in alike -- parsed once
// into a Capability and Numerics, and run on a case's physical inputs. Buffers are marshalled by
// the kernel's memory kind through the one crossing (kernels/crossing.hpp): host kernels get
// guarded host outputs, device kernels guarded device buffers, worker-served kernels the worker's
// shared memory. Outputs start as NaN so an element the kernel forgets to write fails.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/capability.hpp"
#include "inputs/inputs.hpp"
#include "inputs/inputs_device.hpp"
#include "core/metrics.hpp"
#include "pacheck/kernel_abi.h"

namespace pa {

enum class Memory : uint8_t { host, device };
const char* to_string(Memory m);

/// What one run of a kernel produced.
struct KernelOutput {
  Status status = Status::Ok;  // Ok = it ran (accuracy is judged elsewhere); NotSupported = refused;
                               // Fail = it returned an error or broke a guard; Skipped = cannot run here
  std::string metric;          // for Fail: "kernel_error", "guard", ...
  std::string reason;          // why it refused / failed
  std::vector<float> out;      // [T, Hq, Dv], the out-dtype values widened to float
  std::vector<float> lse;      // [T, Hq], natural log; empty when the kernel does not write it
  double elapsed_ms = 0;       // kernel time (GPU events) or wall time (host)
  std::string instance;        // the implementation the kernel says served it, when not itself
};

/// A contiguous run of T that the caller keeps alive.
template <class T>
struct View {
  const T* data = nullptr;
  size_t size = 0;
  View() = default;
  View(const T* d, size_t n) : data(d), size(n) {}
  View(const std::vector<T>& v) : data(v.data()), size(v.size()) {}  // NOLINT: implicit by design
  bool empty() const { return size == 0; }
};

/// The batch a plan is made for, in host memory whatever the call's memory (ABI pacheck_plan_batch).
struct PlanBatch {
  View<int32_t> cu_seqlens_q, context_lens;       // [S + 1], [S]
  View<int32_t> kv_indptr, kv_last_page_len;      // the CSR table's, or empty
};
/// The ABI struct over the views (valid while they are).
pacheck_plan_batch abi_batch(const PlanBatch& b);

/// A plan a kernel made with its plan step (ABI minor 3), held by whoever reuses it; the kernel
/// releases it when the last holder lets go.
class KernelPlan {
 public:
  explicit KernelPlan(const pacheck_problem& planned) : planned_(planned) {}
  virtual ~KernelPlan() = default;
  KernelPlan(const KernelPlan&) = delete;
  KernelPlan& operator=(const KernelPlan&) = delete;
  /// The problem it was made for.
  const pacheck_problem& planned() const { return planned_; }

 private:
  pacheck_problem planned_;
};
using PlanPtr = std::shared_ptr<const KernelPlan>;

/// One launch as pacheck hands it to a kernel: the ABI problem and views of every input, in host
/// memory or, for inputs generated on the GPU (inputs/inputs_device.hpp), in device memory.
struct KernelCall {
  pacheck_problem problem{};
  Memory memory = Memory::host;     // where the views point
  View<uint16_t> q;                 // [T, Hq, D] codes of q_dtype
  View<uint8_t> k_cache, v_cache;   // raw element bytes
  View<float> k_scales, v_scales;
  View<int32_t> block_tables, context_lens;  // block_tables empty when the table is CSR
  View<float> alibi_slopes, sinks;  // empty = not given
  View<int32_t> cu_seqlens_q;       // [S + 1]
  View<int32_t> kv_indptr, kv_indices, kv_last_page_len;  // the CSR table, or empty
  PlanBatch batch;                  // host copies of the batch, for a kernel's plan step
  /// A plan this kernel made earlier (plan()), reused for this launch; null = a kernel with a plan
  /// step plans for this launch and releases the plan after it.
  PlanPtr plan;
};
/// The call of a case's inputs (views into `in` and `kv`, which must outlive it).
KernelCall make_call(const Inputs& in, const PhysicalKv& kv);
/// The call of inputs generated on the GPU: device views into `in`, which must outlive it.
KernelCall make_call(const DeviceInputs& in);

struct KernelInfo {
  std::string name, version, provenance;
  std::string source;    // "built-in" or the library / adapter it was loaded from
  Memory memory = Memory::host;
  Capability capability;
  Numerics numerics;
};

class Kernel {
 public:
  explicit Kernel(KernelInfo info) : info_(std::move(info)) {}
  virtual ~Kernel() = default;
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  const KernelInfo& info() const { return info_; }
  const std::string& name() const { return info_.name; }
  /// nullopt when the kernel takes `c` on `dev`: the declared table first, then the kernel's own
  /// supports() predicate. Prefixed by nothing; callers add the kernel's name.
  virtual std::optional<std::string> decline_reason(const Case& c, const Device& dev) const;
  ErrorModel error_model(const Case& c) const { return pa::error_model(info_.numerics, c); }
  /// Whether run() takes a call whose views point into `views` memory. Host views always; device
  /// views only where a kernel says so (an in-process device kernel), so that inputs generated on
  /// the GPU never go to a kernel that would read them as host memory.
  virtual bool takes(Memory views) const { return views == Memory::host; }
  /// Scratch bytes a launch on `c` needs (0 = none).
  virtual int64_t workspace_bytes(const Case& c) const { (void)c; return 0; }
  /// Runs the kernel on the call through the one crossing (kernels/crossing.hpp).
  virtual KernelOutput run(const KernelCall& call, const Device& dev) const = 0;
  /// The kernel's plan step on the call's problem and batch (capability().plan): a plan, or null
  /// with `refused` saying why (NotSupported for a refusal, Fail for an error). A kernel without a
  /// plan step refuses.
  virtual PlanPtr plan(const KernelCall& call, const Device& dev, KernelOutput* refused) const;
  /// Captures the launch on `capture` in a graph and replays it on `replay`'s inputs written into
  /// the capture's buffers (kernels/crossing.hpp, cross_device_graph); with `again`, replays it a
  /// second time and decodes that output there. Skipped unless a device kernel in this process.
  virtual KernelOutput run_graph(const KernelCall& capture, const KernelCall& replay, const Device& dev,
                                 std::vector<float>* again) const;
  /// Runs the kernel without its plan step (the ABI's plain launch), as an earlier pacheck would.
  virtual KernelOutput run_unplanned(const KernelCall& call, const Device& dev) const { return run(call, dev); }

 private:
  KernelInfo info_;
};
using KernelPtr = std::shared_ptr<const Kernel>;

/// A kernel behind an ABI descriptor (built-in or loaded). Validates the descriptor on
/// construction: throws InputError naming `source` and the field.
class AbiKernel : public Kernel {
 public:
  AbiKernel(const pacheck_kernel* desc, std::string source);
  std::optional<std::string> decline_reason(const Case& c, const Device& dev) const override;
  bool takes(Memory views) const override;
  KernelOutput run(const KernelCall& call, const Device& dev) const override;
  PlanPtr plan(const KernelCall& call, const Device& dev, KernelOutput* refused) const override;
  KernelOutput run_unplanned(const KernelCall& call, const Device& dev) const override;
  KernelOutput run_graph(const KernelCall& capture, const KernelCall& replay, const Device& dev,
                         std::vector<float>* again) const override;
  int64_t workspace_bytes(const Case& c) const override;
  const pacheck_kernel& descriptor() const { return *desc_; }

 private:
  const pacheck_kernel* desc_;
};

/// The registered kernels, in registration order; names are unique.
class Registry {
 public:
  /// Throws InputError when a kernel of that name is already registered.
  void add(KernelPtr k);
  KernelPtr find(std::string_view name) const;
  /// Throws InputError naming the unknown kernel and the registered ones.
  KernelPtr get(std::string_view name) const;
  const std::vector<KernelPtr>& all() const { return kernels_; }
  std::string names() const;

 private:
  std::vector<KernelPtr> kernels_;
};

/// pacheck's own kernels: the host twins of v1, hip and asm (Memory::host), or on `device` the GPU
/// kernels of the same names.
enum class Backend : uint8_t { host, gpu };
const char* to_string(Backend b);
std::optional<Backend> parse_backend(std::string_view s);
Registry builtin_kernels(Backend b);
/// The built-in descriptors (same type as a plug-in's), for `pacheck kernels` and tests.
std::vector<const pacheck_kernel*> host_twin_descriptors();
std::vector<const pacheck_kernel*> gpu_kernel_descriptors();  // empty without a GPU toolchain

/// Loads a plug-in: "PATH.so" (every kernel it exports) or "PATH.so:NAME" (one). Throws
/// InputError naming the library and the problem (missing file or entry point, ABI version
/// mismatch, malformed descriptor).
std::vector<KernelPtr> load_plugin(const std::string& spec);

// ---- the GPU backend (kernels/crossing_device.hip; kernels/gpu_none.cpp without a toolchain) ----
/// True when pacheck was built with a GPU toolchain and a GPU is present; else `why` says which.
bool gpu_available(std::string* why = nullptr);
/// The present GPU (name, arch, CU/SM count, native fp8, warp size). @pre gpu_available()
Device gpu_device();
/// "CUDA runtime 13000" / "HIP runtime ..." / "n/a", for the report's context block.
std::string gpu_runtime_version();
std::string gpu_driver_version();
/// The GPU compiler pacheck's own device code was built with ("nvcc 13.0.48"), or "n/a".
std::string gpu_compiler_version();
}  // namespace pa
