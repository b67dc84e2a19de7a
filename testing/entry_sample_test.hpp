#pragma once
// The sample of the dispatcher's cross-product that the entry tests run end to end (host twins in
// entry_test, the GPU kernels in entry_gpu_test): the property suite's generators (one case
// vocabulary), drawn from an Rng so both backends see the same cases. Three draws in four lie
// inside one built-in kernel's declaration (its home ground), one anywhere (mostly refusals).
#include <algorithm>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "core/device.hpp"
#include "core/prng.hpp"
#include "kernels/kernel.hpp"
#include "property/generators.hpp"
#include "reference/attention.hpp"

namespace pa::test {

inline std::vector<std::pair<std::string, int64_t>> out_shape(const Case& c) { return output_shape(c); }

// A device model whose CU count puts this case on the requested side of the asm threshold, so
// both routes are reachable with the few sequences a host test can afford. The fp8 flavour stays
// the base device's, so flavour refusals are exercised too.
inline Device scaled(Device dev, const Case& c, bool high) {
  const int64_t work = int64_t(c.num_seqs) * c.num_q_heads;
  dev.cu_count = int32_t(high ? std::max<int64_t>(0, (work - 1) / 2) : (work + 1) / 2);
  dev.name += "-cu" + std::to_string(dev.cu_count);
  return dev;
}

struct Sampled {
  Case c;
  Device dev;
};

/// `fixed`, when given, replaces the drawn device model (the GPU test runs on the present GPU).
inline Sampled sample_case(Rng& rng, const Device* fixed = nullptr) {
  static const Device kDevices[] = {device_mi300x(), device_mi355x(), device_h100()};
  static const Registry declared = builtin_kernels(Backend::host);  // the declarations, alike on both backends
  gen::Limits lim;  // short contexts around page and partition boundaries: a host test's budget
  lim.max_seqs = 2;
  lim.max_context = 300;
  lim.long_context = 300;
  lim.big_pools = false;
  const Device base = fixed ? *fixed : kDevices[size_t(rng.uniform_int(0, 2))];
  const int64_t which = rng.uniform_int(0, 3);  // 0..2: inside v1, hip, asm; 3: anywhere
  const rc::Gen<Case> g = which < 3 ? gen::case_in(*declared.all()[size_t(which)], base, lim) : gen::any_case(lim);
  for (;;) {
    try {
      const Case c = g(rc::Random(rng.next_u64()), 50).value();
      return {c, scaled(base, c, rng.uniform_int(0, 1) == 1)};
    } catch (const rc::GenerationFailure&) {
      // a draw the kernel declines: draw again (deterministic in rng)
    }
  }
}

/// A sampled case with its inputs, packed cache and CPU reference.
struct SampledRun {
  Sampled s;
  Inputs in;
  PhysicalKv kv;
  ReferenceResult ref;
};

/// Calls f(run) for each of `n` draws of sample_case that pass the generic Case rules; returns how
/// many did.
template <class F>
int64_t for_each_sample(Rng& rng, int n, const Device* fixed, F f) {
  int64_t valid = 0;
  for (int i = 0; i < n; ++i) {
    Sampled s = sample_case(rng, fixed);
    if (!validate(s.c).empty()) continue;
    ++valid;
    SampledRun run;
    run.s = std::move(s);
    run.in = make_inputs(run.s.c);
    run.kv = pack(run.in);
    run.ref = reference_attention(run.in);
    f(run);
  }
  return valid;
}

}  // namespace pa::test
