#include "bench/timing.hpp"

namespace pa {

Timing time_kernel(const Kernel& k, const KernelCall& call, const Device& dev, const TimingOptions& o) {
  const auto* abi = dynamic_cast<const AbiKernel*>(&k);
  if (abi && k.info().memory == Memory::device) return time_on_device(abi->descriptor(), call, o);
  Timing t;
  for (int i = 0; i < o.warmup + o.repetitions; ++i) {
    const KernelOutput out = k.run(call, dev);
    if (out.status != Status::Ok) {
      t.error = out.reason.empty() ? std::string(to_string(out.status)) : out.reason;
      t.samples_ms.clear();
      return t;
    }
    if (i >= o.warmup) t.samples_ms.push_back(out.elapsed_ms);
  }
  return t;
}

}  // namespace pa
