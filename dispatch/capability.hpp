#pragma once
// What each kernel path can do (design §4, "Kernel paths"). This table is the single source of
// truth: the kernels' own refusals, the host twins and the dispatcher all ask decline_reason(),
// so "is this supported", "which path" and "will the kernel run it" cannot disagree.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/case.hpp"

namespace pa {

enum class PathId : uint8_t { v1, hip, asm_ };
inline constexpr PathId kAllPaths[] = {PathId::v1, PathId::hip, PathId::asm_};
const char* to_string(PathId p);
std::optional<PathId> parse_path(std::string_view s);
std::ostream& operator<<(std::ostream& os, PathId p);

/// The device a decision is made for. Routing depends on the CU count and the native fp8 flavour
/// (MI300 decodes e4m3fnuz, MI355 and NVIDIA e4m3fn). Host twins run for a *modelled* device.
struct Device {
  std::string name = "mi300x";
  std::string arch = "gfx942";
  int32_t cu_count = 304;
  DType native_fp8 = DType::fp8_e4m3fnuz;
  int32_t warp_size = 64;
};
Device device_mi300x();
Device device_mi355x();
Device device_h100();
/// A device model whose native fp8 flavour reads a cache of this dtype (MI355X for e4m3fn, else
/// MI300X), for running a case on the model that can decode it.
Device device_reading(DType kv_dtype);
/// Known device models by name ("mi300x", "mi355x", "h100"); nullopt when unknown.
std::optional<Device> device_model(std::string_view name);

template <class E>
constexpr uint32_t bit(E e) { return 1u << unsigned(e); }

struct Capability {
  PathId path = PathId::v1;
  uint32_t layouts = 0;     // bit(KvLayout)
  uint32_t kv_dtypes = 0;   // bit(DType)
  uint32_t scales = 0;      // bit(ScaleMode)
  std::vector<int32_t> head_sizes;
  std::vector<int32_t> block_sizes;
  int32_t max_gqa = 0;                 // G = Hq / Hkv
  std::vector<int32_t> gqa_tiles;      // non-empty: G is padded up to the smallest tile >= G
  int32_t max_q_len = 1;
  int32_t max_q_len_x_gqa = 0;         // 0 = no limit; asm: q_len * G <= 16
  bool partition_multiple_of_block = false;  // two-stage paths split at whole pages
  bool needs_token_scales_for_8bit = false;  // asm: 8-bit KV only with per-token scales
  bool custom_softmax_scale = false, sliding_window = false, logit_softcap = false,
       alibi = false, sinks = false;
};

/// The capability of one path (static tables in capability.cpp).
const Capability& capability(PathId p);

/// nullopt when `p` supports `c` on `dev`, else one sentence naming the field, the value and
/// what the path supports ("head_size=256 not in {128}"). Also refuses an fp8 cache whose flavour
/// is not the device's native one (decoding it would be silently wrong by factors of 2).
std::optional<std::string> decline_reason(PathId p, const Case& c, const Device& dev);

/// The GQA tile a path runs G in (G itself when the path has no tiles).
int32_t padded_gqa(const Capability& cap, int32_t gqa);

}  // namespace pa
