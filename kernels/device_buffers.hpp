#pragma once
// Guarded device buffers (GPU compilers only): every buffer between two canary regions (the tail
// includes the rounding slack, which no kernel may touch either), from the device pool
// (core/device_pool.hpp). The guards of every buffer are written by one launch (arm(), before the
// kernel runs) and checked by one launch and one copy back (overrun()), not two calls per buffer.
// Used by the device crossing and the GPU cache writer.
#include <string>
#include <vector>

#include "core/device_pool.hpp"
#include "core/gpu_runtime.hpp"
#include "kernels/crossing.hpp"
#include "kernels/kernel.hpp"

namespace pa {

class GuardedBuffers {
 public:
  GuardedBuffers() = default;
  GuardedBuffers(const GuardedBuffers&) = delete;
  GuardedBuffers& operator=(const GuardedBuffers&) = delete;
  ~GuardedBuffers();
  /// Allocates `bytes` and fills the body with `init` (host or device memory as `where` says), or
  /// with the byte `fill` when init is null. Its guards are written by arm().
  void* alloc(const std::string& name, size_t bytes, const void* init = nullptr, int fill = 0,
              Memory where = Memory::host);
  /// Writes the canary into every guard. @pre every buffer is allocated; call before the launch
  /// (a host source of alloc() must stay alive until the stream is synchronised).
  void arm();
  /// What a launch broke: the first guard not holding its canary, and the first input (a buffer
  /// alloc() filled from `init`) no longer holding the bytes it was filled from, each named with
  /// the byte ("" when none). One launch and one copy for the guards and the inputs filled from
  /// device memory; an input filled from host memory is copied back and compared.
  /// @pre arm() was called before the launch, and the sources are unchanged since alloc()
  struct Breaches {
    std::string overrun, written;
  };
  /// A byte range the device checks: against `ref` (an input's source), or the canary when null.
  struct Span {
    uint8_t* p;
    const uint8_t* ref;
    uint64_t n;
  };
  Breaches check() const;
  /// check().overrun
  std::string overrun() const;
  /// How another process opens the buffer whose body is `body` (a pointer alloc() returned).
  SharedBuffer share(const void* body) const;

 private:
  struct Entry {
    std::string name;
    uint8_t* base;
    size_t bytes, total;
    const void* src;  // what the body was filled from (inputs), or null
    Memory where;     // where src lives
  };
  std::vector<Span> guards() const;
  std::vector<Entry> bufs_;
  unsigned long long* first_ = nullptr;
};

}  // namespace pa
