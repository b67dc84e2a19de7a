#include "core/case.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <set>
#include <sstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "core/json_input.hpp"

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

const char* to_string(Values v) {
  return v == Values::outliers ? "outliers" : v == Values::extremes ? "extremes" : "normal";
}
std::optional<Values> parse_values(std::string_view s) {
  if (s == "normal") return Values::normal;
  if (s == "outliers") return Values::outliers;
  if (s == "extremes") return Values::extremes;
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
int64_t Case::q_start(int32_t s) const {
  if (q_lens.empty()) return int64_t(s) * q_len;
  int64_t n = 0;
  for (int32_t i = 0; i < s; ++i) n += q_lens[size_t(i)];
  return n;
}
bool Case::has_empty_rows() const {
  return std::any_of(context_lens.begin(), context_lens.end(), [](int32_t c) { return c == 0; });
}
int64_t Case::used_blocks() const {
  int64_t n = 0;
  for (int32_t c : context_lens) n += blocks_for(c);
  return n;
}
int64_t Case::total_tokens() const {
  int64_t n = 0;
  for (int32_t c : context_lens) n += c;
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

namespace {
// How each field type is written in vars(), read from JSON and from a replay flag.
void put(std::ostream& o, const std::string& v) { o << v; }
void put(std::ostream& o, double v) { o << fmt_double(v); }
void put(std::ostream& o, bool v) { o << int(v); }
template <class T>
std::enable_if_t<std::is_integral_v<T>> put(std::ostream& o, T v) { o << v; }
void put(std::ostream& o, const std::vector<int32_t>& v) {
  o << "[";
  for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
  o << "]";
}
template <class E>
auto put(std::ostream& o, E v) -> decltype(o << to_string(v), void()) { o << to_string(v); }

template <class T>
nlohmann::json json_of(const T& v) { return v; }
nlohmann::json json_of(DType v) { return to_string(v); }
nlohmann::json json_of(KvLayout v) { return to_string(v); }
nlohmann::json json_of(ScaleMode v) { return to_string(v); }
nlohmann::json json_of(Values v) { return to_string(v); }
nlohmann::json json_of(PageTable v) { return to_string(v); }
nlohmann::json json_of(TablePad v) { return to_string(v); }

std::optional<DType> parse_enum(std::string_view s, DType*) { return parse_dtype(s); }
std::optional<KvLayout> parse_enum(std::string_view s, KvLayout*) { return parse_layout(s); }
std::optional<ScaleMode> parse_enum(std::string_view s, ScaleMode*) { return parse_scale_mode(s); }
std::optional<Values> parse_enum(std::string_view s, Values*) { return parse_values(s); }
std::optional<PageTable> parse_enum(std::string_view s, PageTable*) { return parse_page_table(s); }
std::optional<TablePad> parse_enum(std::string_view s, TablePad*) { return parse_table_pad(s); }

// An optional field at its default (left out of vars() and JSON).
template <class T>
bool at_default(const T& v) {
  if constexpr (std::is_same_v<T, std::vector<int32_t>>) return v.empty();
  else if constexpr (std::is_enum_v<T>) return int(v) == 0;
  else return v == T{};
}

// Reads one field from JSON; a wrong type or an unknown name is a message naming the key.
template <class T>
std::optional<std::string> read_json(const nlohmann::json& v, T& out) {
  if constexpr (std::is_enum_v<T>) {
    if (!v.is_string()) return std::string("expected a name");
    const auto p = parse_enum(v.get<std::string>(), static_cast<T*>(nullptr));
    if (!p) return std::string("unknown value");
    out = *p;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return std::string("expected true or false");
    out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    // A float, a value out of range or a negative seed is refused, never cast (1e10, 64.7, -1).
    const auto n = json_integer<T>(v);
    if (!n) return "expected an integer in " + integer_range<T>();
    out = *n;
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.is_number()) return std::string("expected a number");
    out = v.get<double>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return std::string("expected a string");
    out = v.get<std::string>();
  } else {
    static_assert(std::is_same_v<T, std::vector<int32_t>>, "a reader per field type");
    if (!v.is_array()) return std::string("expected an array of integers");
    if (v.size() > size_t(kMaxSeqs)) return "more than " + std::to_string(kMaxSeqs) + " entries";
    std::vector<int32_t> xs;
    for (size_t i = 0; i < v.size(); ++i) {
      const auto n = json_integer<int32_t>(v[i]);
      if (!n) return "[" + std::to_string(i) + "]=" + v[i].dump() + ": expected an integer in " + integer_range<int32_t>();
      xs.push_back(*n);
    }
    out = std::move(xs);
  }
  return std::nullopt;
}
}  // namespace

std::vector<std::string> validate(const Case& c) {
  std::vector<std::string> e;
  // "field=value: why", the field's name and value taken from the field table.
  auto bad = [&](const auto& member, const std::string& why) {
    for_each_field(c, [&](const CaseField& f, const auto& v) {
      if (static_cast<const void*>(&v) != static_cast<const void*>(&member)) return;
      std::ostringstream o;
      put(o, v);
      e.push_back(std::string(f.json) + "=" + o.str() + ": " + why);
    });
  };
  auto S = [](auto v) { return std::to_string(v); };
  if (c.name.size() > kMaxCaseName)
    e.push_back("name=[" + S(c.name.size()) + " bytes]: a case name is at most " + S(kMaxCaseName) + " bytes");
  if (c.num_seqs < 1 || c.num_seqs > kMaxSeqs) bad(c.num_seqs, "must be in [1, " + S(kMaxSeqs) + "]");
  if (c.q_len < 1 || c.q_len > kMaxQLen) bad(c.q_len, "must be in [1, " + S(kMaxQLen) + "]");
  if (!c.q_lens.empty()) {
    if (int64_t(c.q_lens.size()) != int64_t(c.num_seqs))
      bad(c.q_lens, "needs one entry per sequence (num_seqs=" + S(c.num_seqs) + ") or none");
    const auto [lo, hi] = std::minmax_element(c.q_lens.begin(), c.q_lens.end());
    if (*lo < 1 || *hi > kMaxQLen) bad(c.q_lens, "every entry must be in [1, " + S(kMaxQLen) + "]");
    else if (*lo == *hi) bad(c.q_lens, "all equal: write q_len=" + S(*lo) + " (one spelling per case)");
    else if (c.q_len != *hi) bad(c.q_len, "with q_lens it is their maximum, " + S(*hi));
  }
  if (c.head_size_v < 0 || c.head_size_v > 1024) bad(c.head_size_v, "must be in [0, 1024] (0 = head_size)");
  if (c.head_size_v == c.head_size && c.head_size_v != 0)
    bad(c.head_size_v, "equals head_size: write 0 (one spelling per case)");
  if (c.num_q_heads < 1) bad(c.num_q_heads, "must be >= 1");
  if (c.num_kv_heads < 1) bad(c.num_kv_heads, "must be >= 1");
  if (c.num_q_heads >= 1 && c.num_kv_heads >= 1 && c.num_q_heads % c.num_kv_heads != 0)
    bad(c.num_kv_heads, "must divide num_q_heads=" + S(c.num_q_heads) + " (GQA group size Hq/Hkv)");
  if (c.head_size < 1 || c.head_size > 1024) bad(c.head_size, "must be in [1, 1024]");
  if (c.block_size < 1 || c.block_size > 256) bad(c.block_size, "must be in [1, 256]");
  if (c.q_dtype != DType::bf16 && c.q_dtype != DType::fp16) bad(c.q_dtype, "must be bf16 or fp16");
  if (c.kv_dtype == DType::fp32) bad(c.kv_dtype, "KV caches are bf16, fp16, fp8 or int8");
  if (c.kv_dtype == DType::int8 && c.kv_scale == ScaleMode::none)
    bad(c.kv_scale, "int8 KV needs a scale (per_tensor, per_head or per_token)");
  if (c.head_size >= 1 && c.block_size >= 1 && c.num_kv_heads >= 1 && c.kv_dtype != DType::fp32) {
    if (auto err = layout_error(c.kv_layout, c.num_kv_heads, c.block_size, c.head_size,
                                dtype_bytes(c.kv_dtype)))
      bad(c.kv_layout, *err);
    else if (c.dv() >= 1 && c.dv() <= 1024)
      if (auto err_v = layout_error(c.kv_layout, c.num_kv_heads, c.block_size, c.dv(), dtype_bytes(c.kv_dtype)))
        bad(c.kv_layout, "V: " + *err_v);
  }
  if (is_mla(c.kv_layout)) {
    // One latent KV head; V is the first Dv values of K, so Dv < D; K and V are one stored tensor,
    // so their scale is one value.
    if (c.num_kv_heads != 1) bad(c.num_kv_heads, "must be 1 with an MLA layout (one latent KV head per token)");
    if (c.dv() >= c.head_size)
      bad(c.head_size_v, "an MLA layout needs head_size_v < head_size (V is the latent prefix of K)");
    if (c.kv_scale != ScaleMode::none && c.kv_scale != ScaleMode::per_tensor)
      bad(c.kv_scale, "an MLA cache takes none or per_tensor (K and V are one tensor)");
  }
  if (int64_t(c.context_lens.size()) != int64_t(c.num_seqs))
    e.push_back("context_lens=[" + S(c.context_lens.size()) + " entries]: needs one entry per sequence (num_seqs=" +
                S(c.num_seqs) + ")");
  const bool q_lens_ok = c.q_lens.empty() || c.q_lens.size() == c.context_lens.size();
  for (size_t s = 0; s < c.context_lens.size(); ++s) {
    const int32_t ctx = c.context_lens[s];
    const int32_t ql = q_lens_ok ? c.q_len_of(int32_t(s)) : c.q_len;
    if (ctx != 0 && (ctx < std::max(1, ql) || ctx > (1 << 24)))
      e.push_back("context_lens[" + S(s) + "]=" + S(ctx) + ": must be 0 (an empty slot) or in [max(1, q_len=" + S(ql) +
                  "), 2^24] (it includes the new tokens)");
  }
  if (!c.context_lens.empty() && c.max_context() == 0)
    e.push_back("context_lens: every sequence is empty (at least one needs a context)");
  if (c.num_blocks < 0 || c.num_blocks > 0x7FFFFFFF) bad(c.num_blocks, "must be in [0, 2^31-1] (0 = automatic)");
  if (c.num_blocks > 0 && c.block_size >= 1 && c.num_blocks < c.used_blocks())
    bad(c.num_blocks, "pool too small: the sequences use " + S(c.used_blocks()) + " pages");
  if (!(c.softmax_scale >= 0) || !std::isfinite(c.softmax_scale))
    bad(c.softmax_scale, "must be finite and >= 0 (0 = 1/sqrt(D))");
  if (c.sliding_window < 0) bad(c.sliding_window, "must be >= 0 (0 = off)");
  if (!(c.logit_softcap >= 0) || !std::isfinite(c.logit_softcap))
    bad(c.logit_softcap, "must be finite and >= 0 (0 = off)");
  if (c.partition_size < 1) bad(c.partition_size, "must be >= 1");
  // Bounded so that a page's stride, times a pool of 2^31 pages, stays far inside int64 byte counts.
  if (c.page_pad < 0 || c.page_pad > kMaxPagePad) bad(c.page_pad, "must be in [0, 2^24]");
  return e;
}

void check_valid(const Case& c) {
  const auto errs = validate(c);
  if (errs.empty()) return;
  std::string msg = "invalid case" + (c.name.empty() ? std::string() : " '" + c.name + "'") + ":";
  for (const auto& m : errs) msg += "\n  " + m;
  throw InputError(msg);
}

std::optional<ValidCase> ValidCase::of(const Case& c, std::vector<std::string>* errs) {
  std::vector<std::string> e = validate(c);
  if (e.empty()) return ValidCase(c);
  if (errs) *errs = std::move(e);
  return std::nullopt;
}

ValidCase ValidCase::checked(const Case& c) {
  check_valid(c);
  return ValidCase(c);
}

void set_q_lens(Case& c, std::vector<int32_t> qls) {
  if (qls.empty()) return;
  const auto [lo, hi] = std::minmax_element(qls.begin(), qls.end());
  c.q_len = *hi;
  if (*lo == *hi) qls.clear();
  c.q_lens = std::move(qls);
}

std::string vars(const Case& c) {
  std::ostringstream o;
  bool first = true;
  for_each_field(c, [&](const CaseField& f, const auto& v) {
    if (!f.key || (f.optional && at_default(v))) return;
    o << (first ? "" : " ") << f.key << "=";
    first = false;
    // The identity names the pool actually used, so num_blocks=0 and its resolved size agree.
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, int64_t>)
      if (&v == &c.num_blocks) return put(o, c.pool_blocks());
    put(o, v);
  });
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
  nlohmann::json j = nlohmann::json::object();
  for_each_field(c, [&](const CaseField& f, const auto& v) {
    if (std::string_view(f.json) == "name" && c.name.empty()) return;
    if (f.optional && at_default(v)) return;
    j[f.json] = json_of(v);
  });
  return j;
}

Case case_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw InputError("case must be a JSON object, got: " + j.dump());
  Case c;
  std::vector<std::string> errs;
  std::set<std::string> known;
  for_each_field(c, [&](const CaseField& f, auto& out) {
    known.insert(f.json);
    auto it = j.find(f.json);
    if (it == j.end()) return;
    try {
      if (auto why = read_json(*it, out))
        errs.push_back(std::string(f.json) + "=" + (it->is_string() ? it->get<std::string>() : it->dump()) + ": " + *why);
    } catch (const nlohmann::json::exception& ex) {
      errs.push_back(std::string(f.json) + "=" + it->dump() + ": " + ex.what());
    }
  });
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) errs.push_back(it.key() + ": unknown field");
  if (!j.contains("context_lens") && j.contains("num_seqs") && c.num_seqs >= 1)
    errs.push_back("context_lens: missing (one entry per sequence)");
  // One spelling per case: q_lens all equal is the uniform q_len; with q_lens, q_len is their
  // maximum whatever the JSON said; head_size_v equal to head_size is 0.
  if (!c.q_lens.empty()) set_q_lens(c, c.q_lens);
  if (c.head_size_v == c.head_size) c.head_size_v = 0;
  if (!errs.empty()) {
    std::string msg = "bad case JSON:";
    for (const auto& m : errs) msg += "\n  " + m;
    throw InputError(msg);
  }
  return c;
}

}  // namespace pa
