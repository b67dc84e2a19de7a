#pragma once
// The JSON side of the worker protocol (docs/worker-protocol.md): the problem, the capability and
// the numerics of a kernel in the ABI's vocabulary, by name. One home for these conversions, so
// the C++ worker, the client and `pacheck kernels --json` say the same thing.
#include <string>

#include <nlohmann/json.hpp>

#include "core/capability.hpp"
#include "kernels/crossing.hpp"
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
nlohmann::json kernel_to_json(const Kernel& k, bool has_supports, bool has_workspace);

/// What a launch in the worker came back with (kernels/crossing.hpp), as the "run" response
/// carries it: status "ok" | "not_supported" | "error" | "skipped", the kernel's own status code,
/// its error text, a device fault (sticky or not) and a broken guard. The client turns it into a
/// record through the same outcome() as a launch in process, so a fault gets one verdict whatever
/// the isolation mode. Responses of older workers (status and error only) read the same.
void crossed_to_json(const Crossed& x, nlohmann::json& resp);
Crossed crossed_from_json(const nlohmann::json& resp);

}  // namespace pa::worker
