#include "core/device_pool.hpp"

#include <iterator>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/gpu_runtime.hpp"

namespace pa {

namespace {

// The cache: free blocks by size. A request takes the smallest free block at least its size and at
// most twice it, so a small request never pins a huge block. At most kKeepBytes stay cached; the
// largest blocks beyond that are freed at once.
class Pool {
 public:
  void* take(size_t bytes, const char* what) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.lower_bound(bytes);
      if (it != free_.end() && it->first <= 2 * bytes) {
        void* p = it->second;
        cached_ -= it->first;
        free_.erase(it);
        return p;
      }
    }
    void* p = nullptr;
    hipError_t e = hipMalloc(&p, bytes);
    if (e != hipSuccess) {  // the cache may hold what is missing: release it and retry once
      (void)hipGetLastError();
      trim(0);
      e = hipMalloc(&p, bytes);
    }
    if (e != hipSuccess)
      throw std::runtime_error(std::string("hipMalloc of '") + what + "' (" + std::to_string(bytes) +
                               " bytes) failed: " + hipGetErrorString(e));
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      free_.emplace(bytes, p);
      cached_ += bytes;
    }
    trim(kKeepBytes);
  }

 private:
  static constexpr size_t kKeepBytes = size_t(8) << 30;
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
      }
    }
    for (void* p : drop) (void)hipFree(p);  // a failure here only leaks a cached block
  }
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: no hipFree after the runtime's own teardown
  return *p;
}

}  // namespace

void* device_take(size_t bytes, const char* what) { return pool().take(bytes == 0 ? 1 : bytes, what); }
void device_give(void* p, size_t bytes) noexcept {
  if (!p) return;
  try {
    pool().give(p, bytes == 0 ? 1 : bytes);
  } catch (...) {  // only std::bad_alloc of the map: the block is lost to the cache, not to the device
    (void)hipFree(p);
  }
}

}  // namespace pa
