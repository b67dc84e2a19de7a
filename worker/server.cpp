#include "worker/server.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "worker/protocol.hpp"

namespace pa::worker {

namespace {

constexpr int kMemFd = 3, kInFd = 4, kOutFd = 5;

void send(const nlohmann::json& j) {
  const std::string s = j.dump() + "\n";
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

template <class T>
View<T> view(const Mapping& m, const nlohmann::json& buffers, const char* name) {
  if (!buffers.contains(name)) return {};
  const size_t off = buffers.at(name).at(0).get<size_t>(), bytes = buffers.at(name).at(1).get<size_t>();
  if (bytes == 0) return {};
  if (off + bytes > m.size) throw std::runtime_error(std::string("buffer '") + name + "' lies outside the shared memory");
  return {reinterpret_cast<const T*>(m.base + off), bytes / sizeof(T)};
}

const Kernel* find(const std::vector<KernelPtr>& kernels, const std::string& name) {
  for (const KernelPtr& k : kernels)
    if (k->name() == name) return k.get();
  return nullptr;
}

nlohmann::json handle(const std::vector<KernelPtr>& kernels, Mapping& mem, const nlohmann::json& req) {
  const std::string type = req.value("type", std::string());
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
  if (type != "run") return {{"type", type}, {"ok", false}, {"error", "unknown request type '" + type + "'"}};
  mem.ensure(req.at("capacity").get<size_t>());
  const nlohmann::json& b = req.at("buffers");
  KernelCall call;
  call.problem = p;
  call.q = view<uint16_t>(mem, b, "q");
  call.k_cache = view<uint8_t>(mem, b, "k_cache");
  call.v_cache = view<uint8_t>(mem, b, "v_cache");
  call.k_scales = view<float>(mem, b, "k_scales");
  call.v_scales = view<float>(mem, b, "v_scales");
  call.block_tables = view<int32_t>(mem, b, "block_tables");
  call.context_lens = view<int32_t>(mem, b, "context_lens");
  call.alibi_slopes = view<float>(mem, b, "alibi_slopes");
  call.sinks = view<float>(mem, b, "sinks");
  const KernelOutput o = k->run(call, Device{});
  nlohmann::json resp = {{"type", type}, {"ok", true}, {"elapsed_ms", o.elapsed_ms}};
  if (o.status == Status::NotSupported) {
    resp["status"] = "not_supported";
    resp["error"] = o.reason;
    return resp;
  }
  if (o.status != Status::Ok) {
    resp["status"] = "error";
    resp["error"] = (o.metric.empty() ? "" : o.metric + ": ") + o.reason;
    return resp;
  }
  // The marshalling ran the kernel on its own guarded buffers; hand its results back as codes.
  const DType qt = DType(p.q_dtype);
  const size_t out_off = b.at("out").at(0).get<size_t>();
  for (size_t i = 0; i < o.out.size(); ++i) {
    const uint16_t code = uint16_t(codec::encode(qt, o.out[i]));
    std::memcpy(mem.base + out_off + i * size_t(dtype_bytes(qt)), &code, size_t(dtype_bytes(qt)));
  }
  if (!o.lse.empty() && b.contains("lse") && b.at("lse").at(1).get<size_t>() >= o.lse.size() * 4)
    std::memcpy(mem.base + b.at("lse").at(0).get<size_t>(), o.lse.data(), o.lse.size() * 4);
  resp["status"] = "ok";
  resp["wrote_lse"] = !o.lse.empty();
  return resp;
}

}  // namespace

int serve(const std::vector<KernelPtr>& kernels) {
  nlohmann::json hello = {{"type", "hello"}, {"protocol", kProtocolVersion}, {"ok", true}};
  nlohmann::json list = nlohmann::json::array();
  for (const KernelPtr& k : kernels) {
    const auto* abi = dynamic_cast<const AbiKernel*>(k.get());
    list.push_back(kernel_to_json(*k, abi && abi->descriptor().supports));
  }
  hello["kernels"] = list;
  send(hello);
  Mapping mem;
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
      nlohmann::json resp;
      try {
        resp = handle(kernels, mem, nlohmann::json::parse(line));
      } catch (const std::exception& e) {
        resp = {{"ok", false}, {"error", std::string("malformed request: ") + e.what()}};
      }
      send(resp);
    }
  }
}

}  // namespace pa::worker
