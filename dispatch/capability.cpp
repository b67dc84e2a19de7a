#include "dispatch/capability.hpp"

#include <algorithm>
#include <ostream>

namespace pa {

const char* to_string(PathId p) {
  switch (p) {
    case PathId::v1: return "v1";
    case PathId::hip: return "hip";
    case PathId::asm_: return "asm";
  }
  return "?";
}
std::optional<PathId> parse_path(std::string_view s) {
  for (PathId p : kAllPaths)
    if (s == to_string(p)) return p;
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& os, PathId p) { return os << to_string(p); }

Device device_mi300x() { return {"mi300x", "gfx942", 304, DType::fp8_e4m3fnuz, 64}; }
Device device_mi355x() { return {"mi355x", "gfx950", 256, DType::fp8_e4m3fn, 64}; }
Device device_h100() { return {"h100", "sm_90", 132, DType::fp8_e4m3fn, 32}; }
Device device_reading(DType kv_dtype) {
  return kv_dtype == DType::fp8_e4m3fn ? device_mi355x() : device_mi300x();
}
std::optional<Device> device_model(std::string_view name) {
  for (const Device& d : {device_mi300x(), device_mi355x(), device_h100()})
    if (name == d.name) return d;
  return std::nullopt;
}

namespace {

constexpr uint32_t kAllKv = bit(DType::bf16) | bit(DType::fp16) | bit(DType::fp8_e4m3fn) |
                            bit(DType::fp8_e4m3fnuz) | bit(DType::int8);

Capability make_v1() {
  Capability c;
  c.path = PathId::v1;
  c.layouts = bit(KvLayout::nhd) | bit(KvLayout::vllm);
  c.kv_dtypes = kAllKv;
  c.scales = bit(ScaleMode::none) | bit(ScaleMode::per_tensor) | bit(ScaleMode::per_head);
  for (int d = 16; d <= 256; d += 16) c.head_sizes.push_back(d);
  c.block_sizes = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  c.max_gqa = 1 << 30;
  c.max_q_len = 16;
  c.custom_softmax_scale = c.sliding_window = c.logit_softcap = c.alibi = c.sinks = true;
  return c;
}
Capability make_hip() {
  Capability c;
  c.path = PathId::hip;
  c.layouts = bit(KvLayout::shuffled);
  c.kv_dtypes = kAllKv & ~bit(DType::int8);
  c.scales = bit(ScaleMode::none) | bit(ScaleMode::per_tensor) |
             bit(ScaleMode::per_token_block_major) | bit(ScaleMode::per_token_head_major);
  c.head_sizes = {64, 128, 256};
  c.block_sizes = {16, 32};
  c.max_gqa = 16;
  c.max_q_len = 8;
  c.partition_multiple_of_block = true;
  c.custom_softmax_scale = true;
  return c;
}
Capability make_asm() {
  Capability c;
  c.path = PathId::asm_;
  c.layouts = bit(KvLayout::shuffled);
  c.kv_dtypes = kAllKv;
  c.scales = bit(ScaleMode::none) | bit(ScaleMode::per_token_block_major);
  c.head_sizes = {128};
  c.block_sizes = {16};
  c.max_gqa = 16;
  c.gqa_tiles = {8, 16};
  c.max_q_len = 16;
  c.max_q_len_x_gqa = 16;
  c.needs_token_scales_for_8bit = true;
  return c;
}

template <class E, int N>
std::string mask_names(uint32_t mask, const char* (*name)(E)) {
  std::string s = "{";
  for (int i = 0; i < N; ++i)
    if (mask & (1u << i)) s += std::string(s.size() > 1 ? "," : "") + name(E(i));
  return s + "}";
}
std::string list(const std::vector<int32_t>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}
bool has(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

const Capability& capability(PathId p) {
  static const Capability kV1 = make_v1(), kHip = make_hip(), kAsm = make_asm();
  switch (p) {
    case PathId::v1: return kV1;
    case PathId::hip: return kHip;
    case PathId::asm_: return kAsm;
  }
  return kV1;
}

int32_t padded_gqa(const Capability& cap, int32_t gqa) {
  for (int32_t t : cap.gqa_tiles)
    if (gqa <= t) return t;
  return gqa;
}

std::optional<std::string> decline_reason(PathId p, const Case& c, const Device& dev) {
  const Capability& cap = capability(p);
  const auto S = [](auto v) { return std::to_string(v); };
  // The flavour check comes first: it holds for every path on this device, and it is the most
  // dangerous mismatch (MiniMax FP8 KV, GSM8K 0.01), so every path's reason names both flavours.
  if (is_fp8(c.kv_dtype) && c.kv_dtype != dev.native_fp8)
    return std::string("kv_dtype=") + to_string(c.kv_dtype) + " but device " + dev.name +
           " decodes fp8 as " + to_string(dev.native_fp8) + " (wrong flavour gives factor-2 errors)";
  if (!(cap.layouts & bit(c.kv_layout)))
    return std::string("kv_layout=") + to_string(c.kv_layout) + " not in " +
           mask_names<KvLayout, 4>(cap.layouts, to_string);
  if (!(cap.kv_dtypes & bit(c.kv_dtype)))
    return std::string("kv_dtype=") + to_string(c.kv_dtype) + " not in " +
           mask_names<DType, 6>(cap.kv_dtypes, to_string);
  if (!(cap.scales & bit(c.kv_scale)))
    return std::string("kv_scale=") + to_string(c.kv_scale) + " not in " +
           mask_names<ScaleMode, 5>(cap.scales, to_string);
  if (cap.needs_token_scales_for_8bit && is_8bit(c.kv_dtype) && !is_per_token(c.kv_scale))
    return std::string("kv_scale=") + to_string(c.kv_scale) + " with 8-bit KV: needs per-token scales";
  if (!has(cap.head_sizes, c.head_size))
    return "head_size=" + S(c.head_size) + " not in " + list(cap.head_sizes);
  if (!has(cap.block_sizes, c.block_size))
    return "block_size=" + S(c.block_size) + " not in " + list(cap.block_sizes);
  const int32_t g = c.gqa();
  if (g > cap.max_gqa) return "gqa=" + S(g) + " above " + S(cap.max_gqa);
  if (c.q_len > cap.max_q_len) return "q_len=" + S(c.q_len) + " above " + S(cap.max_q_len);
  if (cap.max_q_len_x_gqa && c.q_len * g > cap.max_q_len_x_gqa)
    return "q_len*gqa=" + S(c.q_len) + "*" + S(g) + " above " + S(cap.max_q_len_x_gqa);
  if (cap.partition_multiple_of_block &&
      (c.partition_size < c.block_size || c.partition_size % c.block_size != 0))
    return "partition_size=" + S(c.partition_size) + " is not a multiple of block_size=" + S(c.block_size);
  if (c.softmax_scale > 0 && !cap.custom_softmax_scale)
    return "softmax_scale=" + S(c.softmax_scale) + ": only the default 1/sqrt(D) is supported";
  if (c.sliding_window > 0 && !cap.sliding_window)
    return "sliding_window=" + S(c.sliding_window) + ": not supported";
  if (c.logit_softcap > 0 && !cap.logit_softcap)
    return "logit_softcap=" + S(c.logit_softcap) + ": not supported";
  if (c.alibi && !cap.alibi) return "alibi: not supported";
  if (c.sinks && !cap.sinks) return "sinks: not supported";
  return std::nullopt;
}

}  // namespace pa
