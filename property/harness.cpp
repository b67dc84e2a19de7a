#include "property/harness.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdlib>

#include <rapidcheck/detail/Configuration.h>
#include <rapidcheck/detail/TestListenerAdapter.h>

#include "inputs/inputs.hpp"
#include "inputs/inputs_device.hpp"
#include "reference/attention_device.hpp"
#include "regression/corpus.hpp"
#include "testbed/testbed.hpp"

namespace pa::prop {

namespace {

std::string kernel_tag(const Kernel& k) { return "kernel=" + k.name(); }

// Whether `prop` still fails on `c`, evaluated as RapidCheck evaluates it (a property may draw
// inside, and RC_PRE may reject c): a few runs on c alone, no shrinking of the inner draws.
std::optional<std::string> still_fails(const Case& c, const CaseProperty& prop, uint64_t seed) {
  std::optional<std::string> failure;
  const auto body = [&]() {
    const Case d = *rc::gen::just(c);
    std::optional<std::string> f;
    try {
      f = prop(d);
    } catch (const rc::detail::CaseResult&) {
      throw;
    } catch (const rc::GenerationFailure&) {
      throw;
    } catch (const std::exception& e) {
      f = std::string("exception: ") + e.what();
    }
    if (f) {
      failure = f;
      RC_FAIL(*f);
    }
  };
  rc::detail::TestMetadata meta;
  meta.id = meta.description = "shrink";
  rc::detail::TestParams params;
  params.maxSuccess = 3;
  params.seed = seed;
  params.disableShrinking = true;
  rc::detail::TestListenerAdapter silent;
  const auto result = rc::detail::checkTestable(body, meta, params, silent);
  return result.template is<rc::detail::FailureResult>() ? failure : std::nullopt;
}

// The second shrink pass. RapidCheck shrinks each draw once, in the order drawn, so a failure can
// stop on a local minimum (a context that was needed under the first seed, kept after the seed
// shrank). Here the plainly simpler cases are tried directly, and any that still fails is kept,
// until none does, or the budget (2,000 evaluations, a minute) is spent: a case that then stays
// is still a failing one, only less small.
void shrink_further(Case& c, std::string& message, const CaseProperty& prop, uint64_t seed) {
  int budget = 2000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (bool improved = true; improved && budget > 0 && std::chrono::steady_clock::now() < deadline;) {
    improved = false;
    for (Case d : simpler_cases(c)) {
      if (!validate(d).empty()) continue;
      // A simpler shape under the case's own inputs, else under the inputs of a few small seeds:
      // whether a statistical bug (a biased rounding) shows can depend on the draw.
      std::vector<uint64_t> seeds = {d.seed};
      for (uint64_t k = 1; k <= 3; ++k)
        if (k != d.seed) seeds.push_back(k);
      for (const uint64_t input_seed : seeds) {
        if (improved || budget-- <= 0) break;
        d.seed = input_seed;
        if (auto failure = still_fails(d, prop, seed)) {
          c = d;
          message = *failure;
          improved = true;
        }
      }
      if (improved || budget <= 0) break;
    }
  }
}

// Small versions of a failing case, smallest first: each of its first sequences alone, with one
// query token or its own count, over a context of one token, one page and a token, one partition
// and a token (also at a partition of one page), or its own; then its first two sequences (a
// batch's offsets) over short contexts and over their own. A failure found among these is small
// from the start, and the shrink goes on from it instead of evaluating RapidCheck's steps at the
// drawn case's size (an MLA case of 128 heads and thousands of tokens costs tens of milliseconds
// a step).
std::vector<Case> tiny_versions(const Case& c) {
  std::vector<Case> out;
  std::vector<std::string> seen = {vars(c)};
  const auto add = [&](Case d) {
    const std::string v = vars(d);
    if (std::find(seen.begin(), seen.end(), v) != seen.end()) return;
    seen.push_back(v);
    out.push_back(std::move(d));
  };
  const int32_t B = c.block_size, part = c.partition_size, page_part = std::max(B, 16);
  for (int32_t s = 0; s < std::min<int32_t>(c.num_seqs, 3); ++s) {
    const int32_t ctx = c.context_lens[size_t(s)], ql = c.q_len_of(s);
    for (const int32_t q : {1, ql}) {
      std::vector<std::pair<int32_t, int32_t>> lens = {{1, part}, {B + 1, part}, {ctx, part}};  // (context, partition)
      if (part > 0) lens.push_back({part + 1, part});
      if (part > page_part) lens.push_back({page_part + 1, page_part});
      std::sort(lens.begin(), lens.end());
      for (const auto& [n, p] : lens) {
        if (n > ctx || n < q) continue;
        Case d = c;
        d.num_seqs = 1;
        d.context_lens = {n};
        d.partition_size = p;
        set_q_lens(d, {q});
        add(std::move(d));
      }
    }
  }
  if (c.num_seqs >= 2) {
    for (const bool short_contexts : {true, false}) {
      Case d = c;
      d.num_seqs = 2;
      d.context_lens.resize(2);
      const std::vector<int32_t> qls = {c.q_len_of(0), c.q_len_of(1)};
      if (short_contexts)
        for (int32_t s = 0; s < 2; ++s)
          d.context_lens[size_t(s)] = std::min(c.context_lens[size_t(s)], std::max(qls[size_t(s)], B + 1));
      set_q_lens(d, qls);
      add(std::move(d));
    }
  }
  return out;
}

}  // namespace

std::vector<Case> simpler_cases(const Case& c) {
  std::vector<Case> out;
  std::vector<int32_t> qls;
  for (int32_t s = 0; s < c.num_seqs; ++s) qls.push_back(c.q_len_of(s));
  for (int32_t s = 0; c.num_seqs > 1 && s < c.num_seqs; ++s) {
    Case d = c;
    d.num_seqs -= 1;
    d.context_lens.erase(d.context_lens.begin() + s);
    std::vector<int32_t> fewer = qls;
    fewer.erase(fewer.begin() + s);
    set_q_lens(d, fewer);
    out.push_back(std::move(d));
  }
  // Fewer query tokens in one sequence (toward plain decode), its context kept.
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (const int32_t n : {1, qls[size_t(s)] / 2}) {
      if (n < 1 || n >= qls[size_t(s)]) continue;
      Case d = c;
      std::vector<int32_t> fewer = qls;
      fewer[size_t(s)] = n;
      set_q_lens(d, fewer);
      out.push_back(std::move(d));
    }
  // One option or feature off at a time.
  const auto without = [&](auto edit) {
    Case d = c;
    edit(d);
    if (vars(d) != vars(c)) out.push_back(std::move(d));
  };
  without([](Case& d) { d.sliding_window = 0; });
  without([](Case& d) { d.logit_softcap = 0; });
  without([](Case& d) { d.alibi = false; });
  without([](Case& d) { d.sinks = false; });
  without([](Case& d) { d.softmax_scale = 0; });
  without([](Case& d) { d.page_pad = 0; });
  without([](Case& d) { d.values = Values::normal; });
  without([](Case& d) { d.table_pad = TablePad::garbage; });
  without([](Case& d) { d.head_size_v = 0; });
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = c.context_lens[size_t(s)], B = c.block_size;
    const int32_t ql = qls[size_t(s)];
    std::vector<int32_t> shorter = {ql, B, B + 1, 2 * B, ctx / 2, ctx - ctx / 4, ctx - B, ctx - 1};
    std::sort(shorter.begin(), shorter.end());
    shorter.erase(std::unique(shorter.begin(), shorter.end()), shorter.end());
    for (int32_t n : shorter) {
      if (n < ql || n < 1 || n >= ctx) continue;
      Case d = c;
      d.context_lens[size_t(s)] = n;
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::string replay_command(const Case& c, const std::string& kernel, const std::string& kernel_spec,
                           const Device& dev, const std::string& property) {
  std::string line = replay_line(c, kernel);
  // A plug-in must be loaded before the case can name it: the spec goes right after the verb.
  const std::string verb = "pacheck replay";
  const bool same_check = !property.empty() && property != "reference";
  if (line.compare(0, verb.size(), verb) == 0)
    line = (same_check ? std::string("pacheck check") : verb) + (kernel_spec.empty() ? "" : " " + kernel_spec) +
           line.substr(verb.size());
  if (same_check) line += " --properties " + property + " --no-capture";
  // The device model decides the fp8 flavour and routing; the default needs no flag, and a real
  // GPU is read from the runtime at replay.
  if (dev.name != device_mi300x().name && device_model(dev.name)) line += " --device " + dev.name;
  return line;
}

PropertyResult check_cases(const std::string& name, const rc::Gen<Case>& gen, const CaseProperty& prop,
                           const RunSettings& s) {
  PropertyResult r;
  r.name = name;
  r.seed = s.seed;
  std::optional<Case> last_failing;
  std::string last_message, last_discard;
  bool failed = false;
  int discards = 0;
  // Discards are counted until the first failure: shrinking discards many candidates on purpose.
  const auto discard = [&](const std::string& why) {
    if (!failed) {
      ++discards;
      last_discard = why;
    }
  };
  // Each accepted shrink step is a failing call, and the final counterexample is the last
  // failing call, so remembering the last failure gives the minimal case.
  bool jumped = false;  // a one-sequence version failed: RapidCheck's shrink steps need no evaluation
  auto body = [&]() {
    Case c;
    try {
      c = *gen;
    } catch (const rc::GenerationFailure& e) {
      discard(e.what());
      throw;
    }
    if (jumped) return;  // shrinking a case already replaced by a smaller failing one: a pass ends it
    std::optional<std::string> failure;
    try {
      failure = prop(c);
    } catch (const rc::detail::CaseResult& cr) {  // RC_PRE inside the property
      if (cr.type == rc::detail::CaseResult::Type::Discard) discard(cr.description);
      throw;
    } catch (const rc::GenerationFailure& e) {  // a generator drawn inside the property
      discard(e.what());
      throw;
    } catch (const std::exception& e) {  // a throwing kernel or reference is a finding, with its message
      failure = std::string("exception: ") + e.what();
    }
    if (failure) {
      if (!failed) {
        // The first failure: try its one-sequence versions before RapidCheck's shrink.
        failed = true;
        last_failing = c;
        last_message = *failure;
        for (const Case& d : tiny_versions(c)) {
          if (!validate(d).empty()) continue;
          if (auto tiny = still_fails(d, prop, s.seed)) {
            last_failing = d;
            last_message = *tiny;
            jumped = true;
            break;
          }
        }
        RC_FAIL(last_message);
      }
      if (!jumped) {
        last_failing = c;
        last_message = *failure;
      }
      RC_FAIL(*failure);
    }
  };
  rc::detail::TestMetadata meta;
  meta.id = name;
  meta.description = name;
  // RapidCheck's global configuration is read only when RC_PARAMS asks for it (loading it prints a
  // seed that is not the one used here), and a silent listener keeps RapidCheck's reproduce
  // strings out of the output: the replay line is the reproduction.
  rc::detail::TestParams params = std::getenv("RC_PARAMS") ? rc::detail::configuration().testParams
                                                            : rc::detail::TestParams{};
  params.maxSuccess = s.cases;
  params.seed = s.seed;
  rc::detail::TestListenerAdapter silent;
  const auto result = rc::detail::checkTestable(body, meta, params, silent);
  r.discarded = discards;
  if (result.template is<rc::detail::SuccessResult>()) {
    r.cases = result.template get<rc::detail::SuccessResult>().numSuccess;
    r.passed = r.cases >= s.cases;  // a pass means every case asked for ran and held
    if (!r.passed) r.message = "only " + std::to_string(r.cases) + " of " + std::to_string(s.cases) + " cases ran";
    return r;
  }
  if (result.template is<rc::detail::GaveUpResult>()) {
    // RapidCheck gives up when discards outnumber the cases it was asked for. That is a failure,
    // never a pass or a skip: a property that ran on few (or none) of its cases has shown nothing
    // about the rest, and a generator or precondition that rejects nearly every draw is a bug of
    // the check itself.
    r.cases = result.template get<rc::detail::GaveUpResult>().numSuccess;
    r.message = r.cases == 0 ? "every one of " + std::to_string(discards) + " draws was discarded; last: " + last_discard
                             : "only " + std::to_string(r.cases) + " of " + std::to_string(s.cases) +
                                   " cases ran before RapidCheck gave up (" + std::to_string(discards) +
                                   " draws discarded; last: " + last_discard + ")";
    return r;
  }
  if (result.template is<rc::detail::Error>()) {
    r.message = "RapidCheck error: " + result.template get<rc::detail::Error>().description;
    return r;
  }
  const auto& fr = result.template get<rc::detail::FailureResult>();
  r.cases = fr.numSuccess + 1;
  if (last_failing) shrink_further(*last_failing, last_message, prop, s.seed);
  r.minimal = last_failing;
  r.message = last_message.empty() ? fr.description : last_message;
  if (last_failing) {
    const Device dev = s.device_of ? s.device_of(*last_failing) : device_mi300x();
    r.replay = replay_command(*last_failing, s.kernel, s.kernel_spec, dev, s.property);
    if (s.capture)
      r.captured_file = capture_case(s.capture_dir.empty() ? captured_dir() : s.capture_dir, *last_failing,
                                     "captured by property " + name + " of kernel " + s.kernel + ": " + last_message,
                                     dev, {s.kernel});
  }
  return r;
}

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
  if (v == "host" || v.empty()) return Backend::host;
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
  if (!device_inputs_available(&why)) throw InputError("PACHECK_PROPERTY_REFERENCE=gpu but no GPU: " + why);
  return reference_attention_device(upload_inputs(in));
}

std::optional<std::string> judged(const Kernel& k, const Case& c, const KernelOutput& out, const ReferenceResult& ref,
                                  const std::string& relation) {
  const PathRecord r = judge(k, out, c, ref);
  if (r.status == Status::Ok) return std::nullopt;
  return kernel_tag(k) + " metric=" + r.metric + (relation.empty() ? "" : " (" + relation + ")") + ": " + r.message;
}

std::optional<std::string> agree(const Kernel& k, const Inputs& in, const KernelOutput& got, const KernelOutput& base,
                                 const std::string& relation) {
  // Deterministic kernels (every host twin) reproduce themselves bit for bit: no reference needed.
  if (got.out.size() == base.out.size() &&
      std::memcmp(got.out.data(), base.out.data(), got.out.size() * sizeof(float)) == 0)
    return std::nullopt;
  // The one judge with `base` in the reference's place: the reference's statistics set the
  // tolerance, and no uniform-attention or LSE check applies between two runs of one kernel.
  ReferenceResult against;
  against.stats = reference(in).stats;
  against.out.assign(base.out.begin(), base.out.end());
  return judged(k, in.c, got, against, relation);
}

std::optional<std::string> did_not_run(const Kernel& k, const KernelOutput& a, const KernelOutput& b) {
  for (const KernelOutput* o : {&a, &b})
    if (o->status != Status::Ok)
      return kernel_tag(k) + " status=" + to_string(o->status) + (o->metric.empty() ? "" : " metric=" + o->metric) +
             ": did not run: " + o->reason;
  return std::nullopt;
}

}  // namespace pa::prop
