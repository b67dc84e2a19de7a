#include "core/device_pool.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/gpu_runtime.hpp"

namespace pa {

namespace {

// Device memory (hipMalloc) or page-locked host memory (hipHostMalloc, the staging of copies back).
enum class Kind { device, pinned };
hipError_t allocate(Kind k, void** p, size_t bytes) {
  return k == Kind::device ? hipMalloc(p, bytes) : hipHostMalloc(p, bytes, hipHostMallocDefault);
}
hipError_t release_block(Kind k, void* p) { return k == Kind::device ? hipFree(p) : hipHostFree(p); }

// The cache: free blocks by size. A request takes the smallest free block at least its size class
// and at most twice it, so a small request never pins a huge block. At most a quarter of the
// device's memory (8 GiB at least) stays cached, 1 GiB of pinned host memory; the largest blocks
// beyond that are freed at once.
class Pool {
 public:
  explicit Pool(Kind kind) : kind_(kind) {}
  void* take(size_t bytes, const char* what) {
    bytes = pool_size_class(bytes);
    {
      const std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= 2 * bytes) {
        void* p = it->second;
        cached_ -= it->first;
        live_[p] = it->first;
        free_.erase(it);
        ++stats_.reused;
        return p;
      }
    }
    void* p = nullptr;
    hipError_t e = allocate(kind_, &p, bytes);
    if (e != hipSuccess) {  // the cache may hold what is missing: release it and retry once
      (void)hipGetLastError();
      trim(0);
      e = allocate(kind_, &p, bytes);
    }
    if (e != hipSuccess)
      throw std::runtime_error(std::string(kind_ == Kind::device ? "hipMalloc" : "hipHostMalloc") + " of '" + what +
                               "' (" + std::to_string(bytes) + " bytes) failed: " + hipGetErrorString(e));
    const std::lock_guard<std::mutex> lock(mu_);
    live_[p] = bytes;
    ++stats_.allocated;
    stats_.allocated_bytes += bytes;
    return p;
  }
  void give(void* p) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(p);
      if (it == live_.end()) return;  // not ours: nothing to cache
      free_.emplace(it->second, p);
      cached_ += it->second;
      live_.erase(it);
    }
    trim(keep());
  }
  DevicePoolStats stats() {
    const std::lock_guard<std::mutex> lock(mu_);
    DevicePoolStats s = stats_;
    s.cached_bytes = int64_t(cached_);
    return s;
  }

 private:
  size_t keep() {
    std::call_once(keep_once_, [this] {
      size_t free_bytes = 0, total = 0;
      keep_ = kind_ == Kind::pinned ? size_t(1) << 30 : size_t(8) << 30;
      if (kind_ == Kind::pinned) return;
      if (hipMemGetInfo(&free_bytes, &total) == hipSuccess) keep_ = std::max(keep_, total / 4);
      else (void)hipGetLastError();
    });
    return keep_;
  }
  /// Frees the largest cached blocks until at most `keep` bytes stay cached.
  void trim(size_t keep) {
    std::vector<void*> drop;
    {
      const std::lock_guard<std::mutex> lock(mu_);
      while (cached_ > keep && !free_.empty()) {
        auto last = std::prev(free_.end());
        cached_ -= last->first;
        drop.push_back(last->second);
        free_.erase(last);
        ++stats_.freed;
      }
    }
    for (void* p : drop) (void)release_block(kind_, p);  // a failure here only leaks a cached block
  }
  const Kind kind_;
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;  // blocks handed out, with their true size
  size_t cached_ = 0;
  DevicePoolStats stats_;
  std::once_flag keep_once_;
  size_t keep_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool(Kind::device);  // never destroyed: no hipFree after the runtime's own teardown
  return *p;
}
Pool& pinned_pool() {
  static Pool* p = new Pool(Kind::pinned);
  return *p;
}

}  // namespace

void* device_take(size_t bytes, const char* what) { return pool().take(bytes == 0 ? 1 : bytes, what); }
void device_give(void* p) noexcept {
  if (!p) return;
  try {
    pool().give(p);
  } catch (...) {  // only std::bad_alloc of the map: the block is lost to the cache, not to the device
    (void)hipFree(p);
  }
}
DevicePoolStats device_pool_stats() { return pool().stats(); }

void download_staged(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  void* stage = pinned_pool().take(bytes, "the staging of a copy back");
  struct Give {
    void* p;
    ~Give() { pinned_pool().give(p); }
  } give{stage};
  PA_GPU_CHECK(hipMemcpyAsync(stage, src, bytes, hipMemcpyDeviceToHost, 0));
  PA_GPU_CHECK(hipStreamSynchronize(0));
  std::memcpy(dst, stage, bytes);
}

}  // namespace pa
