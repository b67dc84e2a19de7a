#pragma once
// Shared by the host-twin unit tests: the twins by name and a judge through the testbed's one
// judge (output, aggregate checks and LSE against the CPU oracle). Generated cases inside each
// twin's capability are the property suite's (`property/`, `pacheck check`), not drawn here.
#include <string>

#include "kernels/kernel.hpp"
#include "reference/attention.hpp"
#include "testbed/testbed.hpp"

namespace pa::twin_test {

inline const Registry& host_twins() {
  static const Registry r = builtin_kernels(Backend::host);
  return r;
}
inline const Kernel& twin(const std::string& p) { return *host_twins().get(p); }

/// Runs p's host twin on c through the one judge; "" when it passes, else the failure message.
inline std::string judge(const std::string& p, const Case& c, const Device& dev) {
  const Inputs in = make_inputs(c);
  const PathRecord v = run_and_judge(twin(p), c, make_call(in, pack(in)), reference_attention(in), dev);
  if (v.status == Status::Ok) return "";
  return std::string(to_string(v.status)) + " " + v.metric + ": " + v.message + " [" + v.tolerance.model + "]";
}

}  // namespace pa::twin_test
