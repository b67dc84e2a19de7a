#pragma once
// Device memory kept across uses. A run allocates a case's inputs, the oracle's scratch and every
// kernel's guarded buffers thousands of times; hipMalloc per buffer, and hipFree (which waits for
// the whole device) after it, cost more than most of the kernels under test. Blocks given back
// are cached and handed out again; the cache is bounded. Thread-safe (`run -j` threads share it).
// Only device code's libraries call it (inputs/inputs_device.hip, kernels/crossing_device.hip).
#include <cstddef>
#include <cstdint>

namespace pa {

/// The size a pool request is rounded up to: a multiple of 512 bytes up to 4 KiB, then four
/// classes per power of two (at most 25 % more than asked), so the varying sizes of a run's cases
/// meet cached blocks instead of new allocations.
inline size_t pool_size_class(size_t bytes) {
  if (bytes <= 4096) return (bytes + 511) / 512 * 512;
  size_t top = 4096;
  while (top * 2 < bytes) top *= 2;  // top < bytes <= 2 top
  const size_t step = top / 4;
  return (bytes + step - 1) / step * step;
}

/// What the pool did since the process began: blocks handed out again from the cache, new
/// hipMallocs (and their bytes), and cached blocks freed to stay under the bound. `bench
/// --harness` prints it: a run whose allocations miss the cache waits on the device.
struct DevicePoolStats {
  int64_t reused = 0, allocated = 0, allocated_bytes = 0, freed = 0;
  int64_t cached_bytes = 0;  // held now for reuse: free to any new need (the pool gives it up on a miss)
};
DevicePoolStats device_pool_stats();

/// Copies `bytes` of device memory at `src` to host `dst` through a cached page-locked block, on
/// the calling thread's stream, and returns when they are there. A copy into pageable memory is
/// staged by the runtime through buffers every thread shares; `run -j` threads copying back at
/// once would queue on them. Throws gpu::Error naming the failed call.
void download_staged(void* dst, const void* src, size_t bytes);

/// A device block of at least `bytes` (a cached block of at most twice the size, else a new one).
/// Throws std::runtime_error naming `what` and the size when the device has no room even after
/// the cache is released.
void* device_take(size_t bytes, const char* what);
/// Gives a block from device_take back. @pre the work of the calling thread's stream that uses it
/// is complete (the caller synchronised). The pool knows the block's size.
void device_give(void* p) noexcept;

}  // namespace pa
