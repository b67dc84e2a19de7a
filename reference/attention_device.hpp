#pragma once
// The fp64 oracle on the GPU: reference/attention.cpp's semantics (its header comment is the
// definition), over the *logical* K/V that make_device_inputs leaves on the device -- never a
// physical layout, a block table or a page. Sums run in a different order than on the CPU, so the
// results are not bit-identical to reference_attention; they agree with it to within
// kOracleAgreement (oracle_disagreement, attention.hpp), which the GPU tests check on generated cases and
// `pacheck run` re-checks on a sample of every run's cases, stating the largest value in the report.
#include <string>

#include "inputs/inputs_device.hpp"
#include "reference/attention.hpp"

namespace pa {

/// reference_attention on the device inputs; every field of ReferenceResult is filled.
/// @pre in was made by make_device_inputs (valid case)
ReferenceResult reference_attention_device(const DeviceInputs& in);

}  // namespace pa
