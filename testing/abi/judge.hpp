#pragma once
// The judgement the testbed gives one case of a loaded kernel, in a form the ABI tests can
// assert on: "" when the kernel takes the case and its output is within the tolerance its
// declared numerics earn; otherwise "declined: WHY", the kernel's status and reason, or the
// verdict's message.
#include <string>

#include "kernels/kernel.hpp"
#include "reference/attention.hpp"

namespace pa::abi_test {

inline std::string judge(const Kernel& k, const Case& c, const Device& dev) {
  if (auto why = k.decline_reason(c, dev)) return "declined: " + *why;
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  const KernelOutput got = k.run(make_call(in, kv), dev);
  if (got.status != Status::Ok) return std::string(to_string(got.status)) + ": " + got.reason;
  const ReferenceResult ref = reference_attention(in);
  const Tolerance tol = tolerance_for(k.error_model(c), ref.stats);
  const Verdict v = verdict(compare(got.out, ref.out, tol, ref.uniform), tol, output_shape(c));
  if (v.status != Status::Ok) return "Fail " + v.metric + ": " + v.message;
  const Verdict lv = verdict(compare_lse(got.lse, ref.lse, k.error_model(c), ref.stats), lse_shape(c));
  if (lv.status != Status::Ok) return "Fail " + lv.metric + ": " + lv.message;
  return "";
}

/// The one kernel of the test plug-in at `so`.
inline KernelPtr load_one(const std::string& so) { return load_plugin(so).at(0); }

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace pa::abi_test
