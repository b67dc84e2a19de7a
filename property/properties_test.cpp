// The property suite over pacheck's own kernels: one test per (built-in kernel, property), each a
// thin call of check_kernel (property/check.hpp), the same code `pacheck check --kernel X` runs.
// Host twins by default; PACHECK_PROPERTY_BACKEND=gpu checks the GPU kernels instead. Case counts
// scale with PACHECK_PROPERTY_SCALE / PACHECK_PROPERTY_LEVEL=nightly. Seeds come from the test
// name, so CI draws the same cases on every run of a commit and a red test is red again when
// rerun; RC_PARAMS="seed=N" overrides that, and the nightly level draws fresh seeds (printed).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <iostream>

#include <rapidcheck/detail/Configuration.h>

#include "core/inputs.hpp"
#include "core/prng.hpp"
#include "kernels/cache_writer.hpp"
#include "property/check.hpp"

namespace pa {
namespace {

const gen::Limits kLimits = gen::limits_from_env();

// Cases per property at ci level. Chosen so the whole property label stays near a minute on two
// cores: the comparison with the reference gets the most, the relations fewer.
int base_cases(const std::string& property) {
  if (property == "reference") return 300;
  if (property == "split") return 150;
  if (property == "dispatcher") return 100;
  if (property == "refusal") return 100;
  if (property == "gqa") return 60;
  return 70;  // relocation, kv_scale, poison
}

bool nightly() {
  const char* level = std::getenv("PACHECK_PROPERTY_LEVEL");
  return level && std::string(level) == "nightly";
}

// The test's seed: RC_PARAMS's when it names one, fresh at nightly level, else from the name.
uint64_t seed_for(const std::string& test) {
  const char* rc_params = std::getenv("RC_PARAMS");
  if (rc_params && std::string(rc_params).find("seed") != std::string::npos)
    return rc::detail::configuration().testParams.seed;
  if (nightly()) return 0;
  return fnv1a(test);
}

Backend backend() { return prop::property_backend(); }

// The kernels under test, built once (registration parses and checks every descriptor).
const Registry& kernels() {
  static const Registry r = builtin_kernels(backend());
  return r;
}

Device device_of_backend() { return backend() == Backend::gpu ? gpu_device() : device_mi300x(); }

struct Param {
  std::string kernel, property;
};
std::ostream& operator<<(std::ostream& os, const Param& p) { return os << p.kernel << "/" << p.property; }

std::vector<Param> params() {
  std::vector<Param> out;
  for (const KernelPtr& k : kernels().all())
    for (const std::string& p : prop::property_names()) out.push_back({k->name(), p});
  return out;
}

class KernelProperty : public ::testing::TestWithParam<Param> {};

TEST_P(KernelProperty, Holds) {
  const Param& p = GetParam();
  std::string why;
  if (backend() == Backend::gpu && !gpu_available(&why)) GTEST_SKIP() << "PACHECK_PROPERTY_BACKEND=gpu: " << why;
  prop::CheckOptions o;
  o.cases = prop::scaled_count(base_cases(p.property));
  o.seed = seed_for(p.kernel + "/" + p.property);
  o.properties = {p.property};
  o.device = device_of_backend();
  o.every_device_model = backend() == Backend::host;  // the twins model both fp8 flavours
  o.limits = kLimits;
  const prop::CheckReport rep = prop::check_kernel(kernels().get(p.kernel), kernels().all(), o);
  prop::print_check_report(std::cout, rep);
  ASSERT_EQ(rep.results.size(), 1u);
  const prop::PropertyResult& r = rep.results[0];
  if (!r.applicable) GTEST_SKIP() << "not applicable: " << r.message;
  EXPECT_TRUE(r.passed) << r.message << "\nminimal case: " << (r.minimal ? vars(*r.minimal) : "?")
                        << "\nreplay: " << r.replay << "\nsaved: " << r.captured_file
                        << "\nrerun these draws: RC_PARAMS=\"seed=" << rep.seed << "\" with this test's filter";
}

INSTANTIATE_TEST_SUITE_P(Builtin, KernelProperty, ::testing::ValuesIn(params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           std::string n = info.param.kernel + "_" + info.param.property;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KernelProperty);

// reshape_and_cache (host twin; the GPU writer has the same contract) then gather reproduces
// every written value within one quantisation step of the KV format, and skipped tokens' slots
// stay poisoned. A writer's failure is not a kernel's, so it stays here rather than in
// check_kernel.
std::optional<std::string> writer_then_gather(const Case& c) {
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
}

TEST(CacheWriter, WriterThenGatherReproducesTheInputWithinQuantization) {
  prop::RunSettings s;
  s.cases = prop::scaled_count(200);
  s.seed = seed_for("writer/writer_then_gather");
  if (s.seed == 0) s.seed = prop::fresh_seed();
  s.kernel = "host_cache_writer";
  s.capture = false;  // the corpus replays kernels, not the writer: the message carries the case
  s.device_of = [](const Case& c) { return device_reading(c.kv_dtype); };
  const prop::PropertyResult r =
      prop::check_cases("writer_then_gather", gen::any_case(kLimits), writer_then_gather, s);
  std::cout << "[ cases    ] " << r.cases << " (seed " << s.seed << ")\n";
  EXPECT_TRUE(r.passed) << r.message << "\nminimal case: " << (r.minimal ? vars(*r.minimal) : "?")
                        << "\nsaved: " << r.captured_file;
}

}  // namespace
}  // namespace pa
