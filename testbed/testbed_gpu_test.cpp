// The testbed's device path (label gpu): a case run with its inputs generated on the GPU and judged
// by the GPU oracle gets the verdicts the host path gives it -- the same status and deciding metric
// for every path and the dispatcher -- on the incident and model corpus, on generated cases and on
// ragged batches (per-sequence q_len, Dv != D, empty sequences, padded and CSR page tables).
// Each is cross-checked, so the two oracles' disagreement is measured on every one of them.
// Without a GPU every test is skipped with the reason (never counted as a pass).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include <nlohmann/json.hpp>

#include "inputs/inputs_device.hpp"
#include "regression/corpus.hpp"
#include "testbed/testbed.hpp"
#include "testing/entry_sample_test.hpp"

namespace pa {
namespace {

class DevicePath : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!gpu_available(&why)) GTEST_SKIP() << "no GPU: " << why;
    host_.kernels = builtin_kernels(Backend::gpu).all();
    host_.device = gpu_device();
    host_.inputs = Memory::host;
    device_ = host_;
    ASSERT_EQ(inputs_memory(device_.kernels, &why), Memory::device) << why;
    device_.inputs = Memory::device;
  }
  /// "" when both paths agree on every record of c, else the first difference.
  std::string compare(const Case& c) {
    const CaseRecord h = run_case(c, host_), d = run_case(c, device_, /*cross_check=*/true);
    if (h.paths.size() != d.paths.size()) return "record counts differ";
    worst_ = std::max(worst_, d.oracle_disagreement);
    bool ran = false;
    for (const PathRecord& p : d.paths) ran |= p.status == Status::Ok || (p.status == Status::Fail && p.metrics.count > 0);
    if (d.oracle != (ran ? "gpu" : "none")) return "the device path's oracle ran on '" + d.oracle + "'";
    for (size_t i = 0; i < h.paths.size(); ++i) {
      const PathRecord &a = h.paths[i], &b = d.paths[i];
      if (a.status != b.status || a.metric != b.metric)
        return a.path + ": host " + to_string(a.status) + " " + a.metric + " (" + a.message + "), device " +
               to_string(b.status) + " " + b.metric + " (" + b.message + ")";
      // Same input bytes, same kernel: the outputs are the same; only the oracle differs, in the 12th digit.
      if (a.status == Status::Ok && !(std::fabs(a.metrics.max_err_norm - b.metrics.max_err_norm) <=
                                      1e-6 * std::max(1e-30, a.metrics.max_err_norm) + 1e-12))
        return a.path + ": max_err_norm " + std::to_string(a.metrics.max_err_norm) + " vs " +
               std::to_string(b.metrics.max_err_norm);
    }
    if (h.input_hash != d.input_hash) return "input hashes differ";
    return "";
  }
  RunOptions host_, device_;
  double worst_ = 0;
};

TEST_F(DevicePath, CorpusVerdictsMatchTheHostPath) {
  int n = 0;
  for (const RegressionCase& r : load_corpus(corpus_dir())) {
    const std::string diff = compare(r.c);
    EXPECT_EQ(diff, "") << r.file << "\n  " << to_json(r.c).dump();
    ++n;
  }
  EXPECT_GT(n, 10);
  EXPECT_LE(worst_, kOracleAgreement);
  std::printf("corpus: %d cases, GPU oracle vs CPU oracle: max disagreement %.3g\n", n, worst_);
}

// A case beyond the GPU's memory is the harness's limit: Skipped, naming the bytes, not a Fail.
TEST_F(DevicePath, CaseBeyondTheGpuIsSkippedNamingTheBytes) {
  Case c;
  c.num_seqs = 1;
  c.context_lens = {100};
  c.num_q_heads = c.num_kv_heads = 8;
  c.kv_layout = KvLayout::nhd;
  c.num_blocks = 200000000;  // terabytes of pool
  ASSERT_TRUE(validate(c).empty());
  ASSERT_GT(device_bytes_needed(c), device_memory_available());
  const CaseRecord r = run_case(c, device_);
  bool skipped = false;
  for (const PathRecord& p : r.paths) {
    EXPECT_NE(p.status, Status::Fail) << p.path << ": " << p.message;
    if (p.status == Status::Skipped) {
      skipped = true;
      EXPECT_NE(p.message.find("bytes of GPU memory"), std::string::npos) << p.message;
    }
  }
  EXPECT_TRUE(skipped);
}

// The ragged family through both paths: the device inputs (cu_seqlens_q, the CSR arrays, V of
// Dv), the GPU oracle (packed rows, empty rows) and the unified kernels' verdicts must be the host
// path's; the classic paths decline these cases on both sides alike.
TEST_F(DevicePath, RaggedVerdictsMatchTheHostPath) {
  int n = 0;
  for (PageTable table : {PageTable::padded, PageTable::csr})
    for (const auto& [d, dv] : {std::pair<int32_t, int32_t>{128, 64}, std::pair<int32_t, int32_t>{64, 128},
                                std::pair<int32_t, int32_t>{128, 128}})
      for (bool sinks : {false, true}) {
        Case c;
        c.seed = uint64_t(220 + n);
        c.num_seqs = 4;
        c.context_lens = {0, 9, 300, 2050};
        c.q_lens = {3, 9, 1, 70};
        c.q_len = 70;
        c.num_q_heads = 16;
        c.num_kv_heads = 2;
        c.head_size = d;
        c.head_size_v = dv == d ? 0 : dv;
        c.page_table = table;
        c.sinks = sinks;
        c.kv_scale = n % 2 ? ScaleMode::per_head : ScaleMode::none;
        c.sliding_window = n % 3 == 0 ? 64 : 0;
        ASSERT_TRUE(validate(c).empty()) << to_json(c).dump();
        const std::string diff = compare(c);
        EXPECT_EQ(diff, "") << to_json(c).dump();
        ++n;
      }
  EXPECT_EQ(n, 12);
  EXPECT_LE(worst_, kOracleAgreement);
  std::printf("ragged: %d cases, GPU oracle vs CPU oracle: max disagreement %.3g\n", n, worst_);
}

TEST_F(DevicePath, GeneratedVerdictsMatchTheHostPath) {
  Rng rng(0xDE71CE, Stream::kCase);
  const Device gpu = gpu_device();
  for (int i = 0; i < 300; ++i) {
    const test::Sampled s = test::sample_case(rng, &gpu);
    const std::string diff = compare(s.c);
    ASSERT_EQ(diff, "") << "case " << i << ": " << to_json(s.c).dump();
  }
  EXPECT_LE(worst_, kOracleAgreement);
  std::printf("generated: 300 cases, GPU oracle vs CPU oracle: max disagreement %.3g\n", worst_);
}

}  // namespace
}  // namespace pa
