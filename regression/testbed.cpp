#include "regression/testbed.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>

#include <nlohmann/json.hpp>

#include "core/inputs.hpp"
#include "reference/attention.hpp"

namespace pa {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

PathRecord judge(PathId p, const Case& c, const Inputs& in, const PhysicalKv& kv, const ReferenceResult& ref,
                 const RunOptions& o) {
  PathRecord r;
  r.path = to_string(p);
  r.ran = p;
  r.backend = o.backend;
  const auto t0 = Clock::now();
  PathOutput out;
  if (o.backend == Backend::gpu) {
    std::string why;
    if (!gpu_available(&why)) {
      r.status = Status::Skipped;
      r.message = "gpu backend unavailable: " + why;
      r.wall_ms = ms_since(t0);
      return r;
    }
    out = run_gpu(p, in, kv, o.device);
  } else {
    out = run_host(p, in, kv, o.device);
  }
  r.elapsed_ms = out.elapsed_ms;
  // The capability table is the single source of truth: a path that runs a case its capability
  // excludes (or refuses one it claims) disagrees with the dispatcher, which is the routing-bug
  // class of design §1 even when the numbers happen to be right.
  const std::optional<std::string> declined = decline_reason(p, c, o.device);
  if (out.status == Status::NotSupported || out.status == Status::Skipped) {
    r.status = out.status;
    r.message = out.reason;
    if (out.status == Status::NotSupported && !declined) {
      r.status = Status::Fail;
      r.metric = "capability";
      r.message = "path refused a case its capability table supports: " + out.reason;
    }
    r.wall_ms = ms_since(t0);
    return r;
  }
  if (out.status == Status::Fail) {
    r.status = Status::Fail;
    r.metric = "launch";
    r.message = out.reason;
    r.wall_ms = ms_since(t0);
    return r;
  }
  r.tolerance = tolerance_for(error_model(p, c), ref.stats);
  if (out.out.size() != ref.out.size()) {
    r.status = Status::Fail;
    r.metric = "shape";
    r.message = "output has " + std::to_string(out.out.size()) + " elements, expected " +
                std::to_string(ref.out.size()) + " [S, q_len, Hq, D]";
    r.wall_ms = ms_since(t0);
    return r;
  }
  r.metrics = compare(out.out, ref.out, r.tolerance, ref.uniform);
  const Verdict v = verdict(r.metrics, r.tolerance,
                            output_shape(c));
  r.status = v.status;
  r.metric = v.metric;
  r.message = v.message;
  if (declined) {
    r.status = Status::Fail;
    r.metric = "capability";
    r.message = "path ran a case its capability table excludes (" + *declined + ")" +
                (v.message.empty() ? "" : "; " + v.message);
  }
  r.wall_ms = ms_since(t0);
  return r;
}

// The identity of a case that may be too broken for vars()/slug() (e.g. block_size 0 divides by
// zero): its JSON text, hashed.
void identify(CaseRecord& rec, bool valid) {
  if (valid) {
    rec.vars = vars(rec.c);
    rec.slug = slug(rec.c);
    return;
  }
  const std::string text = to_json(rec.c).dump();
  char buf[40];
  std::snprintf(buf, sizeof buf, "invalid_%016llx", (unsigned long long)fnv1a(text));
  rec.slug = buf;
  rec.vars = "invalid " + text;
}

}  // namespace

std::string replay_line(const Case& c) {
  std::string text = to_json(c).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Single-quote for the shell; a quote inside (a case name) becomes '\''.
  std::string quoted;
  for (char ch : text) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return "pacheck replay --case '" + quoted + "'";
}

CaseRecord run_case(const Case& c, const RunOptions& o) {
  CaseRecord rec;
  rec.c = c;
  rec.replay = replay_line(c);
  std::vector<PathId> paths = o.paths;
  if (paths.empty()) paths.assign(std::begin(kAllPaths), std::end(kAllPaths));

  const auto fail_all = [&](const std::string& metric, const std::string& message) {
    rec.paths.clear();
    for (PathId p : paths) {
      PathRecord r;
      r.path = to_string(p);
      r.backend = o.backend;
      r.status = Status::Fail;
      r.metric = metric;
      r.message = message;
      rec.paths.push_back(r);
    }
    if (o.dispatcher) {
      PathRecord r;
      r.path = "auto";
      r.backend = o.backend;
      r.status = Status::Fail;
      r.metric = metric;
      r.message = message;
      rec.paths.push_back(r);
    }
  };

  const std::vector<std::string> errs = validate(c);
  identify(rec, errs.empty());
  rec.decision = select_path(o.device, c);
  if (!errs.empty()) {
    fail_all("validation", "invalid case: " + join(errs, "; "));
    return rec;
  }
  try {
    auto t = Clock::now();
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    rec.input_hash = input_hash(in);
    rec.inputs_ms = ms_since(t);
    t = Clock::now();
    const ReferenceResult ref = reference_attention(in);
    rec.reference_ms = ms_since(t);

    std::map<PathId, PathRecord> done;
    for (PathId p : paths) {
      done[p] = judge(p, c, in, kv, ref, o);
      rec.paths.push_back(done[p]);
    }
    if (o.dispatcher) {
      PathRecord r;
      if (!rec.decision.path) {
        r.status = Status::NotSupported;
        r.message = rec.decision.error();
      } else {
        const PathId chosen = *rec.decision.path;
        auto it = done.find(chosen);
        r = it != done.end() ? it->second : judge(chosen, c, in, kv, ref, o);
        r.message = "chose " + std::string(to_string(chosen)) + ": " + rec.decision.why +
                    (r.message.empty() ? "" : "; " + r.message);
      }
      r.path = "auto";
      r.backend = o.backend;
      rec.paths.push_back(r);
    }
  } catch (const std::exception& e) {
    // A throwing library is a failure of this case, not of the whole run.
    fail_all("exception", std::string("exception: ") + e.what());
  }
  return rec;
}

}  // namespace pa
