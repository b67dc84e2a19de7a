#include "kernels/crossing.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>

#include <sys/mman.h>

namespace pa {

const char* to_string(Buf b) {
  static constexpr const char* kNames[kBufCount] = {"q", "k_cache", "v_cache", "k_scales", "v_scales",
                                                    "block_tables", "context_lens", "alibi_slopes", "sinks",
                                                    "cu_seqlens_q", "kv_indptr", "kv_indices",
                                                    "kv_last_page_len", "workspace", "out", "lse"};
  return kNames[size_t(b)];
}

namespace {
template <class T>
void set(LaunchBuffers& lb, Buf b, const View<T>& v) {
  lb.src[size_t(b)] = v.empty() ? nullptr : v.data;
  lb.bytes[size_t(b)] = v.empty() ? 0 : v.size * sizeof(T);
}
}  // namespace

LaunchBuffers launch_buffers(const KernelCall& call, uint64_t workspace_bytes) {
  LaunchBuffers lb;
  lb.problem = call.problem;
  lb.memory = call.memory;
  set(lb, Buf::q, call.q);
  set(lb, Buf::k_cache, call.k_cache);
  set(lb, Buf::v_cache, call.v_cache);
  set(lb, Buf::k_scales, call.k_scales);
  set(lb, Buf::v_scales, call.v_scales);
  set(lb, Buf::block_tables, call.block_tables);
  set(lb, Buf::context_lens, call.context_lens);
  set(lb, Buf::alibi_slopes, call.alibi_slopes);
  set(lb, Buf::sinks, call.sinks);
  set(lb, Buf::cu_seqlens_q, call.cu_seqlens_q);
  set(lb, Buf::kv_indptr, call.kv_indptr);
  set(lb, Buf::kv_indices, call.kv_indices);
  set(lb, Buf::kv_last_page_len, call.kv_last_page_len);
  lb.bytes[size_t(Buf::workspace)] = size_t(workspace_bytes);
  lb.bytes[size_t(Buf::out)] = out_bytes(call.problem);
  lb.bytes[size_t(Buf::lse)] = lse_bytes(call.problem);
  return lb;
}

namespace {
template <class T>
View<T> view_of(const LaunchBuffers& lb, Buf b) {
  return {static_cast<const T*>(lb.at(b)), lb.size(b) / sizeof(T)};
}
}  // namespace

KernelCall call_over(const LaunchBuffers& lb) {
  KernelCall call;
  call.problem = lb.problem;
  call.memory = lb.memory;
  call.q = view_of<uint16_t>(lb, Buf::q);
  call.k_cache = view_of<uint8_t>(lb, Buf::k_cache);
  call.v_cache = view_of<uint8_t>(lb, Buf::v_cache);
  call.k_scales = view_of<float>(lb, Buf::k_scales);
  call.v_scales = view_of<float>(lb, Buf::v_scales);
  call.block_tables = view_of<int32_t>(lb, Buf::block_tables);
  call.context_lens = view_of<int32_t>(lb, Buf::context_lens);
  call.alibi_slopes = view_of<float>(lb, Buf::alibi_slopes);
  call.sinks = view_of<float>(lb, Buf::sinks);
  call.cu_seqlens_q = view_of<int32_t>(lb, Buf::cu_seqlens_q);
  call.kv_indptr = view_of<int32_t>(lb, Buf::kv_indptr);
  call.kv_indices = view_of<int32_t>(lb, Buf::kv_indices);
  call.kv_last_page_len = view_of<int32_t>(lb, Buf::kv_last_page_len);
  return call;
}

pacheck_buffers abi_buffers(const std::array<void*, kBufCount>& at, const LaunchBuffers& lb) {
  const auto p = [&](Buf b) { return lb.size(b) ? at[size_t(b)] : nullptr; };
  pacheck_buffers b{};
  b.struct_size = sizeof b;
  b.q = p(Buf::q);
  b.k_cache = p(Buf::k_cache);
  b.v_cache = p(Buf::v_cache);
  b.k_scales = static_cast<const float*>(p(Buf::k_scales));
  b.v_scales = static_cast<const float*>(p(Buf::v_scales));
  b.block_tables = static_cast<const int32_t*>(p(Buf::block_tables));
  b.context_lens = static_cast<const int32_t*>(p(Buf::context_lens));
  b.alibi_slopes = static_cast<const float*>(p(Buf::alibi_slopes));
  b.sinks = static_cast<const float*>(p(Buf::sinks));
  b.workspace = p(Buf::workspace);
  b.workspace_bytes = lb.size(Buf::workspace);
  b.out = p(Buf::out);
  b.lse = static_cast<float*>(p(Buf::lse));
  b.device_id = -1;  // host memory; the device crossing names its device
  b.cu_seqlens_q = static_cast<const int32_t*>(p(Buf::cu_seqlens_q));
  b.kv_indptr = static_cast<const int32_t*>(p(Buf::kv_indptr));
  b.kv_indices = static_cast<const int32_t*>(p(Buf::kv_indices));
  b.kv_last_page_len = static_cast<const int32_t*>(p(Buf::kv_last_page_len));
  return b;
}

// ---- the host span -------------------------------------------------------------------------------

namespace {
constexpr size_t kAlign = 64;
size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
// An output takes its body between two guards; an input copied in takes its body.
size_t footprint(const LaunchBuffers& lb, Buf b, bool copy_inputs) {
  if (is_output(b)) return 2 * kGuardBytes + aligned(lb.size(b));
  return copy_inputs ? aligned(lb.size(b)) : 0;
}
}  // namespace

size_t HostSpace::bytes_needed(const LaunchBuffers& lb, bool copy_inputs) {
  size_t n = 0;
  for_each_buf([&](Buf b) { n += footprint(lb, b, copy_inputs); });
  return n;
}

HostSpace::HostSpace(uint8_t* base, const LaunchBuffers& lb, bool copy_inputs)
    : copied_(copy_inputs), lb_(&lb), base_(base) {
  size_t at = 0;
  for_each_buf([&](Buf b) {
    const size_t i = size_t(b), n = lb.size(b);
    if (is_output(b)) {
      uint8_t* head = base + at;
      for (size_t k = 0; k < kGuardBytes; ++k) head[k] = canary(k);
      off_[i] = at + kGuardBytes;
      std::memset(base + off_[i], kPoison, n);
      uint8_t* tail = base + off_[i] + n;
      for (size_t k = 0; k < kGuardBytes; ++k) tail[k] = canary(k);
      ptr_[i] = n ? base + off_[i] : nullptr;
    } else if (copy_inputs) {
      off_[i] = at;
      if (n) std::memcpy(base + at, lb.at(b), n);
      ptr_[i] = n ? base + at : nullptr;
    } else {
      ptr_[i] = const_cast<void*>(lb.at(b));
    }
    at += footprint(lb, b, copy_inputs);
  });
}

std::string HostSpace::overrun() const {
  for (Buf b : {Buf::out, Buf::lse, Buf::workspace}) {
    const size_t n = lb_->size(b);
    const uint8_t* body = base_ + off_[size_t(b)];
    for (size_t k = 0; k < kGuardBytes; ++k) {
      if (body[-ptrdiff_t(kGuardBytes) + ptrdiff_t(k)] != canary(k))
        return std::string("the kernel wrote outside its '") + to_string(b) + "' buffer (" + std::to_string(n) +
               " bytes), " + std::to_string(kGuardBytes - k) + " bytes before it";
      if (body[n + k] != canary(k))
        return std::string("the kernel wrote outside its '") + to_string(b) + "' buffer (" + std::to_string(n) +
               " bytes), at byte " + std::to_string(n + k);
    }
  }
  return "";
}

std::string input_written_at(const std::string& name, size_t bytes, size_t at) {
  return "the kernel wrote its input '" + name + "' (" + std::to_string(bytes) + " bytes) at byte " + std::to_string(at);
}

std::string input_written(const std::string& name, const void* got, const void* want, size_t bytes) {
  const auto* g = static_cast<const uint8_t*>(got);
  const auto* w = static_cast<const uint8_t*>(want);
  if (bytes == 0 || std::memcmp(g, w, bytes) == 0) return "";
  size_t k = 0;
  while (g[k] == w[k]) ++k;
  return input_written_at(name, bytes, k);
}

std::string HostSpace::written() const {
  if (!copied_) return "";
  std::string first;
  for_each_buf([&](Buf b) {
    if (!is_output(b) && first.empty()) first = input_written(to_string(b), ptr_[size_t(b)], lb_->at(b), lb_->size(b));
  });
  return first;
}

// ---- what came back -------------------------------------------------------------------------------

KernelOutput outcome(const Crossed& x) {
  KernelOutput r;
  r.elapsed_ms = x.elapsed_ms;
  const auto fail = [&](const char* metric, std::string reason) {
    r.status = Status::Fail;
    r.metric = metric;
    r.reason = std::move(reason);
    return r;
  };
  if (!x.skipped.empty()) {
    r.status = Status::Skipped;
    r.reason = x.skipped;
    return r;
  }
  if (x.status == PACHECK_NOT_SUPPORTED) {
    r.status = Status::NotSupported;
    r.reason = x.error;
    return r;
  }
  if (x.status != PACHECK_OK) return fail("kernel_error", "launch returned " + std::to_string(x.status) + ": " + x.error);
  if (x.sticky) return fail("crash", "sticky device fault: " + x.fault + " (the process that ran it was ended)");
  if (!x.fault.empty()) return fail("kernel_error", "kernel execution failed: " + x.fault);
  if (!x.overrun.empty()) return fail("guard", x.overrun);
  if (!x.written.empty()) return fail("input_written", x.written);
  r.instance = x.instance;
  if (!x.instance.empty())
    return fail("instance", "the kernel reports that instance '" + x.instance +
                                "' served the launch, not itself: a silent fallback to another implementation");
  return r;
}

void take_outputs(const pacheck_problem& p, const void* out_codes, const float* lse, KernelOutput& r) {
  const DType qt = DType(p.q_dtype);
  const size_t eb = size_t(dtype_bytes(qt));
  const auto* bytes = static_cast<const uint8_t*>(out_codes);
  r.out.resize(size_t(out_rows(p) * head_size_v(p)));
  for (size_t i = 0; i < r.out.size(); ++i) {
    uint16_t code = 0;
    std::memcpy(&code, bytes + i * eb, eb);
    r.out[i] = codec::decode(qt, code);
  }
  if (lse) r.lse.assign(lse, lse + out_rows(p));
}

std::string last_error_of(const pacheck_kernel& k) {
  const char* e = k.last_error ? k.last_error(&k) : nullptr;
  return e && *e ? e : "(the kernel gave no last_error)";
}

AbiPlan::~AbiPlan() { k_.release_plan(&k_, handle_); }

bool has_plan_step(const pacheck_kernel& k) {
  return PACHECK_HAS_FIELD(&k, pacheck_kernel, release_plan) && k.plan && k.launch_planned && k.release_plan;
}

pacheck_plan_batch abi_batch(const PlanBatch& b) {
  pacheck_plan_batch a{};
  a.struct_size = sizeof a;
  a.cu_seqlens_q = b.cu_seqlens_q.data;
  a.context_lens = b.context_lens.data;
  a.kv_indptr = b.kv_indptr.empty() ? nullptr : b.kv_indptr.data;
  a.kv_last_page_len = b.kv_last_page_len.empty() ? nullptr : b.kv_last_page_len.data;
  return a;
}

int plan_abi(const pacheck_kernel& k, const pacheck_problem& p, const PlanBatch& batch, void* stream, PlanPtr* plan,
             std::string* error) {
  if (!has_plan_step(k)) {
    *error = "the kernel has no plan step";
    return PACHECK_NOT_SUPPORTED;
  }
  const pacheck_plan_batch ab = abi_batch(batch);
  void* handle = nullptr;
  const int st = k.plan(&k, &p, &ab, stream, &handle);
  if (st != PACHECK_OK) {
    *error = last_error_of(k);
    if (handle) k.release_plan(&k, handle);  // a half-made plan is still the kernel's to free
    return st;
  }
  *plan = std::make_shared<AbiPlan>(k, p, handle);
  return PACHECK_OK;
}

LaunchVia via(const KernelCall& call, bool unplanned) {
  LaunchVia v;
  v.plan = call.plan.get();
  v.batch = call.batch;
  v.unplanned = unplanned;
  return v;
}

int launch_abi(const pacheck_kernel& k, const pacheck_problem& p, const pacheck_buffers& b, void* stream,
               const LaunchVia& v, std::string* error, PlanPtr* keep) {
  int st = PACHECK_OK;
  if (v.unplanned || !has_plan_step(k)) {
    st = k.launch(&k, &p, &b, stream);
  } else if (v.plan) {
    const auto* mine = dynamic_cast<const AbiPlan*>(v.plan);
    if (!mine || &mine->kernel() != &k) {
      *error = "pacheck handed the kernel a plan another kernel made (pacheck's bug)";
      return PACHECK_ERROR;
    }
    st = k.launch_planned(&k, mine->handle(), &p, &b, stream);
  } else {
    PlanPtr plan;
    st = plan_abi(k, p, v.batch, stream, &plan, error);
    if (st != PACHECK_OK) {
      *error = "plan: " + *error;
      return st;
    }
    st = k.launch_planned(&k, static_cast<const AbiPlan&>(*plan).handle(), &p, &b, stream);
    if (keep) *keep = std::move(plan);
  }
  if (st != PACHECK_OK) *error = last_error_of(k);
  return st;
}

Crossed launch_host(const pacheck_kernel& k, const pacheck_problem& p, const pacheck_buffers& b, const LaunchVia& v) {
  Crossed x;
  const auto t0 = std::chrono::steady_clock::now();
  x.status = launch_abi(k, p, b, nullptr, v, &x.error);
  x.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (x.status == PACHECK_OK) x.instance = instance_of(k);
  return x;
}

std::string instance_of(const pacheck_kernel& k) {
  if (!PACHECK_HAS_FIELD(&k, pacheck_kernel, instance) || !k.instance) return "";
  const char* ran = k.instance(&k);
  if (!ran || !*ran || (k.name && std::string(ran) == k.name)) return "";
  return std::string(ran).substr(0, 200);
}

namespace {
// A thread's launch span: anonymous memory in 2 MiB huge pages where the kernel allows them. A
// split kernel's workspace can take hundreds of megabytes; in 4 KiB pages, first touching it
// (the poison written before the launch) cost more page faults than the launch itself. Not
// zeroed: HostSpace writes every byte it lays out.
class HostSpan {
 public:
  HostSpan() = default;
  HostSpan(const HostSpan&) = delete;
  HostSpan& operator=(const HostSpan&) = delete;
  ~HostSpan() { release(); }
  uint8_t* at_least(size_t need) {
    if (need <= bytes_) return p_;
    release();
    constexpr size_t kHuge = size_t(2) << 20;
    const size_t bytes = (std::max<size_t>(need, 1) + kHuge - 1) / kHuge * kHuge;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    (void)madvise(p, bytes, MADV_HUGEPAGE);  // advice only: 4 KiB pages where refused
    p_ = static_cast<uint8_t*>(p);
    bytes_ = bytes;
    return p_;
  }
  size_t bytes() const { return bytes_; }
  void release() {
    if (p_) munmap(p_, bytes_);
    p_ = nullptr;
    bytes_ = 0;
  }

 private:
  uint8_t* p_ = nullptr;
  size_t bytes_ = 0;
};
}  // namespace

KernelOutput cross_host(const pacheck_kernel& k, const KernelCall& call, bool unplanned) {
  const uint64_t ws = k.workspace_bytes ? k.workspace_bytes(&k, &call.problem) : 0;
  const LaunchBuffers lb = launch_buffers(call, ws);
  // The inputs are copied in: a kernel that writes one writes its own copy (the next kernel of
  // the case still reads the case's bytes), and the copy is compared afterwards. The span is this
  // thread's and outlives the launch: every launch of a thread sees its buffers at the same
  // addresses (a kernel that caches results by pointer meets other inputs there, as it would in
  // an engine's reused pools), and HostSpace writes every byte it lays out, so nothing of the
  // previous launch survives in it. A span grown past 1 GiB is released after the launch.
  thread_local HostSpan span;
  const size_t need = HostSpace::bytes_needed(lb, true);
  struct Trim {
    ~Trim() {
      if (span.bytes() > (size_t(1) << 30)) span.release();
    }
  } trim;
  const HostSpace space(span.at_least(need), lb, true);
  std::array<void*, kBufCount> at{};
  for_each_buf([&](Buf b) { at[size_t(b)] = space.at(b); });
  Crossed x = launch_host(k, call.problem, abi_buffers(at, lb), via(call, unplanned));
  if (x.status == PACHECK_OK) {
    x.overrun = space.overrun();
    x.written = space.written();
  }
  KernelOutput r = outcome(x);
  if (r.status == Status::Ok)
    take_outputs(call.problem, space.at(Buf::out), call.problem.want_lse ? static_cast<const float*>(space.at(Buf::lse)) : nullptr, r);
  return r;
}

KernelOutput run_device(const pacheck_kernel& k, const KernelCall& call, bool unplanned) {
  std::vector<uint8_t> out(out_bytes(call.problem));
  std::vector<float> lse(size_t(lse_bytes(call.problem) / 4));
  const Crossed x = cross_device(k, call, out.data(), lse.data(), unplanned);
  KernelOutput r = outcome(x);
  if (r.status == Status::Ok) take_outputs(call.problem, out.data(), call.problem.want_lse ? lse.data() : nullptr, r);
  return r;
}

}  // namespace pa
