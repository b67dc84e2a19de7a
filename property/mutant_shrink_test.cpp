// The property checker catches a planted bug and shrinks it to a minimal, replayable case. Bugs
// are planted from outside, as a test-only kernel wrapping the hip host twin and corrupting what
// it is handed so that it computes exactly what the buggy kernel would:
//   v_layout_index             V read with the vllm index instead of the shuffled one
//   token_scale_logical_index  per-token scales read at the logical page t / B, not the physical one
//   gqa_h_mod_hkv              query head h reads KV head h % Hkv instead of h / G
//   split_merge_surface        a split-K merge bug's failure surface: the output is wrong exactly
//                              when a sequence spans two or more partitions (a wrapper cannot
//                              reach between the two stages, so the symptom is planted instead);
//                              it checks that contexts shrink to two pages, not to a long context
// For each, the "reference" property must fail, shrink to at most 2 sequences and a context of at
// most 2 pages, save the case (naming the wrapper), and the replay line's case must fail with the
// wrapper and pass with the plain kernel.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <unistd.h>

#include <rapidcheck/detail/Configuration.h>

#include <nlohmann/json.hpp>

#include "inputs/inputs.hpp"
#include "property/check.hpp"
#include "regression/corpus.hpp"
#include "testbed/testbed.hpp"

namespace pa {
namespace {

enum class Bug { v_layout_index, token_scale_logical_index, gqa_h_mod_hkv, split_merge_surface };
const char* to_string(Bug b) {
  switch (b) {
    case Bug::v_layout_index: return "v_layout_index";
    case Bug::token_scale_logical_index: return "token_scale_logical_index";
    case Bug::gqa_h_mod_hkv: return "gqa_h_mod_hkv";
    case Bug::split_merge_surface: return "split_merge_surface";
  }
  return "?";
}

/// The wrapped kernel with one bug planted: same declaration, corrupted inputs (or heads).
class PlantedBug : public Kernel {
 public:
  PlantedBug(KernelPtr inner, Bug bug) : Kernel(renamed(inner->info(), bug)), inner_(std::move(inner)), bug_(bug) {}
  std::optional<std::string> decline_reason(const Case& c, const Device& dev) const override {
    return inner_->decline_reason(c, dev);
  }
  int64_t workspace_bytes(const Case& c) const override { return inner_->workspace_bytes(c); }
  KernelOutput run(const KernelCall& call, const Device& dev) const override {
    switch (bug_) {
      case Bug::v_layout_index: return v_layout_index(call, dev);
      case Bug::token_scale_logical_index: return token_scale_logical_index(call, dev);
      case Bug::gqa_h_mod_hkv: return gqa_h_mod_hkv(call, dev);
      case Bug::split_merge_surface: return split_merge_surface(call, dev);
    }
    return {};
  }

 private:
  static KernelInfo renamed(KernelInfo i, Bug bug) {
    i.name += std::string(".") + to_string(bug);
    i.source = "test-only planted bug";
    return i;
  }

  // Every V element moves to where the vllm index would look for it: the kernel reading its own
  // layout then reads what a kernel indexing V with vllm's [H, D, B] would.
  KernelOutput v_layout_index(KernelCall call, const Device& dev) const {
    const pacheck_problem& p = call.problem;
    const int32_t eb = dtype_bytes(DType(p.kv_dtype));
    const KvLayout own = KvLayout(p.kv_layout), wrong = own == KvLayout::shuffled ? KvLayout::vllm : KvLayout::nhd;
    const PageLayout a = make_page_layout(own, KvTensor::value, p.num_kv_heads, p.block_size, p.head_size, eb, p.page_stride);
    const PageLayout b = make_page_layout(wrong, KvTensor::value, p.num_kv_heads, p.block_size, p.head_size, eb, p.page_stride);
    const std::vector<uint8_t> old(call.v_cache.data, call.v_cache.data + call.v_cache.size);
    std::vector<uint8_t> v = old;
    for (int64_t blk = 0; blk < p.num_blocks; ++blk)
      for (int32_t h = 0; h < p.num_kv_heads; ++h)
        for (int32_t tok = 0; tok < p.block_size; ++tok)
          for (int32_t d = 0; d < p.head_size; ++d)
            store_code(v, eb, a(blk, h, tok, d), load_code(old, eb, b(blk, h, tok, d)));
    call.v_cache = v;
    return inner_->run(call, dev);
  }

  // The scale of logical page j of any sequence is read from physical page j.
  KernelOutput token_scale_logical_index(KernelCall call, const Device& dev) const {
    const pacheck_problem& p = call.problem;
    if (!is_per_token(ScaleMode(p.scale_mode))) return inner_->run(call, dev);
    const ScaleLayout sl{ScaleMode(p.scale_mode), p.num_kv_heads, p.block_size, p.num_blocks};
    std::vector<float> k(call.k_scales.data, call.k_scales.data + call.k_scales.size);
    std::vector<float> v(call.v_scales.data, call.v_scales.data + call.v_scales.size);
    for (int32_t s = 0; s < p.num_seqs; ++s) {
      const int32_t pages = (call.context_lens.data[s] + p.block_size - 1) / p.block_size;
      for (int32_t j = 0; j < pages; ++j) {
        const int32_t phys = call.block_tables.data[int64_t(s) * p.max_blocks_per_seq + j];
        for (int32_t h = 0; h < p.num_kv_heads; ++h)
          for (int32_t tok = 0; tok < p.block_size; ++tok) {
            k[size_t(sl(phys, h, tok))] = call.k_scales.data[sl(j, h, tok)];
            v[size_t(sl(phys, h, tok))] = call.v_scales.data[sl(j, h, tok)];
          }
      }
    }
    call.k_scales = k;
    call.v_scales = v;
    return inner_->run(call, dev);
  }

  // Query head h is moved to slot pi(h) = (h % Hkv) * G + h / Hkv, whose KV head pi(h) / G is
  // h % Hkv; slopes and sinks move with it and the output moves back.
  KernelOutput gqa_h_mod_hkv(KernelCall call, const Device& dev) const {
    const pacheck_problem& p = call.problem;
    const int32_t Hq = p.num_q_heads, Hkv = p.num_kv_heads, G = Hq / Hkv, D = p.head_size;
    const auto pi = [&](int32_t h) { return (h % Hkv) * G + h / Hkv; };
    const int64_t rows = int64_t(p.num_seqs) * p.q_len;
    std::vector<uint16_t> q(call.q.data, call.q.data + call.q.size);
    for (int64_t r = 0; r < rows; ++r)
      for (int32_t h = 0; h < Hq; ++h)
        for (int32_t d = 0; d < D; ++d) q[size_t((r * Hq + pi(h)) * D + d)] = call.q.data[(r * Hq + h) * D + d];
    std::vector<float> alibi(call.alibi_slopes.data, call.alibi_slopes.data + call.alibi_slopes.size);
    std::vector<float> sinks(call.sinks.data, call.sinks.data + call.sinks.size);
    for (int32_t h = 0; h < Hq; ++h) {
      if (!alibi.empty()) alibi[size_t(pi(h))] = call.alibi_slopes.data[h];
      if (!sinks.empty()) sinks[size_t(pi(h))] = call.sinks.data[h];
    }
    call.q = q;
    if (!alibi.empty()) call.alibi_slopes = alibi;
    if (!sinks.empty()) call.sinks = sinks;
    KernelOutput o = inner_->run(call, dev);
    if (o.status != Status::Ok) return o;
    const std::vector<float> out = o.out, lse = o.lse;
    for (int64_t r = 0; r < rows; ++r)
      for (int32_t h = 0; h < Hq; ++h) {
        for (int32_t d = 0; d < D; ++d) o.out[size_t((r * Hq + h) * D + d)] = out[size_t((r * Hq + pi(h)) * D + d)];
        if (!lse.empty()) o.lse[size_t(r * Hq + h)] = lse[size_t(r * Hq + pi(h))];
      }
    return o;
  }

  // Sequences whose context spans two or more partitions get their first output row shifted.
  KernelOutput split_merge_surface(const KernelCall& call, const Device& dev) const {
    const pacheck_problem& p = call.problem;
    KernelOutput o = inner_->run(call, dev);
    if (o.status != Status::Ok) return o;
    const size_t row = size_t(p.q_len) * size_t(p.num_q_heads) * size_t(p.head_size);
    for (int32_t s = 0; s < p.num_seqs; ++s)
      if (call.context_lens.data[s] > p.partition_size) o.out[size_t(s) * row] += 1.0f;
    return o;
  }

  KernelPtr inner_;
  Bug bug_;
};

KernelPtr hip_twin() { return builtin_kernels(Backend::host).get("hip"); }

// The replay line is `pacheck replay --case '<json>' --paths K`: take the JSON back out.
Case case_from_replay(const std::string& line) {
  const size_t a = line.find('\''), b = line.rfind('\'');
  return case_from_json(nlohmann::json::parse(line.substr(a + 1, b - a - 1)));
}

Status judged(const Kernel& k, const Case& c, const Device& dev) {
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  return run_and_judge(k, c, make_call(in, kv), reference_attention(in), dev).status;
}

// The run's seed. CI pins one per bug, so the shrink is the same every run; PACHECK_FRESH_SEEDS=1
// lets a fresh seed in (docs/testing.md), and RC_PARAMS="seed=N" replays one (the seed is printed
// with every result, passing or not).
uint64_t seed_for(Bug bug) {
  const char* rc_params = std::getenv("RC_PARAMS");
  if (rc_params && std::string(rc_params).find("seed") != std::string::npos)
    return rc::detail::configuration().testParams.seed;
  const char* fresh = std::getenv("PACHECK_FRESH_SEEDS");
  if (fresh && std::string(fresh) == "1") return prop::fresh_seed();
  return fnv1a(std::string("planted/") + to_string(bug));
}

class ShrinkToMinimal : public ::testing::TestWithParam<Bug> {};

void fails_shrinks_and_replays(Bug bug, uint64_t seed) {
  // One folder per process: runs side by side (.ci/fresh-seeds.sh -j) must not remove each other's.
  const auto dir = std::filesystem::temp_directory_path() /
                   (std::string("pacheck_planted_capture_") + to_string(bug) + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const KernelPtr hip = hip_twin();
  const KernelPtr planted = std::make_shared<PlantedBug>(hip, bug);
  prop::CheckOptions o;
  o.cases = 200;
  o.seed = seed;
  std::cout << "[ seed     ] " << o.seed << " (RC_PARAMS=\"seed=" << o.seed << "\" replays this run)\n";
  o.properties = {"reference"};
  o.device = device_mi300x();
  o.capture_dir = dir.string();
  const prop::CheckReport rep = prop::check_kernel(planted, {planted}, o);
  prop::print_check_report(std::cout, rep);
  ASSERT_EQ(rep.results.size(), 1u);
  const prop::PropertyResult& r = rep.results[0];
  ASSERT_TRUE(r.applicable) << r.message;
  ASSERT_FALSE(r.passed) << "the planted " << to_string(bug) << " survived " << r.cases << " cases";
  ASSERT_TRUE(r.minimal.has_value());
  const Case& m = *r.minimal;
  std::cout << "[ minimal  ] " << vars(m) << "\n";
  EXPECT_LE(m.num_seqs, 2) << "seed " << o.seed << ": " << vars(m);
  EXPECT_LE(m.max_context(), 2 * m.block_size) << "seed " << o.seed << ": " << vars(m);
  EXPECT_NE(r.message.find("kernel=" + planted->name()), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("metric="), std::string::npos) << r.message;

  // Saved as a regression case that loads and names the failing kernel.
  ASSERT_FALSE(r.captured_file.empty());
  const RegressionCase saved = load_regression_case(r.captured_file);
  EXPECT_EQ(vars(saved.c), vars(m));
  ASSERT_EQ(saved.must_pass.size(), 1u);
  EXPECT_EQ(saved.must_pass[0], planted->name());

  // The replay line reproduces the failure, and only the planted bug makes it fail.
  EXPECT_NE(r.replay.find("--paths " + planted->name()), std::string::npos) << r.replay;
  const Case replayed = case_from_replay(r.replay);
  EXPECT_EQ(vars(replayed), vars(m));
  EXPECT_EQ(judged(*planted, replayed, o.device), Status::Fail) << "replay did not reproduce the failure";
  EXPECT_EQ(judged(*hip, replayed, o.device), Status::Ok) << "the plain hip twin fails the replayed case";
  std::filesystem::remove_all(dir);
}

TEST_P(ShrinkToMinimal, FailsShrinksAndReplays) { fails_shrinks_and_replays(GetParam(), seed_for(GetParam())); }

INSTANTIATE_TEST_SUITE_P(Planted, ShrinkToMinimal,
                         ::testing::Values(Bug::v_layout_index, Bug::token_scale_logical_index, Bug::gqa_h_mod_hkv,
                                           Bug::split_merge_surface),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// A run is a function of its seed: the same seed finds the same minimal case, which is what makes
// CI's name-derived seeds reproducible per commit.
TEST(PlantedSeed, SameSeedSameMinimalCase) {
  const KernelPtr planted = std::make_shared<PlantedBug>(hip_twin(), Bug::split_merge_surface);
  prop::CheckOptions o;
  o.cases = 100;
  o.seed = 12345;
  o.properties = {"reference"};
  o.capture = false;
  o.every_device_model = true;
  const prop::PropertyResult a = prop::check_kernel(planted, {planted}, o).results.at(0);
  const prop::PropertyResult b = prop::check_kernel(planted, {planted}, o).results.at(0);
  ASSERT_FALSE(a.passed);
  ASSERT_TRUE(a.minimal && b.minimal);
  EXPECT_EQ(vars(*a.minimal), vars(*b.minimal));
  EXPECT_EQ(a.cases, b.cases);
  EXPECT_EQ(a.seed, b.seed);
}

// The replay line of a plug-in carries its --kernel spec and a non-default device model.
TEST(ReplayLine, NamesThePluginSpecAndTheDevice) {
  Case c;
  const std::string line = prop::replay_command(c, "mine", "--kernel ./libmine.so:mine", device_mi355x());
  EXPECT_EQ(line.rfind("pacheck replay --kernel ./libmine.so:mine --case '", 0), 0u) << line;
  EXPECT_NE(line.find("--paths mine"), std::string::npos) << line;
  EXPECT_NE(line.find("--device mi355x"), std::string::npos) << line;
  EXPECT_EQ(prop::replay_command(c, "hip", "", device_mi300x()).find("--device"), std::string::npos);
}

}  // namespace
}  // namespace pa
