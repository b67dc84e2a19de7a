#include "property/harness.hpp"

#include <cmath>
#include <cstdlib>
#include <iostream>

#include <rapidcheck/detail/Configuration.h>

#include "regression/corpus.hpp"
#include "regression/testbed.hpp"

namespace pa::prop {

int scaled_count(int base) {
  const char* s = std::getenv("PACHECK_PROPERTY_SCALE");
  if (!s || !*s) {
    const char* level = std::getenv("PACHECK_PROPERTY_LEVEL");
    return (level && std::string(level) == "nightly") ? base * 10 : base;
  }
  char* end = nullptr;
  const double k = std::strtod(s, &end);
  if (end == s || *end || !(k > 0))
    throw InputError(std::string("PACHECK_PROPERTY_SCALE=") + s + ": expected a positive number");
  return std::max(1, int(base * k));
}

Backend property_backend() {
  const char* b = std::getenv("PACHECK_PROPERTY_BACKEND");
  const std::string v = b ? b : "host";
  if (v == "host") return Backend::host;
  if (v == "gpu") return Backend::gpu;
  if (v == "auto") return gpu_available() ? Backend::gpu : Backend::host;
  throw InputError("PACHECK_PROPERTY_BACKEND=" + v + ": expected host, gpu or auto");
}

ReferenceResult reference(const Inputs& in) {
  const char* which = std::getenv("PACHECK_PROPERTY_REFERENCE");
  const std::string w = which ? which : "cpu";
  if (w == "cpu" || w.empty()) return reference_attention(in);
  if (w != "gpu") throw InputError("PACHECK_PROPERTY_REFERENCE=" + w + ": expected cpu or gpu");
  std::string why;
  if (!gpu_available(&why)) throw InputError("PACHECK_PROPERTY_REFERENCE=gpu but no GPU: " + why);
  const PathOutput o = run_gpu_reference(in, pack(in));
  if (o.status != Status::Ok) throw std::runtime_error("GPU reference kernel: " + o.reason);
  const Case& c = in.c;
  ReferenceResult r;
  r.out.assign(o.out.begin(), o.out.end());
  r.lse.assign(o.lse.begin(), o.lse.end());
  r.own_rounding = codec::unit_roundoff(c.q_dtype);
  // Bounds instead of the oracle's exact stats: v_max exactly, and logit_rms <= |scale| max|q| max||k||.
  double q_max = 0, k_norm = 0;
  for (float q : in.q) q_max = std::max(q_max, double(std::fabs(q)));
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t t = 0; t < in.context_lens[size_t(s)]; ++t)
      for (int32_t h = 0; h < c.num_kv_heads; ++h) {
        double k2 = 0;
        for (int32_t d = 0; d < c.head_size; ++d) {
          const double k = in.k.value(s, t, h, d);
          k2 += k * k;
          r.stats.v_max = std::max(r.stats.v_max, std::fabs(in.v.value(s, t, h, d)));
        }
        k_norm = std::max(k_norm, std::sqrt(k2));
      }
  r.stats.logit_rms = c.effective_softmax_scale() * q_max * k_norm;
  r.stats.max_context = c.max_context();
  return r;
}

Tolerance tolerance(ErrorModel em, const ReferenceResult& ref) {
  em.u_tmp += ref.own_rounding;  // atol gains 2 u v_max >= u |ref|: the reference's own rounding
  return tolerance_for(em, ref.stats);
}

std::optional<std::string> judge(PathId p, const Inputs& in, const PhysicalKv& kv,
                                 const ReferenceResult& ref, const Device& dev,
                                 const PathOutput* precomputed) {
  PathOutput local;
  if (!precomputed) {
    local = property_backend() == Backend::gpu ? run_gpu(p, in, kv, dev) : run_host(p, in, kv, dev);
    precomputed = &local;
  }
  const PathOutput& o = *precomputed;
  const std::string tag = std::string("path=") + to_string(p);
  if (o.status != Status::Ok) return tag + " status=" + to_string(o.status) + ": " + o.reason;
  const Case& c = in.c;
  const Tolerance tol = tolerance(error_model(p, c), ref);
  const Metrics m = compare(o.out, ref.out, tol, ref.uniform);
  const Verdict v = verdict(m, tol, output_shape(c));
  if (v.status != Status::Ok) return tag + " metric=" + v.metric + ": " + v.message;
  return std::nullopt;
}

CheckResult check_cases(const std::string& name, const rc::Gen<Case>& gen, const CaseProperty& prop,
                        const CheckOptions& opt) {
  CheckResult r;
  std::optional<Case> last_failing;
  std::string last_message;
  int runs = 0;
  // Each accepted shrink step is a failing call, and the final counterexample is the last
  // failing call, so remembering the last failure gives the minimal case.
  auto body = [&]() {
    const Case c = *gen;
    ++runs;
    std::optional<std::string> failure;
    try {
      failure = prop(c);
    } catch (const std::exception& e) {  // a throwing path or reference is a finding, with its message
      failure = std::string("exception: ") + e.what();
    }
    if (failure) {
      last_failing = c;
      last_message = *failure;
      RC_FAIL(*failure);
    }
  };
  rc::detail::TestMetadata meta;
  meta.id = name;
  meta.description = name;
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.maxSuccess = opt.cases;
  const auto result = rc::detail::checkTestable(body, meta, params);
  if (result.template is<rc::detail::SuccessResult>()) {
    r.cases = result.template get<rc::detail::SuccessResult>().numSuccess;
    return r;
  }
  r.passed = false;
  if (result.template is<rc::detail::FailureResult>()) {
    const auto& fr = result.template get<rc::detail::FailureResult>();
    r.cases = fr.numSuccess + 1;
  }
  r.minimal = last_failing;
  r.message = last_message;
  if (last_failing) {
    r.replay = replay_line(*last_failing);
    std::string paths;
    for (PathId p : opt.replay_paths) paths += (paths.empty() ? "" : ",") + std::string(to_string(p));
    if (!paths.empty()) r.replay += " --paths " + paths;
    if (opt.capture)
      r.captured_file = capture_case(opt.capture_dir.empty() ? captured_dir() : opt.capture_dir, *last_failing,
                                     "captured by property " + name + ": " + last_message,
                                     opt.device, opt.replay_paths);
  }
  std::cerr << "property " << name << " failed after " << r.cases << " cases (" << runs
            << " runs incl. shrinking)\n  minimal case: " << (last_failing ? vars(*last_failing) : "?")
            << "\n  " << r.message << "\n  replay: " << r.replay
            << (r.captured_file.empty() ? "" : "\n  saved: " + r.captured_file) << "\n";
  return r;
}

}  // namespace pa::prop
