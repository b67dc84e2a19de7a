#include "worker/server.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "core/json_input.hpp"
#include "worker/protocol.hpp"

namespace pa::worker {

namespace {

constexpr int kMemFd = 3, kInFd = 4, kOutFd = 5;

void send(const nlohmann::json& j) {
  // Names and messages come from the kernel: invalid UTF-8 is replaced, never a throw.
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(kOutFd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(3);  // the parent is gone
    done += size_t(n);
  }
}

struct Mapping {
  uint8_t* base = nullptr;
  size_t size = 0;
  void ensure(size_t capacity) {
    if (base && size == capacity) return;
    if (base) ::munmap(base, size);
    void* m = ::mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_SHARED, kMemFd, 0);
    if (m == MAP_FAILED) throw std::runtime_error(std::string("mmap of the shared memory: ") + std::strerror(errno));
    base = static_cast<uint8_t*>(m);
    size = capacity;
  }
};

// Where buffer `b` lies in the shared memory: null for an absent or empty buffer. Throws when the
// request places it outside the mapping.
void* place(const Mapping& m, const nlohmann::json& buffers, Buf b, size_t* bytes) {
  *bytes = 0;
  const char* name = to_string(b);
  if (!buffers.contains(name)) return nullptr;
  const size_t off = buffers.at(name).at(0).get<size_t>(), n = buffers.at(name).at(1).get<size_t>();
  if (n == 0) return nullptr;
  if (off > m.size || n > m.size - off) throw std::runtime_error(std::string("buffer '") + name + "' lies outside the shared memory");
  *bytes = n;
  return m.base + off;
}

const Kernel* find(const std::vector<KernelPtr>& kernels, const std::string& name) {
  for (const KernelPtr& k : kernels)
    if (k->name() == name) return k.get();
  return nullptr;
}

// The plans this worker made (plan requests), by the id it answered with; released by a release
// request or when the worker ends.
struct Plans {
  std::map<int64_t, PlanPtr> by_id;
  int64_t next = 1;
};

std::vector<int32_t> ints(const nlohmann::json& j, const char* key) {
  return j.contains(key) && !j.at(key).is_null() ? j.at(key).get<std::vector<int32_t>>() : std::vector<int32_t>{};
}

nlohmann::json plan_request(const pacheck_kernel& desc, Memory memory, const pacheck_problem& p, const nlohmann::json& req,
                            Plans& plans) {
  const nlohmann::json& jb = req.at("batch");
  const std::vector<int32_t> cu = ints(jb, "cu_seqlens_q"), ctx = ints(jb, "context_lens"),
                             indptr = ints(jb, "kv_indptr"), last = ints(jb, "kv_last_page_len");
  if (ctx.size() != size_t(p.num_seqs) || cu.size() != size_t(p.num_seqs) + 1)
    throw std::runtime_error("the plan's batch does not hold num_seqs sequences");
  PlanBatch b;
  b.cu_seqlens_q = cu;
  b.context_lens = ctx;
  b.kv_indptr = indptr;
  b.kv_last_page_len = last;
  PlanPtr plan;
  std::string error;
  const int st = memory == Memory::host ? plan_abi(desc, p, b, nullptr, &plan, &error)
                                        : plan_device(desc, p, b, &plan, &error);
  nlohmann::json resp = {{"type", "plan"}, {"ok", true}, {"status", st}};
  if (st != PACHECK_OK) {
    resp["error"] = error;
    return resp;
  }
  const int64_t id = plans.next++;
  plans.by_id[id] = plan;
  resp["plan"] = id;
  return resp;
}

nlohmann::json handle(const std::vector<KernelPtr>& kernels, Mapping& mem, Plans& plans, const nlohmann::json& req,
                      bool* fatal) {
  const std::string type = req.value("type", std::string());
  if (type == "release") {  // needs no kernel: the plan knows its own
    plans.by_id.erase(req.at("plan").get<int64_t>());
    return {{"type", type}, {"ok", true}};
  }
  const Kernel* k = find(kernels, req.value("kernel", std::string()));
  if (!k) return {{"type", type}, {"ok", false}, {"error", "unknown kernel '" + req.value("kernel", std::string()) + "'"}};
  const pacheck_problem p = problem_from_json(req.at("problem"));
  const auto* abi = dynamic_cast<const AbiKernel*>(k);
  if (type == "supports") {
    if (!abi || !abi->descriptor().supports) return {{"type", type}, {"ok", true}, {"supports", true}};
    char why[512] = {0};
    const int yes = abi->descriptor().supports(&abi->descriptor(), &p, why, sizeof why);
    why[sizeof why - 1] = 0;
    return {{"type", type}, {"ok", true}, {"supports", yes != 0}, {"why", std::string(why)}};
  }
  if (type == "workspace") {
    const uint64_t bytes = abi && abi->descriptor().workspace_bytes ? abi->descriptor().workspace_bytes(&abi->descriptor(), &p) : 0;
    return {{"type", type}, {"ok", true}, {"bytes", bytes}};
  }
  if (type == "plan") {
    if (!abi) return {{"type", type}, {"ok", false}, {"error", "kernel '" + k->name() + "' has no descriptor"}};
    return plan_request(abi->descriptor(), k->info().memory, p, req, plans);
  }
  if (type != "run") return {{"type", type}, {"ok", false}, {"error", "unknown request type '" + type + "'"}};
  mem.ensure(req.at("capacity").get<size_t>());
  // The launch crosses on the client's buffers in place: the client laid them out, poisoned the
  // outputs and checks their guards; nothing is copied or decoded here.
  const nlohmann::json& spec = req.at("buffers");
  LaunchBuffers lb;
  lb.problem = p;
  std::array<void*, kBufCount> at{};
  for_each_buf([&](Buf b) {
    at[size_t(b)] = place(mem, spec, b, &lb.bytes[size_t(b)]);
    if (!is_output(b)) lb.src[size_t(b)] = at[size_t(b)];
  });
  if (!abi) return {{"type", type}, {"ok", false}, {"error", "kernel '" + k->name() + "' has no descriptor"}};
  const pacheck_kernel& desc = abi->descriptor();
  // host views of the shared memory: the batch a plan step reads, and the device crossing's inputs
  KernelCall call = call_over(lb);
  call.batch = {call.cu_seqlens_q, call.context_lens, call.kv_indptr, call.kv_last_page_len};
  if (req.contains("plan")) {
    const auto it = plans.by_id.find(req.at("plan").get<int64_t>());
    if (it == plans.by_id.end())
      return {{"type", type}, {"ok", false}, {"error", "this worker holds no plan " + req.at("plan").dump()}};
    call.plan = it->second;
  }
  const bool unplanned = req.value("unplanned", false);
  Crossed x;
  if (k->info().memory == Memory::host) {
    x = launch_host(desc, p, abi_buffers(at, lb), via(call, unplanned));
  } else {
    if (lb.size(Buf::out) < out_bytes(p) || lb.size(Buf::lse) < lse_bytes(p))
      return {{"type", type}, {"ok", false}, {"error", "the out or lse buffer is smaller than the problem's"}};
    x = cross_device(desc, call, at[size_t(Buf::out)], static_cast<float*>(at[size_t(Buf::lse)]), unplanned);
  }
  nlohmann::json resp = {{"type", type}, {"ok", true}};
  crossed_to_json(x, resp);
  resp["wrote_lse"] = x.status == PACHECK_OK && p.want_lse;
  if (x.sticky) *fatal = true;  // a sticky device fault poisons this process: answer, then end
  return resp;
}

}  // namespace

int serve(const std::vector<KernelPtr>& kernels) {
  const pid_t self = ::getpid();
  nlohmann::json hello = {{"type", "hello"}, {"protocol", kProtocolVersion}, {"ok", true}};
  nlohmann::json list = nlohmann::json::array();
  for (const KernelPtr& k : kernels) {
    const auto* abi = dynamic_cast<const AbiKernel*>(k.get());
    list.push_back(kernel_to_json(*k, abi && abi->descriptor().supports, abi && abi->descriptor().workspace_bytes));
  }
  hello["kernels"] = list;
  send(hello);
  Mapping mem;
  Plans plans;
  std::string pending;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(kInFd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  // the parent closed the pipe: done
    pending.append(buf, size_t(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      nlohmann::json resp, id;
      bool fatal = false;
      try {
        const nlohmann::json req = parse_json(line, "request");
        if (req.is_object() && req.contains("id")) id = req["id"];
        resp = handle(kernels, mem, plans, req, &fatal);
      } catch (const std::exception& e) {
        resp = {{"ok", false}, {"error", std::string("malformed request: ") + e.what()}};
      }
      if (::getpid() != self) ::_exit(0);  // a kernel forked and its copy came back here: it must not answer
      if (!id.is_null()) resp["id"] = id;
      send(resp);
      if (fatal) ::_exit(4);  // the client records the sticky fault; the next request starts a fresh worker
    }
  }
}

}  // namespace pa::worker
