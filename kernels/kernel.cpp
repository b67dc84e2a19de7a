#include "kernels/kernel.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "kernels/crossing.hpp"

namespace pa {

const char* to_string(Memory m) { return m == Memory::host ? "host" : "device"; }
const char* to_string(Backend b) { return b == Backend::host ? "host" : "gpu"; }
std::optional<Backend> parse_backend(std::string_view s) {
  if (s == "host") return Backend::host;
  if (s == "gpu") return Backend::gpu;
  return std::nullopt;
}

namespace {
PlanBatch batch_of(const Inputs& h) {
  PlanBatch b;
  b.cu_seqlens_q = h.cu_seqlens_q;
  b.context_lens = h.context_lens;
  if (h.c.page_table == PageTable::csr) {
    b.kv_indptr = h.kv_indptr;
    b.kv_last_page_len = h.kv_last_page_len;
  }
  return b;
}
}  // namespace

KernelCall make_call(const Inputs& in, const PhysicalKv& kv) {
  KernelCall call;
  call.problem = problem_of(in.c);
  call.q = in.q_codes;
  call.k_cache = kv.k_cache;
  call.v_cache = kv.v_cache;
  call.k_scales = kv.k_scales;
  call.v_scales = kv.v_scales;
  if (in.c.page_table == PageTable::padded) call.block_tables = in.block_tables;
  call.context_lens = in.context_lens;
  call.alibi_slopes = in.alibi_slopes;
  call.sinks = in.sinks;
  call.cu_seqlens_q = in.cu_seqlens_q;
  call.kv_indptr = in.kv_indptr;
  call.kv_indices = in.kv_indices;
  call.kv_last_page_len = in.kv_last_page_len;
  call.batch = batch_of(in);
  return call;
}

namespace {
template <class T>
View<T> device_view(const DeviceBuffer& b, size_t n) {
  return {b.as<T>(), n};
}
}  // namespace

KernelCall make_call(const DeviceInputs& in) {
  const Inputs& h = in.host;
  KernelCall call;
  call.problem = problem_of(h.c);
  call.memory = Memory::device;
  call.q = device_view<uint16_t>(in.q_codes, h.q_codes.size());
  call.k_cache = device_view<uint8_t>(in.k_cache, in.k_cache.size());
  call.v_cache = device_view<uint8_t>(in.v_cache, in.v_cache.size());
  call.k_scales = device_view<float>(in.k_cache_scales, in.k_cache_scales.size() / sizeof(float));
  call.v_scales = device_view<float>(in.v_cache_scales, in.v_cache_scales.size() / sizeof(float));
  if (h.c.page_table == PageTable::padded)
    call.block_tables = device_view<int32_t>(in.block_tables, h.block_tables.size());
  call.context_lens = device_view<int32_t>(in.context_lens, h.context_lens.size());
  call.alibi_slopes = device_view<float>(in.alibi_slopes, h.alibi_slopes.size());
  call.sinks = device_view<float>(in.sinks, h.sinks.size());
  call.cu_seqlens_q = device_view<int32_t>(in.cu_seqlens_q, h.cu_seqlens_q.size());
  call.kv_indptr = device_view<int32_t>(in.kv_indptr, h.kv_indptr.size());
  call.kv_indices = device_view<int32_t>(in.kv_indices, h.kv_indices.size());
  call.kv_last_page_len = device_view<int32_t>(in.kv_last_page_len, h.kv_last_page_len.size());
  call.batch = batch_of(h);
  return call;
}

std::optional<std::string> Kernel::decline_reason(const Case& c, const Device& dev) const {
  return pa::decline_reason(info_.capability, c, dev);
}

namespace {

std::string cstr(const char* s) { return s ? s : ""; }

// Descriptor fields are read only when the plug-in's struct reaches them.
void need(const pacheck_kernel* d, size_t end, const char* field, const std::string& where) {
  if (d->struct_size < end)
    throw InputError(where + ": pacheck_kernel.struct_size=" + std::to_string(d->struct_size) +
                     " is too small for field '" + field + "' (needs " + std::to_string(end) + ")");
}
#define PA_KERNEL_FIELD_END(f) (offsetof(pacheck_kernel, f) + sizeof(pacheck_kernel::f))

// A descriptor's minor: 0 when it ends before abi_minor (built against 1.0).
uint32_t minor_of(const pacheck_kernel* d) { return PACHECK_HAS_FIELD(d, pacheck_kernel, abi_minor) ? d->abi_minor : 0; }

KernelInfo info_of(const pacheck_kernel* d, const std::string& source) {
  if (!d) throw InputError(source + ": a kernel descriptor is NULL");
  need(d, PA_KERNEL_FIELD_END(last_error), "last_error", source);
  // Same major: every minor up to ours loads (fields past struct_size take their defaults).
  if (d->abi_version != PACHECK_KERNEL_ABI_VERSION || minor_of(d) > PACHECK_KERNEL_ABI_MINOR)
    throw InputError(source + ": kernel '" + cstr(d->name) + "' was built against ABI version " +
                     std::to_string(d->abi_version) + "." + std::to_string(minor_of(d)) +
                     ", pacheck speaks version " + std::to_string(PACHECK_KERNEL_ABI_VERSION) + "." +
                     std::to_string(PACHECK_KERNEL_ABI_MINOR) + " (and loads " +
                     std::to_string(PACHECK_KERNEL_ABI_VERSION) + ".0 to " +
                     std::to_string(PACHECK_KERNEL_ABI_VERSION) + "." + std::to_string(PACHECK_KERNEL_ABI_MINOR) + ")");
  KernelInfo i;
  i.name = cstr(d->name);
  const std::string where = source + " kernel '" + i.name + "'";
  if (i.name.empty()) throw InputError(source + ": a kernel has an empty name");
  for (char ch : i.name)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
      throw InputError(where + ": name may hold only [A-Za-z0-9_.-]");
  if (!d->launch) throw InputError(where + ": launch is NULL");
  // Minor 3: the plan step is all three entry points or none.
  if (PACHECK_HAS_FIELD(d, pacheck_kernel, release_plan)) {
    const int given = (d->plan != nullptr) + (d->launch_planned != nullptr) + (d->release_plan != nullptr);
    if (given != 0 && given != 3)
      throw InputError(where + ": plan, launch_planned and release_plan are given together or not at all (" +
                       std::to_string(given) + " of 3 given)");
  }
  if (d->memory != PACHECK_MEMORY_HOST && d->memory != PACHECK_MEMORY_DEVICE)
    throw InputError(where + ": memory=" + std::to_string(d->memory) + " is neither host (0) nor device (1)");
  i.version = cstr(d->version);
  i.provenance = cstr(d->provenance);
  i.source = source;
  i.memory = d->memory == PACHECK_MEMORY_HOST ? Memory::host : Memory::device;
  i.capability = capability_from_abi(d->capability, where);
  // Minor 4: the MLA layouts. A kernel built against an earlier header has no names for them.
  if (minor_of(d) < 4 && (d->capability->kv_layouts & kLatentLayouts))
    throw InputError(where + ": capability.kv_layouts sets MLA_JOINT or MLA_SPLIT (ABI minor 4) in a kernel built "
                     "against ABI 1." + std::to_string(minor_of(d)));
  i.capability.plan = has_plan_step(*d);
  const bool by_kv = PACHECK_HAS_FIELD(d, pacheck_kernel, num_numerics_by_kv);
  i.numerics = numerics_from_abi(d->numerics, where, by_kv ? d->numerics_by_kv : nullptr,
                                 by_kv ? d->num_numerics_by_kv : 0);
  return i;
}

}  // namespace

AbiKernel::AbiKernel(const pacheck_kernel* desc, std::string source)
    : Kernel(info_of(desc, source)), desc_(desc) {}

std::optional<std::string> AbiKernel::decline_reason(const Case& c, const Device& dev) const {
  if (auto r = Kernel::decline_reason(c, dev)) return r;
  if (!desc_->supports) return std::nullopt;
  const pacheck_problem p = problem_of(c);
  char why[512] = {0};
  if (desc_->supports(desc_, &p, why, sizeof why)) return std::nullopt;
  why[sizeof why - 1] = 0;
  if (why[0]) return std::string(why);
  // One error shape: a kernel may leave `why` empty and say it through last_error.
  const char* e = desc_->last_error ? desc_->last_error(desc_) : nullptr;
  return std::string(e && *e ? e : "supports() declined without a reason");
}

int64_t AbiKernel::workspace_bytes(const Case& c) const {
  if (!desc_->workspace_bytes) return 0;
  const pacheck_problem p = problem_of(c);
  return int64_t(desc_->workspace_bytes(desc_, &p));
}

bool AbiKernel::takes(Memory views) const {
  return views == Memory::host || info().memory == Memory::device;
}

KernelOutput AbiKernel::run(const KernelCall& call, const Device& dev) const {
  (void)dev;
  if (!takes(call.memory)) {
    KernelOutput r;
    r.status = Status::Fail;
    r.metric = "harness";
    r.reason = "a host-memory kernel was handed device-memory inputs (pacheck's bug: run_case checks takes())";
    return r;
  }
  return info().memory == Memory::host ? cross_host(*desc_, call) : run_device(*desc_, call);
}

KernelOutput AbiKernel::run_unplanned(const KernelCall& call, const Device& dev) const {
  if (!takes(call.memory)) return run(call, dev);  // the same refusal
  return info().memory == Memory::host ? cross_host(*desc_, call, true) : run_device(*desc_, call, true);
}

PlanPtr Kernel::plan(const KernelCall&, const Device&, KernelOutput* refused) const {
  refused->status = Status::NotSupported;
  refused->reason = name() + " has no plan step";
  return nullptr;
}

KernelOutput Kernel::run_graph(const KernelCall&, const KernelCall&, const Device&, std::vector<float>*) const {
  KernelOutput r;
  r.status = Status::Skipped;
  r.reason = name() + ": a graph replay needs a device kernel in this process (--isolate never)";
  return r;
}

KernelOutput AbiKernel::run_graph(const KernelCall& capture, const KernelCall& replay, const Device& dev,
                                  std::vector<float>* again) const {
  if (info().memory != Memory::device) return Kernel::run_graph(capture, replay, dev, again);
  std::vector<uint8_t> out(out_bytes(replay.problem)), twice(again ? out.size() : 0);
  std::vector<float> lse(size_t(lse_bytes(replay.problem) / 4));
  const Crossed x = cross_device_graph(*desc_, capture, replay, out.data(), lse.data(), again ? twice.data() : nullptr);
  KernelOutput r = outcome(x);
  if (r.status != Status::Ok) return r;
  take_outputs(replay.problem, out.data(), replay.problem.want_lse ? lse.data() : nullptr, r);
  if (again) {
    KernelOutput second;
    take_outputs(replay.problem, twice.data(), nullptr, second);
    *again = std::move(second.out);
  }
  return r;
}

PlanPtr AbiKernel::plan(const KernelCall& call, const Device&, KernelOutput* refused) const {
  PlanPtr plan;
  std::string error;
  const int st = info().memory == Memory::host ? plan_abi(*desc_, call.problem, call.batch, nullptr, &plan, &error)
                                               : plan_device(*desc_, call.problem, call.batch, &plan, &error);
  if (st == PACHECK_OK) return plan;
  refused->status = st == PACHECK_NOT_SUPPORTED ? Status::NotSupported : Status::Fail;
  refused->metric = st == PACHECK_NOT_SUPPORTED ? "" : "kernel_error";
  refused->reason = "plan returned " + std::to_string(st) + ": " + error;
  return nullptr;
}

void Registry::add(KernelPtr k) {
  if (find(k->name()))
    throw InputError("kernel '" + k->name() + "' from " + k->info().source +
                     " is already registered (from " + find(k->name())->info().source + ")");
  kernels_.push_back(std::move(k));
}
KernelPtr Registry::find(std::string_view name) const {
  for (const KernelPtr& k : kernels_)
    if (k->name() == name) return k;
  return nullptr;
}
KernelPtr Registry::get(std::string_view name) const {
  if (KernelPtr k = find(name)) return k;
  throw InputError("unknown kernel '" + std::string(name) + "' (registered: " + names() + ")");
}
std::string Registry::names() const {
  std::string s;
  for (const KernelPtr& k : kernels_) s += (s.empty() ? "" : ", ") + k->name();
  return s.empty() ? "none" : s;
}

Registry builtin_kernels(Backend b) {
  Registry r;
  for (const pacheck_kernel* d : b == Backend::host ? host_twin_descriptors() : gpu_kernel_descriptors())
    r.add(std::make_shared<AbiKernel>(d, "built-in"));
  return r;
}

// ---- plug-ins ------------------------------------------------------------------------------------

namespace {

// Kernels whose init succeeded and that have a destroy hook, in init order. Never freed: the
// libraries stay loaded for the life of the process, and exit handlers read this list.
std::vector<const pacheck_kernel*>& to_destroy() {
  static auto* v = new std::vector<const pacheck_kernel*>;
  return *v;
}

// One exit handler per kernel, registered right after its init: exit handlers run in reverse,
// so each pops its own kernel, and it runs before any handler its init registered (a GPU
// runtime's teardown), so destroy may still call the runtime.
void destroy_last() {
  auto& v = to_destroy();
  if (v.empty()) return;
  const pacheck_kernel* k = v.back();
  v.pop_back();
  k->destroy(k);
}

// Calls a minor-1 descriptor's init once per process (a library loaded twice, by two --kernel
// options, keeps its first init).
void init_once(const pacheck_kernel* d, const std::string& where) {
  if (!PACHECK_HAS_FIELD(d, pacheck_kernel, destroy)) return;
  static std::vector<const pacheck_kernel*> inited;
  if (std::find(inited.begin(), inited.end(), d) != inited.end()) return;
  if (d->init) {
    const int st = d->init(d);
    if (st != PACHECK_OK)
      throw InputError(where + ": init returned " + std::to_string(st) + ": " + last_error_of(*d));
  }
  inited.push_back(d);
  if (d->destroy) {
    to_destroy().push_back(d);
    std::atexit(destroy_last);
  }
}

}  // namespace

std::vector<KernelPtr> load_plugin(const std::string& spec) {
  std::string path = spec, only;
  // "PATH.so:NAME" -- the last ':' after the library's extension names one kernel.
  if (const size_t colon = spec.rfind(':'); colon != std::string::npos && spec.find(".so", 0) < colon) {
    path = spec.substr(0, colon);
    only = spec.substr(colon + 1);
  }
  // dlopen reads a bare name as "search the system's library path": a library named as a file in
  // the current directory is what the user meant (the README writes --kernel libmykernel.so).
  if (path.find('/') == std::string::npos && ::access(path.c_str(), F_OK) == 0) path = "./" + path;
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) throw InputError("--kernel " + spec + ": cannot load the library: " + cstr(dlerror()));
  // The library stays loaded for the life of the process: descriptors point into it.
  auto entry = reinterpret_cast<pacheck_kernels_fn>(dlsym(lib, PACHECK_KERNELS_SYMBOL));
  if (!entry)
    throw InputError("--kernel " + spec + ": " + path + " does not export the entry point '" +
                     PACHECK_KERNELS_SYMBOL + "' (extern \"C\" PACHECK_EXPORT)");
  uint32_t count = 0;
  const pacheck_kernel* const* list = entry(PACHECK_KERNEL_ABI_VERSION, &count);
  // The count is the plug-in's word: bounded before anything reads the list.
  constexpr uint32_t kMaxKernels = 4096;
  if (list && count > kMaxKernels)
    throw InputError("--kernel " + spec + ": " + path + " says it has " + std::to_string(count) +
                     " kernels; at most " + std::to_string(kMaxKernels) + " are read");
  if (!list || count == 0)
    throw InputError("--kernel " + spec + ": " + path + " returned no kernels for ABI version " +
                     std::to_string(PACHECK_KERNEL_ABI_VERSION));
  std::vector<KernelPtr> out;
  std::string names;
  for (uint32_t i = 0; i < count; ++i) {
    auto k = std::make_shared<AbiKernel>(list[i], path);
    names += (names.empty() ? "" : ", ") + k->name();
    if (!only.empty() && k->name() != only) continue;
    init_once(list[i], path + " kernel '" + k->name() + "'");
    out.push_back(std::move(k));
  }
  if (out.empty()) throw InputError("--kernel " + spec + ": " + path + " has no kernel '" + only + "' (it has " + names + ")");
  return out;
}

}  // namespace pa
