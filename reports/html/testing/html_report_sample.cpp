// Writes a sample nightly history (three reports, the newest with bench records) into a folder and
// renders it to <folder>/report.html, for the headless-browser check of the HTML report. The
// numbers are synthetic but shaped like real runs: every feature class, every status, failures
// that come and go across nights, a NaN, a failure before comparing, and a message that tries to
// close the page's <script>.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "core/case.hpp"
#include "reports/html/html_report.hpp"

namespace {

using pa::Case;
using pa::Status;
using namespace pa::report;

// A fixed generator: the sample is the same on every machine and every run.
struct Lcg {
  uint64_t s;
  double uniform() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return double(s >> 11) * 0x1.0p-53;
  }
};

std::vector<Case> sample_cases() {
  std::vector<Case> cases;
  const pa::KvLayout layouts[] = {pa::KvLayout::nhd, pa::KvLayout::hnd, pa::KvLayout::vllm, pa::KvLayout::shuffled};
  const pa::DType kv[] = {pa::DType::bf16, pa::DType::fp8_e4m3fnuz};
  for (int i = 0; i < 48; ++i) {
    Case c;
    c.seed = uint64_t(1000 + i);
    c.kv_layout = layouts[i % 4];
    c.kv_dtype = kv[(i / 4) % 2];
    c.kv_scale = c.kv_dtype == pa::DType::bf16 ? pa::ScaleMode::none
                 : (i % 3 == 0 ? pa::ScaleMode::per_token_block_major : pa::ScaleMode::per_tensor);
    c.num_q_heads = 8 << (i % 3);
    c.num_kv_heads = (i % 5 == 0) ? c.num_q_heads : 1 + (i % 2);
    c.q_len = 1 + (i % 7 == 3 ? 2 : 0) + (i % 11 == 5 ? 3 : 0);
    c.num_seqs = 1 + i % 4;
    c.context_lens.assign(size_t(c.num_seqs), 64 + 97 * (i % 9));
    for (int32_t& ctx : c.context_lens) ctx = std::max(ctx, c.q_len);
    if (i % 6 == 1) c.sliding_window = 128;
    if (i % 8 == 2) c.logit_softcap = 30.0;
    if (i % 9 == 4) c.alibi = true;
    if (i % 10 == 7) c.sinks = true;
    if (i % 12 == 9) c.softmax_scale = 0.07;
    if (i == 5) c.name = "regression: sinks with per-token fp8 scales";
    cases.push_back(c);
  }
  return cases;
}

// Which paths take a case, roughly like the real capability tables.
bool supports(const std::string& path, const Case& c) {
  if (path == "hip") return c.kv_layout == pa::KvLayout::shuffled || c.kv_layout == pa::KvLayout::vllm;
  if (path == "asm")
    return c.kv_layout == pa::KvLayout::shuffled && c.q_len == 1 && c.logit_softcap == 0 && !c.alibi;
  return true;
}

Record make_record(const Case& c, int64_t index, const std::string& path, int night, Lcg& rng) {
  Record r;
  r.case_index = index;
  r.slug = pa::slug(c);
  r.vars = pa::vars(c);
  r.name = c.name;
  r.case_json = pa::to_json(c);
  r.path = path;
  r.backend = "host";
  const std::string chosen = supports("asm", c) ? "asm" : supports("hip", c) ? "hip" : "v1";
  r.decision.chosen = chosen;
  r.decision.why = chosen == "asm" ? "num_seqs*Hq > 2*CU" : chosen == "hip" ? "hip takes shuffled/vllm" : "only v1 takes this case";
  r.ran = path == "auto" ? chosen : path;
  r.tolerance = {4.1e-3 * (1 + index % 3), 7.8e-3, "atol = 2*v_max*(...) (sample)"};
  r.replay = "pacheck replay --case '" + r.case_json.dump() + "' --paths " + path;
  r.timings = {0.2, 1.1, 0.3 + rng.uniform(), 1.9};
  r.metrics.count = int64_t(c.num_seqs) * c.q_len * c.num_q_heads * c.head_size;
  r.metrics.ref_inf_norm = 1.7;
  if (path != "auto" && !supports(path, c)) {
    r.status = Status::NotSupported;
    r.message = "kv_layout=" + std::string(pa::to_string(c.kv_layout)) + " not in the " + path + " capability table";
    r.metrics = {};
    return r;
  }
  const std::string ran = r.ran;
  // Failures that come and go over the nights, so the trend has something to show.
  const bool sinks_bug = ran == "hip" && c.sinks && night >= 1;
  const bool softcap_bug = ran == "v1" && c.logit_softcap > 0 && c.kv_dtype != pa::DType::bf16 && night == 1;
  const bool nan_bug = ran == "asm" && c.sliding_window > 0 && night == 2 && index < 10;
  const bool exception = path == "hip" && index == 14 && night == 2;
  const double bound = r.tolerance.atol + r.tolerance.rtol * 0.8;
  if (exception) {
    r.status = Status::Fail;
    r.metric = "exception";
    r.message = "kernel threw: unexpected token </script><script>alert('not escaped')</script> in config";
    r.metrics = {};
    return r;
  }
  if (nan_bug) {
    r.status = Status::Fail;
    r.metric = "nan";
    r.metrics.nan_count = 128;
    r.metrics.worst_index = 4242;
    r.metrics.worst_out = NAN;
    r.message = "NaN in output: 128 of " + std::to_string(r.metrics.count) + " elements, first at [s=0 i=0 h=2 d=18] (ref=0.1331)";
    return r;
  }
  if (sinks_bug || softcap_bug) {
    const double ratio = sinks_bug ? 3.5 + 40 * rng.uniform() : 1.2 + rng.uniform();
    r.status = Status::Fail;
    r.metric = "outside_tolerance";
    r.metrics.worst_index = 77 + index;
    r.metrics.worst_ref = 0.8;
    r.metrics.worst_out = 0.8 + ratio * bound;
    r.metrics.max_abs_err = ratio * bound;
    r.metrics.max_err_norm = r.metrics.max_abs_err / r.metrics.ref_inf_norm;
    r.metrics.outside = 40 + index;
    r.metrics.frac_outside = double(r.metrics.outside) / double(r.metrics.count);
    r.metrics.rel_rms = r.metrics.max_err_norm / 5;
    r.metrics.cosine = 0.9993;
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "%lld/%lld elements outside atol=%.3g + rtol=%.3g*|ref|; worst at [s=%d i=0 h=%d d=%d]: "
                  "out=%.6g ref=%.6g; max_err_norm=%.4g",
                  (long long)r.metrics.outside, (long long)r.metrics.count, r.tolerance.atol, r.tolerance.rtol,
                  c.num_seqs - 1, c.num_q_heads - 1, int(index % 128), r.metrics.worst_out, r.metrics.worst_ref,
                  r.metrics.max_err_norm);
    r.message = buf;
    return r;
  }
  // Passing: the share of the tolerance used is log-uniform, fp8 and v1 closer to the edge.
  const double lo = c.kv_dtype == pa::DType::bf16 ? -3.5 : -2.2, hi = ran == "v1" ? -0.15 : -0.5;
  const double share = std::pow(10.0, lo + (hi - lo) * rng.uniform());
  r.metrics.max_abs_err = share * (r.tolerance.atol + r.tolerance.rtol * r.metrics.ref_inf_norm);
  r.metrics.max_err_norm = r.metrics.max_abs_err / r.metrics.ref_inf_norm;
  r.metrics.rel_rms = r.metrics.max_err_norm / 4;
  r.metrics.cosine = 1 - r.metrics.rel_rms * r.metrics.rel_rms;
  char buf[160];
  std::snprintf(buf, sizeof buf, "max_err_norm=%.3g rel_rms=%.3g cosine=%.6f", r.metrics.max_err_norm,
                r.metrics.rel_rms, r.metrics.cosine);
  r.message = buf;
  return r;
}

std::vector<BenchRecord> sample_bench() {
  std::vector<BenchRecord> out;
  const double stream_gbs = 4300;  // the device's measured stream bandwidth
  struct Model { const char* name; int hq, hkv; };
  for (const Model& m : {Model{"llama3_70b_tp1", 64, 8}, Model{"llama3_8b_tp1", 32, 8}}) {
    for (int64_t ctx : {2048, 8192, 32768}) {
      for (int64_t seqs = 1; seqs <= 256; seqs *= 2) {
        const int64_t bytes = seqs * ctx * m.hkv * 128 * 2 * 2 + seqs * m.hq * 128 * 2 * 2;
        // How each kernel fills the machine: asm saturates late, hip mid, v1 early but lower.
        struct K { const char* name; double peak, half; };
        std::vector<BenchRecord> shape;
        for (const K& k : {K{"v1", 0.52, 2e5}, K{"hip", 0.78, 1e6}, K{"asm", 0.9, 4e6}}) {
          const double work = double(seqs) * double(ctx) * m.hq / 8;
          const double frac = k.peak * work / (work + k.half);
          BenchRecord b;
          b.kernel = k.name;
          b.model = m.name;
          b.kv_dtype = "bf16";
          b.num_seqs = seqs;
          b.context = ctx;
          b.fraction_of_stream = frac;
          b.bandwidth_gbs = frac * stream_gbs;
          b.bytes = bytes;
          b.median_ms = double(bytes) / (b.bandwidth_gbs * 1e6) + 0.004;
          b.spread_ms = b.median_ms * 0.03;
          b.timing = "gpu";
          shape.push_back(b);
        }
        size_t fastest = 0;
        for (size_t i = 1; i < shape.size(); ++i)
          if (shape[i].median_ms < shape[fastest].median_ms) fastest = i;
        // The dispatcher's rule: asm above 2*CU work items, else hip, which is not always right.
        const size_t chosen = seqs * m.hq > 2 * 304 ? 2 : 1;
        for (BenchRecord& b : shape) {
          b.fastest = shape[fastest].kernel;
          b.chosen = shape[chosen].kernel;
          // Leave some regrets out so the page derives them from the medians.
          if (ctx != 8192) b.regret = shape[chosen].median_ms / shape[fastest].median_ms - 1;
          out.push_back(b);
        }
      }
    }
  }
  return out;
}

Report sample_report(int night) {
  Report rep;
  Context& c = rep.context;
  c.pacheck_version = pacheck_version();
  c.git_commit = std::string("a1b2c3") + char('d' + night);
  c.compiler = compiler_id();
  c.device = pa::device_mi300x();
  c.backend = "host";
  c.backend_reason = "auto: no GPU (sample)";
  c.seed = 20261120 + uint64_t(night);
  c.suite = "nightly";
  c.paths = {"v1", "hip", "asm"};
  c.started_utc = "2026-11-2" + std::to_string(night) + "T02:00:00Z";
  Lcg rng{uint64_t(17 + night)};
  const std::vector<Case> cases = sample_cases();
  for (size_t i = 0; i < cases.size(); ++i)
    for (const char* path : {"v1", "hip", "asm", "auto"})
      rep.cases.push_back(make_record(cases[i], int64_t(i), path, night, rng));
  rep.summary = summarize(rep.cases);
  rep.summary.elapsed_ms = 81234.5 + 1000 * night;
  if (night == 2) rep.bench = sample_bench();
  return rep;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n  writes OUTDIR/nightly-{0,1,2}.json and OUTDIR/report.html\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  ::mkdir(dir.c_str(), 0755);
  try {
    std::vector<std::string> inputs;
    for (int night = 0; night < 3; ++night) {
      const std::string path = dir + "/nightly-" + std::to_string(night) + ".json";
      std::ofstream f(path, std::ios::trunc);
      f << to_json(sample_report(night)).dump(1) << "\n";
      if (!f) throw pa::InputError(path + ": cannot write");
      inputs.push_back(path);
    }
    write_html_report(inputs, dir + "/report.html");
    std::printf("wrote %s/report.html from %zu reports\n", dir.c_str(), inputs.size());
    return 0;
  } catch (const pa::InputError& e) {
    std::fprintf(stderr, "html_report_sample: %s\n", e.what());
    return 2;
  }
}
