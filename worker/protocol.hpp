#pragma once
// The JSON side of the worker protocol (docs/worker-protocol.md): the problem, the capability and
// the numerics of a kernel in the ABI's vocabulary, by name. One home for these conversions, so
// the C++ worker, the client and `pacheck kernels --json` say the same thing.
#include <string>

#include <nlohmann/json.hpp>

#include "core/capability.hpp"
#include "kernels/kernel.hpp"

namespace pa::worker {

inline constexpr int kProtocolVersion = 1;

nlohmann::json problem_to_json(const pacheck_problem& p);
/// Throws InputError naming the field.
pacheck_problem problem_from_json(const nlohmann::json& j);

nlohmann::json capability_to_json(const Capability& c);
Capability capability_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json numerics_to_json(const Numerics& n);
Numerics numerics_from_json(const nlohmann::json& j, const std::string& where);

/// A kernel's entry of the hello message.
nlohmann::json kernel_to_json(const Kernel& k, bool has_supports);

}  // namespace pa::worker
