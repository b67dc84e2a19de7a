#include "worker/protocol.hpp"

#include "core/json_input.hpp"
#include "core/problem.hpp"

namespace pa::worker {

namespace {

// A worker is a plug-in's process: its numbers are checked, never cast (a float such as 1e10
// read into an int32 is undefined behaviour).
template <class T>
T integer(const nlohmann::json& v, const std::string& what) {
  if (const auto n = json_integer<T>(v)) return *n;
  throw InputError(what + "=" + v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                   ": expected an integer in " + integer_range<T>());
}
template <class T>
T integer_at(const nlohmann::json& j, const char* field, const std::string& where) {
  return integer<T>(j.at(field), where + field);
}
template <class T>
T integer_or(const nlohmann::json& j, const char* field, T dflt, const std::string& where) {
  return j.contains(field) ? integer_at<T>(j, field, where) : dflt;
}
std::vector<int32_t> integers(const nlohmann::json& j, const char* field, const std::string& where) {
  std::vector<int32_t> out;
  const std::string what = where + field;
  if (!j.at(field).is_array()) throw InputError(what + ": expected an array of integers");
  for (const auto& v : j.at(field)) out.push_back(integer<int32_t>(v, what + "[]"));
  return out;
}

template <class E>
nlohmann::json names(uint32_t mask, int count, const char* (*name)(E)) {
  nlohmann::json a = nlohmann::json::array();
  for (int i = 0; i < count; ++i)
    if (mask & (1u << i)) a.push_back(name(E(i)));
  return a;
}

template <class E>
uint32_t mask_of(const nlohmann::json& j, const char* field, std::optional<E> (*parse)(std::string_view),
                 const std::string& where) {
  uint32_t m = 0;
  if (!j.contains(field)) throw InputError(where + ": capability." + field + " missing");
  for (const auto& v : j.at(field)) {
    const std::string s = v.get<std::string>();
    const auto e = parse(s);
    if (!e) throw InputError(where + ": capability." + field + " has unknown name '" + s + "'");
    m |= 1u << unsigned(*e);
  }
  return m;
}

std::string rounding_to_name(const RoundTo& r) { return r.as_q ? "as_q" : r.to ? to_string(*r.to) : "fp32"; }

RoundTo rounding_from_name(const nlohmann::json& j, const char* field, const std::string& where) {
  if (j.contains(field) && !j.at(field).is_string())
    throw InputError(where + ": numerics." + field + ": expected a name (fp32, as_q or a dtype)");
  const std::string s = j.value(field, std::string("fp32"));
  if (s == "fp32") return {};
  if (s == "as_q") return {std::nullopt, true};
  const auto d = parse_dtype(s);
  if (!d) throw InputError(where + ": numerics." + field + "='" + s + "' is not fp32, as_q or a dtype name");
  return {d, false};
}

template <class E>
int32_t enum_field(const nlohmann::json& j, const char* field, std::optional<E> (*parse)(std::string_view)) {
  const std::string s = j.at(field).get<std::string>();
  const auto e = parse(s);
  if (!e) throw InputError(std::string("problem.") + field + ": unknown name '" + s + "'");
  return int32_t(*e);
}

}  // namespace

nlohmann::json problem_to_json(const pacheck_problem& p) {
  return {{"num_seqs", p.num_seqs}, {"q_len", p.q_len}, {"num_q_heads", p.num_q_heads},
          {"num_kv_heads", p.num_kv_heads}, {"head_size", p.head_size}, {"block_size", p.block_size},
          {"max_blocks_per_seq", p.max_blocks_per_seq}, {"max_context", p.max_context},
          {"num_blocks", p.num_blocks}, {"page_stride", p.page_stride},
          {"q_dtype", to_string(DType(p.q_dtype))}, {"kv_dtype", to_string(DType(p.kv_dtype))},
          {"kv_layout", to_string(KvLayout(p.kv_layout))}, {"scale_mode", to_string(ScaleMode(p.scale_mode))},
          {"softmax_scale", p.softmax_scale}, {"sliding_window", p.sliding_window},
          {"logit_softcap", p.logit_softcap}, {"has_alibi", p.has_alibi}, {"has_sinks", p.has_sinks},
          {"partition_size", p.partition_size}, {"want_lse", p.want_lse},
          // ABI minor 2: the ragged batch
          {"head_size_v", head_size_v(p)}, {"total_q", total_q(p)}, {"max_q_len", max_q_len(p)},
          {"page_table", to_string(PageTable(p.page_table))}, {"num_kv_indices", p.num_kv_indices},
          {"page_stride_v", page_stride_v(p)}};
}

pacheck_problem problem_from_json(const nlohmann::json& j) {
  pacheck_problem p{};
  p.struct_size = sizeof p;
  try {
    p.num_seqs = integer_at<int32_t>(j, "num_seqs", "problem.");
    p.q_len = integer_at<int32_t>(j, "q_len", "problem.");
    p.num_q_heads = integer_at<int32_t>(j, "num_q_heads", "problem.");
    p.num_kv_heads = integer_at<int32_t>(j, "num_kv_heads", "problem.");
    p.head_size = integer_at<int32_t>(j, "head_size", "problem.");
    p.block_size = integer_at<int32_t>(j, "block_size", "problem.");
    p.max_blocks_per_seq = integer_at<int32_t>(j, "max_blocks_per_seq", "problem.");
    p.max_context = integer_at<int32_t>(j, "max_context", "problem.");
    p.num_blocks = integer_at<int64_t>(j, "num_blocks", "problem.");
    p.page_stride = integer_at<int64_t>(j, "page_stride", "problem.");
    p.q_dtype = enum_field<DType>(j, "q_dtype", parse_dtype);
    p.kv_dtype = enum_field<DType>(j, "kv_dtype", parse_dtype);
    p.kv_layout = enum_field<KvLayout>(j, "kv_layout", parse_layout);
    p.scale_mode = enum_field<ScaleMode>(j, "scale_mode", parse_scale_mode);
    p.softmax_scale = j.at("softmax_scale").get<double>();
    p.sliding_window = integer_at<int32_t>(j, "sliding_window", "problem.");
    p.logit_softcap = j.at("logit_softcap").get<double>();
    p.has_alibi = integer_at<int32_t>(j, "has_alibi", "problem.");
    p.has_sinks = integer_at<int32_t>(j, "has_sinks", "problem.");
    p.partition_size = integer_at<int32_t>(j, "partition_size", "problem.");
    p.want_lse = integer_at<int32_t>(j, "want_lse", "problem.");
    // ABI minor 2, absent from an earlier peer's problem: their defaults (Dv = D, T = S * q_len).
    p.head_size_v = integer_or<int32_t>(j, "head_size_v", p.head_size, "problem.");
    p.total_q = integer_or<int32_t>(j, "total_q", p.num_seqs * p.q_len, "problem.");
    p.max_q_len = integer_or<int32_t>(j, "max_q_len", p.q_len, "problem.");
    p.page_table = j.contains("page_table") ? enum_field<PageTable>(j, "page_table", parse_page_table) : 0;
    p.num_kv_indices = integer_or<int32_t>(j, "num_kv_indices", 0, "problem.");
    p.page_stride_v = integer_or<int64_t>(j, "page_stride_v", p.page_stride, "problem.");
  } catch (const nlohmann::json::exception& e) {
    throw InputError(std::string("problem: ") + e.what());
  }
  return p;
}

nlohmann::json capability_to_json(const Capability& c) {
  return {{"q_dtypes", names<DType>(c.q_dtypes, kDTypeCount, to_string)},
          {"kv_dtypes", names<DType>(c.kv_dtypes, kDTypeCount, to_string)},
          {"kv_layouts", names<KvLayout>(c.layouts, kKvLayoutCount, to_string)},
          {"scale_modes", names<ScaleMode>(c.scales, 5, to_string)},
          {"head_sizes", c.head_sizes}, {"block_sizes", c.block_sizes}, {"max_gqa", c.max_gqa},
          {"gqa_tiles", c.gqa_tiles}, {"max_q_len", c.max_q_len}, {"max_q_len_x_gqa", c.max_q_len_x_gqa},
          {"max_context", c.max_context}, {"strided_pages", c.strided_pages},
          {"custom_scale", c.custom_softmax_scale}, {"sliding_window", c.sliding_window},
          {"logit_softcap", c.logit_softcap}, {"alibi", c.alibi}, {"sinks", c.sinks}, {"lse", c.lse},
          {"partition_of_pages", c.partition_multiple_of_block},
          {"token_scales_for_8bit", c.needs_token_scales_for_8bit},
          {"scales_for_8bit_only", c.scales_for_8bit_only}, {"fixed_partition", c.fixed_partition},
          {"page_stride_align", c.page_stride_align}, {"ragged", c.ragged}, {"empty_rows", c.empty_rows},
          {"page_tables", names<PageTable>(c.page_tables, kPageTableCount, to_string)},
          {"head_sizes_v", c.head_sizes_v}, {"lse_base", c.lse_base2 ? 2 : 0},
          {"plan", c.plan}, {"plan_covers_shorter", c.plan_covers_shorter}, {"graph_safe", c.graph_safe},
          {"deterministic", c.deterministic}};
}

Capability capability_from_json(const nlohmann::json& j, const std::string& where) {
  Capability c;
  try {
    c.q_dtypes = mask_of<DType>(j, "q_dtypes", parse_dtype, where);
    c.kv_dtypes = mask_of<DType>(j, "kv_dtypes", parse_dtype, where);
    c.layouts = mask_of<KvLayout>(j, "kv_layouts", parse_layout, where);
    c.scales = mask_of<ScaleMode>(j, "scale_modes", parse_scale_mode, where);
    const std::string cap = where + ": capability.";
    c.head_sizes = integers(j, "head_sizes", cap);
    c.block_sizes = integers(j, "block_sizes", cap);
    // 0 (or null) = no limit, as PACHECK_NO_LIMIT in the C ABI.
    c.max_gqa = j.at("max_gqa").is_null() ? 0 : integer_at<int32_t>(j, "max_gqa", cap);
    if (c.max_gqa < 0)
      throw InputError(where + ": capability.max_gqa=" + std::to_string(c.max_gqa) + " is negative (0 = no limit)");
    if (c.max_gqa == 0) c.max_gqa = kNoGqaLimit;
    c.gqa_tiles = j.contains("gqa_tiles") ? integers(j, "gqa_tiles", cap) : std::vector<int32_t>{};
    std::sort(c.gqa_tiles.begin(), c.gqa_tiles.end());
    c.max_q_len = integer_at<int32_t>(j, "max_q_len", cap);
    c.max_q_len_x_gqa = integer_or<int32_t>(j, "max_q_len_x_gqa", 0, cap);
    c.max_context = integer_or<int32_t>(j, "max_context", 0, cap);
    c.strided_pages = j.value("strided_pages", false);
    c.custom_softmax_scale = j.value("custom_scale", false);
    c.sliding_window = j.value("sliding_window", false);
    c.logit_softcap = j.value("logit_softcap", false);
    c.alibi = j.value("alibi", false);
    c.sinks = j.value("sinks", false);
    c.lse = j.value("lse", false);
    c.partition_multiple_of_block = j.value("partition_of_pages", false);
    c.needs_token_scales_for_8bit = j.value("token_scales_for_8bit", false);
    c.scales_for_8bit_only = j.value("scales_for_8bit_only", false);
    c.fixed_partition = j.value("fixed_partition", 0);
    c.page_stride_align = std::max(j.value("page_stride_align", 1), 1);
    // ABI minor 2 (absent: what an earlier adapter could declare).
    c.ragged = j.value("ragged", false);
    c.empty_rows = j.value("empty_rows", false);
    if (j.contains("page_tables")) c.page_tables = mask_of<PageTable>(j, "page_tables", parse_page_table, where);
    c.head_sizes_v = j.contains("head_sizes_v") ? integers(j, "head_sizes_v", cap) : std::vector<int32_t>{};
    const int lse_base = j.value("lse_base", 0);
    if (lse_base != 0 && lse_base != 2)
      throw InputError(where + ": capability.lse_base=" + std::to_string(lse_base) + " is neither 0 (natural) nor 2");
    c.lse_base2 = lse_base == 2;
    // ABI minor 3 (absent: no plan step, no promises).
    c.plan = j.value("plan", false);
    c.plan_covers_shorter = j.value("plan_covers_shorter", false);
    c.graph_safe = j.value("graph_safe", false);
    c.deterministic = j.value("deterministic", false);
    if (c.fixed_partition < 0)
      throw InputError(where + ": capability.fixed_partition=" + std::to_string(c.fixed_partition) + " is negative");
  } catch (const nlohmann::json::exception& e) {
    throw InputError(where + ": capability: " + e.what());
  }
  check_admits_something(c, where);
  return c;
}

namespace {
nlohmann::json roundings_to_json(const Roundings& r) {
  return {{"p_round", rounding_to_name(r.p)}, {"qk_round", rounding_to_name(r.qk)},
          {"partial_round", rounding_to_name(r.partial)}, {"v_round", rounding_to_name(r.v)},
          {"pv_round", rounding_to_name(r.pv)}};
}
Roundings roundings_from_json(const nlohmann::json& j, const std::string& where) {
  return {rounding_from_name(j, "p_round", where), rounding_from_name(j, "qk_round", where),
          rounding_from_name(j, "partial_round", where), rounding_from_name(j, "v_round", where),
          rounding_from_name(j, "pv_round", where)};
}
}  // namespace

// {"p_round": .., ..., "by_kv": [{"kv_dtypes": ["fp8_e4m3fn"], "qk_round": "as_q", ...}]}: as
// pacheck_numerics and pacheck_kernel.numerics_by_kv in the C ABI (the first entry naming the
// case's KV dtype governs it).
nlohmann::json numerics_to_json(const Numerics& n) {
  nlohmann::json j = roundings_to_json(n.base);
  if (!n.by_kv.empty()) {
    j["by_kv"] = nlohmann::json::array();
    for (const Numerics::ForKv& f : n.by_kv) {
      nlohmann::json e = roundings_to_json(f.r);
      e["kv_dtypes"] = names<DType>(f.kv_dtypes, kDTypeCount, to_string);
      j["by_kv"].push_back(e);
    }
  }
  return j;
}

Numerics numerics_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return {};
  Numerics n;
  n.base = roundings_from_json(j, where);
  if (j.contains("by_kv")) {
    if (!j.at("by_kv").is_array()) throw InputError(where + ": numerics.by_kv is not a list");
    for (const auto& e : j.at("by_kv")) {
      const std::string at = where + " numerics.by_kv[" + std::to_string(n.by_kv.size()) + "]";
      if (!e.is_object()) throw InputError(at + " is not an object");
      Numerics::ForKv f;
      try {
        f.kv_dtypes = mask_of<DType>(e, "kv_dtypes", parse_dtype, at);
      } catch (const nlohmann::json::exception& x) {
        throw InputError(at + ": kv_dtypes: " + x.what());
      }
      if (!f.kv_dtypes) throw InputError(at + ": kv_dtypes is empty (the entry would govern no KV dtype)");
      f.r = roundings_from_json(e, at);
      n.by_kv.push_back(f);
    }
  }
  return n;
}

nlohmann::json kernel_to_json(const Kernel& k, bool has_supports, bool has_workspace) {
  const KernelInfo& i = k.info();
  return {{"name", i.name}, {"version", i.version}, {"provenance", i.provenance},
          {"memory", i.memory == Memory::host ? "host" : "device"}, {"has_supports", has_supports},
          {"has_workspace", has_workspace},
          {"capability", capability_to_json(i.capability)}, {"numerics", numerics_to_json(i.numerics)}};
}

void crossed_to_json(const Crossed& x, nlohmann::json& resp) {
  resp["status"] = !x.skipped.empty()                     ? "skipped"
                   : x.status == PACHECK_OK               ? "ok"
                   : x.status == PACHECK_NOT_SUPPORTED    ? "not_supported"
                                                          : "error";
  resp["launch_status"] = x.status;
  resp["error"] = x.skipped.empty() ? x.error : x.skipped;
  resp["elapsed_ms"] = x.elapsed_ms;
  if (!x.fault.empty()) resp["fault"] = x.fault;
  if (x.sticky) resp["sticky"] = true;
  if (!x.overrun.empty()) resp["overrun"] = x.overrun;
  if (!x.written.empty()) resp["written"] = x.written;
  if (!x.instance.empty()) resp["instance"] = x.instance;
}

Crossed crossed_from_json(const nlohmann::json& resp) {
  Crossed x;
  const std::string status = resp.value("status", std::string("error"));
  const std::string error = resp.value("error", std::string());
  x.elapsed_ms = resp.value("elapsed_ms", 0.0);
  if (status == "skipped") {
    x.skipped = error.empty() ? "the worker could not run the launch" : error;
    return x;
  }
  x.status = status == "ok" ? PACHECK_OK : status == "not_supported" ? PACHECK_NOT_SUPPORTED : PACHECK_ERROR;
  if (resp.contains("launch_status") && resp["launch_status"].is_number_integer() && status == "error")
    x.status = resp["launch_status"].get<int>();
  if (x.status == PACHECK_OK && status != "ok") x.status = PACHECK_ERROR;
  x.error = x.status == PACHECK_OK ? "" : (error.empty() ? "(no error text)" : error);
  x.fault = resp.value("fault", std::string());
  x.sticky = resp.value("sticky", false);
  x.overrun = resp.value("overrun", std::string());
  x.written = resp.value("written", std::string());
  x.instance = resp.value("instance", std::string());
  return x;
}

}  // namespace pa::worker
