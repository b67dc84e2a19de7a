// The property suite (design §6, issue 6). Each TEST runs one property over generated cases with
// a fixed count (scaled by PACHECK_PROPERTY_SCALE / PACHECK_PROPERTY_LEVEL=nightly). A failure
// prints the minimal case, a replay line, and saves the case under regression/captured/.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/prng.hpp"
#include "dispatch/select.hpp"
#include "property/generators.hpp"
#include "property/harness.hpp"

namespace pa {
namespace {

const gen::Limits kLimits = gen::limits_from_env();

// Cases inside p's capability for either fp8 flavour.
rc::Gen<Case> cases_in(PathId p) {
  return rc::gen::oneOf(gen::case_in(p, device_mi300x(), kLimits), gen::case_in(p, device_mi355x(), kLimits));
}

PathOutput run(PathId p, const Inputs& in, const PhysicalKv& kv, const Device& dev) {
  return prop::property_backend() == Backend::gpu ? run_gpu(p, in, kv, dev) : run_host(p, in, kv, dev);
}

prop::CheckResult check_path_property(const std::string& name, PathId p, int count,
                                      const std::function<std::optional<std::string>(const Case&, const Device&)>& f) {
  prop::CheckOptions opt;
  opt.cases = prop::scaled_count(count);
  opt.replay_paths = {p};
  return prop::check_cases(name, cases_in(p), [&](const Case& c) { return f(c, device_reading(c.kv_dtype)); }, opt);
}

std::string exact_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return "sizes differ";
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return "element " + std::to_string(i) + ": " + std::to_string(a[i]) + " vs " + std::to_string(b[i]);
  return "";
}

// ---- path == reference ------------------------------------------------------------------------

class PathMatchesReference : public ::testing::TestWithParam<PathId> {};

TEST_P(PathMatchesReference, OnGeneratedCasesInsideItsCapability) {
  const PathId p = GetParam();
  const auto r = check_path_property(std::string("path_matches_reference/") + to_string(p), p, 300,
                                     [p](const Case& c, const Device& dev) {
                                       const Inputs in = make_inputs(c);
                                       const PhysicalKv kv = pack(in);
                                       return prop::judge(p, in, kv, prop::reference(in), dev);
                                     });
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}
INSTANTIATE_TEST_SUITE_P(Paths, PathMatchesReference,
                         ::testing::Values(PathId::v1, PathId::hip, PathId::asm_),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// ---- dispatcher --------------------------------------------------------------------------------

TEST(Dispatcher, NeverSelectsAPathWhoseCapabilityExcludesTheCaseAndItsResultMatches) {
  prop::CheckOptions opt;
  opt.cases = prop::scaled_count(400);
  const auto r = prop::check_cases("dispatcher_selection", gen::any_case(kLimits), [](const Case& c) -> std::optional<std::string> {
    // Every device model: the CU count moves the asm threshold and the fp8 flavour the refusals.
    std::optional<Inputs> in;
    std::optional<PhysicalKv> kv;
    std::optional<ReferenceResult> ref;
    for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()}) {
      const Decision d = select_path(dev, c);
      const std::string on = " on " + dev.name;
      if (!d.path) {
        for (PathId p : kAllPaths)
          if (!decline_reason(p, c, dev))
            return std::string("dispatcher refused although ") + to_string(p) + " supports the case" + on + ": " + d.error();
        continue;
      }
      if (auto why = decline_reason(*d.path, c, dev))
        return std::string("dispatcher chose ") + to_string(*d.path) + on + " which declines: " + *why;
      if (!in) {
        in = make_inputs(c);
        kv = pack(*in);
        ref = prop::reference(*in);
      }
      if (auto fail = prop::judge(*d.path, *in, *kv, *ref, dev)) return *fail + on;
    }
    return std::nullopt;
  }, opt);
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

// ---- metamorphic relations ---------------------------------------------------------------------

class Metamorphic : public ::testing::TestWithParam<PathId> {};

// Moving pages to other physical ids (and the block table with them) changes nothing, bit for bit.
TEST_P(Metamorphic, RelocatingPagesChangesNothing) {
  const PathId p = GetParam();
  const auto r = check_path_property(std::string("relocation/") + to_string(p), p, 70,
                                     [p](const Case& c, const Device& dev) -> std::optional<std::string> {
    const Inputs in = make_inputs(c);
    Inputs moved = in;
    std::vector<int32_t> perm(size_t(in.num_blocks));
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = int32_t(i);
    Rng rng(c.seed ^ 0x5eedull, Stream::kMutant);
    shuffle(perm, rng);
    for (auto& id : moved.block_tables) id = perm[size_t(id)];
    const PathOutput a = run(p, in, pack(in), dev), b = run(p, moved, pack(moved), dev);
    if (a.status != Status::Ok || b.status != Status::Ok) return "path did not run: " + a.reason + b.reason;
    const std::string d = exact_diff(a.out, b.out);
    if (!d.empty()) return std::string("path=") + to_string(p) + " metric=exact: relocated pages changed " + d;
    return std::nullopt;
  });
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

// Poison is never read: replacing NaN poison (free pages, unused slots, padding, unused per-token
// scales) by finite junk changes nothing, bit for bit.
TEST_P(Metamorphic, PoisonedPaddingNeverLeaks) {
  const PathId p = GetParam();
  const auto r = check_path_property(std::string("poison/") + to_string(p), p, 70,
                                     [p](const Case& c, const Device& dev) -> std::optional<std::string> {
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    PhysicalKv junk = kv;
    const int32_t eb = dtype_bytes(c.kv_dtype);
    const uint16_t poison = uint16_t(codec::poison_code(c.kv_dtype));
    Rng rng(c.seed, Stream::kGarbage);
    for (auto* buf : {&junk.k_cache, &junk.v_cache}) {
      const int64_t n = int64_t(buf->size()) / eb;
      for (int64_t i = 0; i < n; ++i)
        if (load_code(*buf, eb, i) == poison)
          store_code(*buf, eb, i, uint16_t(codec::encode(c.kv_dtype, float(rng.uniform(-4, 4)))));
    }
    for (auto* s : {&junk.k_scales, &junk.v_scales})
      for (auto& v : *s)
        if (std::isnan(v)) v = float(rng.uniform(100, 1000));
    const PathOutput a = run(p, in, kv, dev), b = run(p, in, junk, dev);
    if (a.status != Status::Ok || b.status != Status::Ok) return "path did not run: " + a.reason + b.reason;
    for (float x : a.out)
      if (std::isnan(x)) return std::string("path=") + to_string(p) + " metric=nan: poison leaked into the output";
    const std::string d = exact_diff(a.out, b.out);
    if (!d.empty()) return std::string("path=") + to_string(p) + " metric=exact: junk in unused slots changed " + d;
    return std::nullopt;
  });
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

// K*s with k_scale/s (s a power of two) is the same logical K: for 16-bit KV nothing changes bit for
// bit; for 8-bit KV (s = 1/2, codes re-encoded) only within the path's tolerance plus one
// quantization step of the KV format.
TEST_P(Metamorphic, ScalingKAgainstItsScaleChangesNothingBeyondQuantization) {
  const PathId p = GetParam();
  const auto r = check_path_property(std::string("k_scale_invariance/") + to_string(p), p, 70,
                                     [p](const Case& c, const Device& dev) -> std::optional<std::string> {
    RC_PRE(c.kv_scale != ScaleMode::none);  // needs a scale to move the factor into (else discarded)
    const Inputs in = make_inputs(c);
    Inputs scaled = in;
    const bool eight = is_8bit(c.kv_dtype);
    const double s = eight ? 0.5 : 2.0;
    for (size_t i = 0; i < scaled.k.codes.size(); ++i)
      scaled.k.codes[i] = uint16_t(codec::encode(c.kv_dtype, float(codec::decode(c.kv_dtype, in.k.codes[i]) * s)));
    for (auto& v : scaled.k.scales) v = float(v / s);
    const PathOutput a = run(p, in, pack(in), dev), b = run(p, scaled, pack(scaled), dev);
    if (a.status != Status::Ok || b.status != Status::Ok) return "path did not run: " + a.reason + b.reason;
    if (!eight) {
      const std::string d = exact_diff(a.out, b.out);
      if (!d.empty()) return std::string("path=") + to_string(p) + " metric=exact: K*s with scale/s changed " + d;
      return std::nullopt;
    }
    const ReferenceResult ref = prop::reference(in);
    ErrorModel em = error_model(p, c);
    em.u_q += codec::unit_roundoff(c.kv_dtype);
    const Tolerance tol = prop::tolerance(em, ref);
    const Metrics m = compare(b.out, ref.out, tol);
    const Verdict v = verdict(m, tol, output_shape(c));
    if (v.status != Status::Ok) return std::string("path=") + to_string(p) + " metric=" + v.metric + ": " + v.message;
    return std::nullopt;
  });
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

// GQA equals MHA with every KV head repeated G times.
TEST_P(Metamorphic, GqaEqualsMhaWithRepeatedKvHeads) {
  const PathId p = GetParam();
  const auto r = check_path_property(std::string("gqa_equals_mha/") + to_string(p), p, 60,
                                     [p](const Case& c, const Device& dev) -> std::optional<std::string> {
    RC_PRE(c.gqa() > 1);  // MHA cases have nothing to repeat (discarded, not counted)
    Case mc = c;
    mc.num_kv_heads = c.num_q_heads;
    RC_PRE(!decline_reason(p, mc, dev));  // the MHA twin must be inside the path's capability too
    const Inputs in = make_inputs(c);
    Inputs mi = in;
    mi.c = mc;
    const int32_t G = c.gqa(), Hq = c.num_q_heads, D = c.head_size;
    for (LogicalKv* kv : {&mi.k, &mi.v}) {
      const LogicalKv& src = kv == &mi.k ? in.k : in.v;
      const int64_t T = src.token_base.back();
      kv->heads = Hq;
      kv->codes.assign(size_t(T * Hq * D), 0);
      kv->scales.assign(size_t(T * Hq), 0.f);
      for (int64_t t = 0; t < T; ++t)
        for (int32_t h = 0; h < Hq; ++h) {
          kv->scales[size_t(t * Hq + h)] = src.scales[size_t(t * src.heads + h / G)];
          for (int32_t d = 0; d < D; ++d)
            kv->codes[size_t((t * Hq + h) * D + d)] = src.codes[size_t((t * src.heads + h / G) * D + d)];
        }
    }
    const PathOutput a = run(p, in, pack(in), dev), b = run(p, mi, pack(mi), dev);
    if (a.status != Status::Ok || b.status != Status::Ok) return "path did not run: " + a.reason + b.reason;
    const ReferenceResult ref = prop::reference(in);
    const Tolerance tol = prop::tolerance(error_model(p, c), ref);
    std::vector<double> ad(a.out.begin(), a.out.end());
    const Metrics m = compare(b.out, ad, tol);
    const Verdict v = verdict(m, tol, output_shape(c));
    if (v.status != Status::Ok) return std::string("path=") + to_string(p) + " metric=" + v.metric + " (GQA vs MHA): " + v.message;
    return std::nullopt;
  });
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

INSTANTIATE_TEST_SUITE_P(Paths, Metamorphic, ::testing::Values(PathId::v1, PathId::hip, PathId::asm_),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// reshape_and_cache (host twin; the GPU writer has the same contract) then gather reproduces
// every written value within one quantisation step of the KV format, and skipped tokens' slots
// stay poisoned.
TEST(Metamorphic, WriterThenGatherReproducesTheInputWithinQuantization) {
  prop::CheckOptions opt;
  opt.cases = prop::scaled_count(200);
  const auto r = prop::check_cases("writer_then_gather", gen::any_case(kLimits), [](const Case& c) -> std::optional<std::string> {
    RC_PRE(c.kv_scale != ScaleMode::per_head);  // the writer does not produce per-head scales
    const Inputs in = make_inputs(c);
    const int64_t T = in.k.token_base.back();
    std::vector<bool> skip(static_cast<size_t>(T));
    Rng rng(c.seed, Stream::kGarbage);
    for (int64_t t = 0; t < T; ++t) skip[size_t(t)] = rng.uniform() < 0.2;
    PhysicalKv written;
    if (auto err = host_write_cache(in, skip, written); !err.empty()) return "writer refused: " + err;
    // One rounding of x / scale in the format: relative u, plus half the smallest step (the
    // subnormal / integer spacing), times the scale.
    const DType t = c.kv_dtype;
    const double u = t == DType::int8 ? 0.0 : codec::unit_roundoff(t);
    const double step = t == DType::bf16 ? 0x1.0p-133 : t == DType::fp16 ? 0x1.0p-24
                        : t == DType::fp8_e4m3fn ? 0x1.0p-9 : t == DType::fp8_e4m3fnuz ? 0x1.0p-10 : 1.0;
    const int32_t eb = dtype_bytes(t);
    const uint16_t poison = uint16_t(codec::poison_code(t));
    for (KvTensor which : {KvTensor::key, KvTensor::value}) {
      const LogicalKv got = gather(in, written, which);
      const LogicalKv& want = which == KvTensor::key ? in.k : in.v;
      const PageLayout& L = which == KvTensor::key ? written.k_layout : written.v_layout;
      const auto& cache = which == KvTensor::key ? written.k_cache : written.v_cache;
      const char* name = which == KvTensor::key ? "K" : "V";
      for (int32_t s = 0; s < c.num_seqs; ++s)
        for (int32_t tk = 0; tk < in.context_lens[size_t(s)]; ++tk)
          for (int32_t h = 0; h < c.num_kv_heads; ++h) {
            const int32_t blk = in.page_of(s, tk), tok = tk % c.block_size;
            if (skip[size_t(want.row(s, tk))]) {
              for (int32_t d = 0; d < c.head_size; ++d)
                if (load_code(cache, eb, L(blk, h, tok, d)) != poison)
                  return std::string("writer wrote ") + name + " of skipped token s=" + std::to_string(s) +
                         " t=" + std::to_string(tk) + " (slot < 0 must be skipped)";
              continue;
            }
            const double scale = got.scale(s, tk, h);
            for (int32_t d = 0; d < c.head_size; ++d) {
              const double x = double(float(want.value(s, tk, h, d))), y = got.value(s, tk, h, d);
              const double bound = u * std::fabs(x) + 0.5 * step * scale + 1e-6 * std::fabs(x);
              if (!(std::fabs(y - x) <= bound))
                return std::string("metric=quantization: ") + name + "[s=" + std::to_string(s) + " t=" +
                       std::to_string(tk) + " h=" + std::to_string(h) + " d=" + std::to_string(d) + "] wrote " +
                       std::to_string(y) + " for " + std::to_string(x) + " (bound " + std::to_string(bound) + ")";
            }
          }
    }
    return std::nullopt;
  }, opt);
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

// Split-K partition size changes nothing beyond rounding (the two-stage path).
TEST(Metamorphic, PartitionSizeChangesNothingBeyondRounding) {
  const PathId p = PathId::hip;
  const auto r = check_path_property("partition_invariance/hip", p, 150,
                                     [p](const Case& c, const Device& dev) -> std::optional<std::string> {
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    Inputs other = in;
    other.c.partition_size = c.partition_size == c.block_size ? 4 * c.block_size : c.block_size;
    const PathOutput a = run(p, in, kv, dev), b = run(p, other, kv, dev);
    if (a.status != Status::Ok || b.status != Status::Ok) return "path did not run: " + a.reason + b.reason;
    const ReferenceResult ref = prop::reference(in);
    const Tolerance tol = prop::tolerance(error_model(p, c), ref);
    std::vector<double> ad(a.out.begin(), a.out.end());
    const Metrics m = compare(b.out, ad, tol);
    const Verdict v = verdict(m, tol, output_shape(c));
    if (v.status != Status::Ok)
      return "path=hip metric=" + v.metric + " (partition " + std::to_string(c.partition_size) + " vs " +
             std::to_string(other.c.partition_size) + "): " + v.message;
    return std::nullopt;
  });
  EXPECT_TRUE(r.passed) << r.message << "\nreplay: " << r.replay;
  std::cout << "[ cases    ] " << r.cases << "\n";
}

}  // namespace
}  // namespace pa
