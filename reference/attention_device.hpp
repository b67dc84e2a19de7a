#pragma once
// The fp64 oracle on the GPU: reference/attention.cpp's semantics (its header comment is the
// definition), over the *logical* K/V that make_device_inputs leaves on the device -- never a
// physical layout, a block table or a page. Sums run in a different order than on the CPU, so the
// results are not bit-identical to reference_attention; they agree with it to within
// kOracleAgreement (oracle_disagreement, attention.hpp), which the GPU tests check on generated cases and
// `pacheck run` re-checks on a sample of every run's cases, stating the largest value in the report.
//
// Scratch lives in DeviceBuffers (freed on every path): the logits, sum over sequences of
// q_len * Hq * span doubles (64 MiB at 128k tokens x 64 heads), and rows x chunks x (D + 4)
// partials, with about kTargetBlocks blocks per pass whatever the context. Everything runs on
// stream 0 of the calling thread; the results are downloaded after that stream is synchronised.
//
// Agreement with the CPU oracle (kOracleAgreement): every quantity has its definition; only the
// grouping of sums differs. The dot products q . k_j and the quadrature sums are even computed in
// the CPU's order (one accumulator, d increasing; the build has no FMA contraction: --fmad=false,
// -ffp-contract=off), so the logits are the CPU's bits up to tanh (soft-cap) -- which keeps the
// discontinuous "e_j < 1" test of pv_rms on the same keys as on the CPU when logits tie. Within a
// chunk the P.V and uniform sums run over j increasing, as on the CPU; the chunk partials are then
// added in chunk order. exp, log and tanh are the device's (CUDA: within 1-2 ulp), which is far
// inside 1e-12 relative.
#include <string>

#include "inputs/inputs_device.hpp"
#include "reference/attention.hpp"

namespace pa {

/// reference_attention on the device inputs; every field of ReferenceResult is filled.
/// @pre in was made by make_device_inputs (valid case)
ReferenceResult reference_attention_device(const DeviceInputs& in);

}  // namespace pa
