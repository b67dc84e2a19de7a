#pragma once
// How `pacheck bench` times a kernel: device-memory descriptors with device events on inputs
// filled on the device (bench/timing_device.hip), anything else by the launch time each run()
// reports; and the streaming-read roofline of the same run.
#include <cstddef>
#include <string>
#include <vector>

#include "kernels/kernel.hpp"

namespace pa {

/// Warm-up launches, then `repetitions` timed launches, each on the next of several input sets
/// that together span `rotate_bytes`, so every launch reads from a cold L2 (the same rotation for
/// the streaming-read roofline).
struct TimingOptions {
  int warmup = 3;
  int repetitions = 20;
  size_t rotate_bytes = size_t(256) << 20;  // a few times the largest L2 of the devices in use
};
/// Per-launch times, or why there are none.
struct Timing {
  std::string error;               // empty = timed
  std::vector<double> samples_ms;  // one per timed launch
  int input_sets = 1;
};

/// Times `k` on the call: time_on_device for an in-process device-memory descriptor, else the
/// elapsed time of each run() (host wall clock, or device events inside a worker).
Timing time_kernel(const Kernel& k, const KernelCall& call, const Device& dev, const TimingOptions& o);

/// Times a device-memory descriptor with device events. Cache views left empty (k_cache,
/// v_cache, q) are filled on the device with finite values of the dtype, so shapes far beyond
/// host memory can be timed; correctness is checked separately, on a reduced case.
Timing time_on_device(const pacheck_kernel& k, const KernelCall& call, const TimingOptions& o);
/// Read bandwidth (GB/s, median) of a plain streaming-read kernel over `bytes`, timed like a kernel.
double stream_read_gbs(size_t bytes, const TimingOptions& o, std::string* error);

}  // namespace pa
