#pragma once
// A case's inputs generated on the GPU: the bytes make_inputs and pack produce on the host, drawn
// on the device from the same counter-based streams (core/prng.hpp) by the same element
// definitions (inputs/input_draws.hpp), so the bulk of a case -- the K/V cache -- never crosses the
// bus and never occupies the CPU. The small inputs (Q, slopes, sinks, the page placement and the
// block tables) are made on the host by make_inputs' own code and uploaded.
//
// Two views, as on the host: the logical K/V the oracle reads (reference/attention_device.hip)
// and the physical cache a kernel reads, poisoned where pack poisons it.
#include <cstddef>
#include <vector>
#include <cstdint>
#include <string>

#include "inputs/inputs.hpp"

namespace pa {

/// One device allocation, freed with its owner (move-only). Every runtime failure throws
/// std::runtime_error naming the call and, for an allocation, its size.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return p_; }
  size_t size() const { return n_; }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }
  /// Copies `bytes` host bytes in. @pre bytes <= size()
  void upload(const void* src, size_t bytes);
  /// Copies the first `bytes` out. @pre bytes <= size()
  void download(void* dst, size_t bytes) const;
  /// The first `count` elements of type T, copied out. @pre count * sizeof(T) <= size()
  template <class T>
  std::vector<T> to_vector(size_t count) const {
    std::vector<T> v(count);
    if (count) download(v.data(), count * sizeof(T));
    return v;
  }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

/// A buffer holding a copy of v (empty vector: an empty buffer).
template <class T>
DeviceBuffer to_device(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  if (!v.empty()) b.upload(v.data(), v.size() * sizeof(T));
  return b;
}

struct DeviceInputs {
  /// What make_inputs makes except the bulk of K and V: q, slopes, sinks, block tables and
  /// context lengths as make_inputs leaves them; k and v carry dtype, heads, head_size and
  /// token_base, with empty codes and scales (those live on the device).
  Inputs host;
  PageLayout k_layout, v_layout;
  ScaleLayout scale_layout;
  // Logical K and V (the oracle's view): codes uint16 [T, Hkv, D], scales float [T, Hkv], the
  // bytes of make_inputs' k.codes, k.scales, v.codes, v.scales.
  DeviceBuffer k_codes, k_scales, v_codes, v_scales;
  // Physical (a kernel's view): the bytes of pack()'s k_cache, v_cache, k_scales, v_scales.
  DeviceBuffer k_cache, v_cache, k_cache_scales, v_cache_scales;
  // The small inputs, uploaded: q codes uint16 and q float (decoded) [T, Hq, D],
  // block_tables int32, context_lens int32 [S], token_base int64 [S + 1], alibi_slopes and sinks
  // float [Hq] (empty buffers when the case has none).
  DeviceBuffer q_codes, q, block_tables, context_lens, token_base, alibi_slopes, sinks;
  // cu_seqlens_q int32 [S + 1]; the CSR page table (empty buffers unless the case's table is CSR).
  DeviceBuffer cu_seqlens_q, kv_indptr, kv_indices, kv_last_page_len;
};

/// True when pacheck was built with a GPU toolchain and a GPU is present; else `why` says which.
bool device_inputs_available(std::string* why = nullptr);

/// Bytes of device memory free now (hipMemGetInfo) plus what the device pool caches, or -1 when
/// unknown (no GPU).
int64_t device_memory_available();

/// Generates every input of the case on the GPU (current device, stream 0 of the calling thread).
/// @pre device_inputs_available()
/// @post download_inputs(result) == make_inputs(c) and download_physical(result) == pack(make_inputs(c)),
/// byte for byte
DeviceInputs make_device_inputs(const ValidCase& c);
/// The same for a case not yet validated: InputError naming every problem of an invalid one.
DeviceInputs make_device_inputs(const Case& c);

/// Inputs made on the host, uploaded: every buffer of DeviceInputs holds their bytes (the physical
/// ones pack(in)'s). For host inputs that a device consumer reads (the property suite's GPU oracle
/// on its own, possibly edited, inputs). @pre in's shapes match in.c; a GPU is usable
DeviceInputs upload_inputs(const Inputs& in);

/// The inputs back on the host (for tests and for cross-checking the device oracle).
Inputs download_inputs(const DeviceInputs& d);
PhysicalKv download_physical(const DeviceInputs& d);

}  // namespace pa
