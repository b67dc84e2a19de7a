#include "core/case.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace pa {

namespace {
// Indexed by the DType value (an ABI: appended, never reordered).
constexpr const char* kDTypeNames[] = {"bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "int8", "fp32", "fp8_e5m2"};
static_assert(sizeof(kDTypeNames) / sizeof(kDTypeNames[0]) == size_t(kDTypeCount), "a name per DType");

std::string fmt_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

const char* to_string(DType t) { return kDTypeNames[int(t)]; }
std::optional<DType> parse_dtype(std::string_view s) {
  for (int i = 0; i < kDTypeCount; ++i)
    if (s == kDTypeNames[i]) return DType(i);
  return std::nullopt;
}

double Case::effective_softmax_scale() const {
  return softmax_scale > 0 ? softmax_scale : 1.0 / std::sqrt(double(head_size));
}
int32_t Case::max_context() const {
  int32_t m = 0;
  for (int32_t c : context_lens) m = std::max(m, c);
  return m;
}
int64_t Case::used_blocks() const {
  int64_t n = 0;
  for (int32_t c : context_lens) n += blocks_for(c);
  return n;
}
int64_t Case::pool_blocks() const {
  if (num_blocks > 0) return num_blocks;
  const int64_t used = used_blocks();
  return used + std::max<int64_t>(4, used / 4);
}

double alibi_slope(int32_t h, int32_t num_q_heads) {
  return std::ldexp(1.0, -(1 + (8 * h) / std::max(1, num_q_heads)));
}

std::vector<std::string> validate(const Case& c) {
  std::vector<std::string> e;
  auto bad = [&](const std::string& field, const std::string& value, const std::string& why) {
    e.push_back(field + "=" + value + ": " + why);
  };
  auto S = [](auto v) { return std::to_string(v); };
  if (c.num_seqs < 1) bad("num_seqs", S(c.num_seqs), "must be >= 1");
  if (c.q_len < 1 || c.q_len > 16) bad("q_len", S(c.q_len), "must be in [1, 16]");
  if (c.num_q_heads < 1) bad("num_q_heads", S(c.num_q_heads), "must be >= 1");
  if (c.num_kv_heads < 1) bad("num_kv_heads", S(c.num_kv_heads), "must be >= 1");
  if (c.num_q_heads >= 1 && c.num_kv_heads >= 1 && c.num_q_heads % c.num_kv_heads != 0)
    bad("num_kv_heads", S(c.num_kv_heads),
        "must divide num_q_heads=" + S(c.num_q_heads) + " (GQA group size Hq/Hkv)");
  if (c.head_size < 1 || c.head_size > 1024) bad("head_size", S(c.head_size), "must be in [1, 1024]");
  if (c.block_size < 1 || c.block_size > 256) bad("block_size", S(c.block_size), "must be in [1, 256]");
  if (c.q_dtype != DType::bf16 && c.q_dtype != DType::fp16)
    bad("q_dtype", to_string(c.q_dtype), "must be bf16 or fp16");
  if (c.kv_dtype == DType::fp32) bad("kv_dtype", "fp32", "KV caches are bf16, fp16, fp8 or int8");
  if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none)
    bad("kv_scale", "none", "int8 KV needs a scale (per_tensor, per_head or per_token)");
  if (c.head_size >= 1 && c.block_size >= 1 && c.num_kv_heads >= 1 && c.kv_dtype != DType::fp32)
    if (auto err = layout_error(c.kv_layout, c.num_kv_heads, c.block_size, c.head_size,
                                dtype_bytes(c.kv_dtype)))
      bad("kv_layout", to_string(c.kv_layout), *err);
  if (int64_t(c.context_lens.size()) != int64_t(c.num_seqs))
    bad("context_lens", "[" + S(c.context_lens.size()) + " entries]",
        "needs one entry per sequence (num_seqs=" + S(c.num_seqs) + ")");
  for (size_t s = 0; s < c.context_lens.size(); ++s) {
    const int32_t ctx = c.context_lens[s];
    if (ctx < std::max(1, c.q_len) || ctx > (1 << 24))
      bad("context_lens[" + S(s) + "]", S(ctx),
          "must be in [max(1, q_len=" + S(c.q_len) + "), 2^24] (it includes the new tokens)");
  }
  if (c.num_blocks < 0 || c.num_blocks > 0x7FFFFFFF)
    bad("num_blocks", S(c.num_blocks), "must be in [0, 2^31-1] (0 = automatic)");
  if (c.num_blocks > 0 && c.block_size >= 1 && c.num_blocks < c.used_blocks())
    bad("num_blocks", S(c.num_blocks),
        "pool too small: the sequences use " + S(c.used_blocks()) + " pages");
  if (!(c.softmax_scale >= 0) || !std::isfinite(c.softmax_scale))
    bad("softmax_scale", fmt_double(c.softmax_scale), "must be finite and >= 0 (0 = 1/sqrt(D))");
  if (c.sliding_window < 0) bad("sliding_window", S(c.sliding_window), "must be >= 0 (0 = off)");
  if (!(c.logit_softcap >= 0) || !std::isfinite(c.logit_softcap))
    bad("logit_softcap", fmt_double(c.logit_softcap), "must be finite and >= 0 (0 = off)");
  if (c.partition_size < 1) bad("partition_size", S(c.partition_size), "must be >= 1");
  if (c.page_pad < 0) bad("page_pad", S(c.page_pad), "must be >= 0");
  return e;
}

void check_valid(const Case& c) {
  const auto errs = validate(c);
  if (errs.empty()) return;
  std::string msg = "invalid case" + (c.name.empty() ? std::string() : " '" + c.name + "'") + ":";
  for (const auto& m : errs) msg += "\n  " + m;
  throw InputError(msg);
}

std::string vars(const Case& c) {
  std::ostringstream o;
  o << "S=" << c.num_seqs << " q_len=" << c.q_len << " hq=" << c.num_q_heads
    << " hkv=" << c.num_kv_heads << " d=" << c.head_size << " b=" << c.block_size << " ctx=[";
  for (size_t i = 0; i < c.context_lens.size(); ++i) o << (i ? "," : "") << c.context_lens[i];
  o << "] nb=" << c.pool_blocks() << " q=" << to_string(c.q_dtype)
    << " kv=" << to_string(c.kv_dtype) << " layout=" << to_string(c.kv_layout)
    << " scale=" << to_string(c.kv_scale) << " sm=" << fmt_double(c.softmax_scale)
    << " win=" << c.sliding_window << " cap=" << fmt_double(c.logit_softcap)
    << " alibi=" << c.alibi << " sinks=" << c.sinks << " part=" << c.partition_size
    << " pad=" << c.page_pad << " seed=" << c.seed;
  return o.str();
}

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << (c.name.empty() ? "" : c.name + ": ") << vars(c);
}

std::string slug(const Case& c) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "s%d_q%d_h%dx%d_d%d_b%d_%s_%s_%s_%s_%016llx", c.num_seqs, c.q_len,
                c.num_q_heads, c.num_kv_heads, c.head_size, c.block_size, to_string(c.q_dtype),
                to_string(c.kv_dtype), to_string(c.kv_layout), to_string(c.kv_scale),
                (unsigned long long)fnv1a(vars(c)));
  return buf;
}

nlohmann::json to_json(const Case& c) {
  nlohmann::json j;
  if (!c.name.empty()) j["name"] = c.name;
  j["seed"] = c.seed;
  j["num_seqs"] = c.num_seqs;
  j["q_len"] = c.q_len;
  j["num_q_heads"] = c.num_q_heads;
  j["num_kv_heads"] = c.num_kv_heads;
  j["head_size"] = c.head_size;
  j["block_size"] = c.block_size;
  j["context_lens"] = c.context_lens;
  j["num_blocks"] = c.num_blocks;
  j["q_dtype"] = to_string(c.q_dtype);
  j["kv_dtype"] = to_string(c.kv_dtype);
  j["kv_layout"] = to_string(c.kv_layout);
  j["kv_scale"] = to_string(c.kv_scale);
  j["softmax_scale"] = c.softmax_scale;
  j["sliding_window"] = c.sliding_window;
  j["logit_softcap"] = c.logit_softcap;
  j["alibi"] = c.alibi;
  j["sinks"] = c.sinks;
  j["partition_size"] = c.partition_size;
  j["page_pad"] = c.page_pad;
  return j;
}

Case case_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw InputError("case must be a JSON object, got: " + j.dump());
  Case c;
  std::vector<std::string> errs;
  auto with = [&](const char* key, auto&& apply) {
    auto it = j.find(key);
    if (it == j.end()) return;
    try {
      apply(*it);
    } catch (const nlohmann::json::exception& ex) {
      errs.push_back(std::string(key) + "=" + it->dump() + ": " + ex.what());
    }
  };
  auto enum_field = [&](const char* key, auto parse, auto& out) {
    with(key, [&](const nlohmann::json& v) {
      const auto name = v.get<std::string>();
      if (auto p = parse(name)) out = *p;
      else errs.push_back(std::string(key) + "=" + name + ": unknown value");
    });
  };
  static const char* kKnown[] = {"name", "seed", "num_seqs", "q_len", "num_q_heads",
                                 "num_kv_heads", "head_size", "block_size", "context_lens",
                                 "num_blocks", "q_dtype", "kv_dtype", "kv_layout", "kv_scale",
                                 "softmax_scale", "sliding_window", "logit_softcap", "alibi",
                                 "sinks", "partition_size", "page_pad"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return it.key() == k; }))
      errs.push_back(it.key() + ": unknown field");
  with("name", [&](const auto& v) { c.name = v.template get<std::string>(); });
  with("seed", [&](const auto& v) { c.seed = v.template get<uint64_t>(); });
  with("num_seqs", [&](const auto& v) { c.num_seqs = v.template get<int32_t>(); });
  with("q_len", [&](const auto& v) { c.q_len = v.template get<int32_t>(); });
  with("num_q_heads", [&](const auto& v) { c.num_q_heads = v.template get<int32_t>(); });
  with("num_kv_heads", [&](const auto& v) { c.num_kv_heads = v.template get<int32_t>(); });
  with("head_size", [&](const auto& v) { c.head_size = v.template get<int32_t>(); });
  with("block_size", [&](const auto& v) { c.block_size = v.template get<int32_t>(); });
  with("context_lens", [&](const auto& v) { c.context_lens = v.template get<std::vector<int32_t>>(); });
  with("num_blocks", [&](const auto& v) { c.num_blocks = v.template get<int64_t>(); });
  enum_field("q_dtype", parse_dtype, c.q_dtype);
  enum_field("kv_dtype", parse_dtype, c.kv_dtype);
  enum_field("kv_layout", parse_layout, c.kv_layout);
  enum_field("kv_scale", parse_scale_mode, c.kv_scale);
  with("softmax_scale", [&](const auto& v) { c.softmax_scale = v.template get<double>(); });
  with("sliding_window", [&](const auto& v) { c.sliding_window = v.template get<int32_t>(); });
  with("logit_softcap", [&](const auto& v) { c.logit_softcap = v.template get<double>(); });
  with("alibi", [&](const auto& v) { c.alibi = v.template get<bool>(); });
  with("sinks", [&](const auto& v) { c.sinks = v.template get<bool>(); });
  with("partition_size", [&](const auto& v) { c.partition_size = v.template get<int32_t>(); });
  with("page_pad", [&](const auto& v) { c.page_pad = v.template get<int64_t>(); });
  if (!j.contains("context_lens") && j.contains("num_seqs") && c.num_seqs >= 1)
    errs.push_back("context_lens: missing (one entry per sequence)");
  if (!errs.empty()) {
    std::string msg = "bad case JSON:";
    for (const auto& m : errs) msg += "\n  " + m;
    throw InputError(msg);
  }
  return c;
}

}  // namespace pa
