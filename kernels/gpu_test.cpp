// GPU suite (label gpu): every path x kv dtype x layout x head size x block size x GQA x q_len in
// its capability, context boundaries, page ids > 65535, the ragged family (unified and
// unified_split on ragged batches with padded and CSR page tables, Dv != D and empty rows) and the
// cache writer -- each judged by the one judge against the CPU reference. Guard regions around every
// device buffer are checked inside the device crossing (kernels/crossing_device.hip) (a corrupted guard is a Fail).
// Without a GPU every test is skipped with the reason (never counted as a pass).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <utility>

#include "kernels/builtin.hpp"
#include "kernels/cache_writer.hpp"
#include "kernels/kernel.hpp"
#include "reference/attention.hpp"
#include "testbed/testbed.hpp"
#include "testing/case_shape.hpp"

namespace pa {
namespace {

class Gpu : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!gpu_available(&why)) GTEST_SKIP() << "no GPU: " << why;
    dev_ = gpu_device();
  }
  Device dev_;
};

const Registry& gpu_kernels() {
  static const Registry r = builtin_kernels(Backend::gpu);
  return r;
}
const Kernel& kernel(const std::string& p) { return *gpu_kernels().get(p); }
const char* kPaths[] = {"v1", "hip", "asm"};
const char* kUnifiedPaths[] = {"unified", "unified_split"};

/// "" when the GPU kernel matches the CPU reference through the one judge, else why not.
std::string judge(const std::string& p, const Case& c, const Device& dev) {
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  const ReferenceResult ref = reference_attention(in);
  const KernelOutput got = kernel(p).run(make_call(in, kv), dev);
  const PathRecord v = pa::judge(kernel(p), got, c, ref);  // the LSE too: every built-in declares it
  if (v.status != Status::Ok) return std::string(to_string(v.status)) + " " + v.metric + ": " + v.message;
  return "";
}

ScaleMode scale_for(const std::string& p, DType kv, int variant) {
  if (p == "v1") return variant % 2 ? ScaleMode::per_head : ScaleMode::per_tensor;
  if (p == "asm") return is_8bit(kv) || variant % 2 ? ScaleMode::per_token_block_major : ScaleMode::none;
  return variant % 2 ? ScaleMode::per_token_head_major : ScaleMode::per_token_block_major;
}

// The capability sweep. Sizes stay small (contexts around a block and a partition) so that the
// CPU reference keeps the suite fast; the long contexts are in ContextBoundaries.
TEST_F(Gpu, CapabilitySweep) {
  int ran = 0, variant = 0;
  for (const std::string p : kPaths) {
    const Capability& cap = kernel(p).info().capability;
    for (DType kv : {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8}) {
      if (!(cap.kv_dtypes & bit(kv)) || (is_fp8(kv) && kv != dev_.native_fp8)) continue;
      for (KvLayout layout : {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled}) {
        if (!(cap.layouts & bit(layout))) continue;
        for (int32_t D : p == "v1" ? std::vector<int32_t>{64, 80, 128, 256} : cap.head_sizes)
          for (int32_t B : p == "v1" ? std::vector<int32_t>{1, 16, 32} : cap.block_sizes)
            for (int32_t G : {1, 3, 8, 16})
              for (int32_t q_len : {1, 2, 4}) {
                Case c;
                c.seed = uint64_t(1000 + variant);
                c.kv_dtype = kv;
                c.kv_layout = layout;
                c.kv_scale = scale_for(p, kv, variant++);
                c.q_dtype = variant % 3 ? DType::bf16 : DType::fp16;
                c.head_size = D;
                c.block_size = B;
                c.num_kv_heads = 2;
                c.num_q_heads = 2 * G;
                c.q_len = q_len;
                c.num_seqs = 2;
                c.context_lens = {std::max(q_len, B + 1), 300};
                c.page_pad = variant % 4 == 0 ? 24 : 0;
                if (p == "hip") c.partition_size = variant % 2 ? 256 : 2 * B;
                if (p == "v1" && variant % 5 == 0) {
                  c.sliding_window = 40;
                  c.logit_softcap = 30;
                  c.alibi = true;
                  c.sinks = true;
                  c.softmax_scale = 0.1;
                }
                if (kernel(p).decline_reason(c, dev_)) continue;  // e.g. asm q_len*G > 16
                ++ran;
                EXPECT_EQ(judge(p, c, dev_), "") << p << " " << vars(c);
              }
      }
    }
  }
  RecordProperty("cases", ran);
  std::printf("capability sweep: %d GPU cases\n", ran);
  EXPECT_GT(ran, 100);
}

TEST_F(Gpu, ContextBoundaries) {
  for (const std::string p : kPaths) {
    for (int32_t ctx : {1, 15, 16, 17, 255, 256, 257, 4097}) {
      Case c;
      c.seed = uint64_t(ctx);
      c.kv_layout = p == "v1" ? KvLayout::vllm : KvLayout::shuffled;
      c.kv_scale = p == "v1" ? ScaleMode::none : ScaleMode::per_token_block_major;
      c.num_q_heads = 8;
      c.num_kv_heads = 1;
      c.num_seqs = 2;
      c.context_lens = {ctx, std::max(1, ctx / 2)};
      ASSERT_FALSE(kernel(p).decline_reason(c, dev_).has_value());
      EXPECT_EQ(judge(p, c, dev_), "") << p << " ctx=" << ctx;
    }
  }
}

TEST_F(Gpu, PageIdsAbove65535) {
  for (const std::string p : kPaths) {
    Case c;
    c.kv_layout = p == "v1" ? KvLayout::nhd : KvLayout::shuffled;
    c.num_q_heads = 8;
    c.num_kv_heads = 1;
    c.num_seqs = 3;
    c.context_lens = {600, 33, 1};
    c.num_blocks = 70000;
    c.page_pad = 8;
    const Inputs in = make_inputs(c);
    int32_t max_id = 0;
    for (int32_t b : in.block_tables) max_id = std::max(max_id, b);
    ASSERT_GT(max_id, 65535);
    EXPECT_EQ(judge(p, c, dev_), "") << p;
  }
}

TEST_F(Gpu, EveryBuiltinIsRegistered) {
  EXPECT_EQ(gpu_kernels().all().size(), kBuiltinCount);
  for (const char* p : kUnifiedPaths) EXPECT_NE(gpu_kernels().get(p), nullptr) << p;
}

// The ragged family: one launch over decode, MTP and extend rows with an empty slot, in both page
// tables, V narrower than, wider than or as wide as K, over the unified capability's dtypes,
// layouts, scales, page sizes and GQA, contexts at page and partition edges, and the options.
TEST_F(Gpu, UnifiedPathsOnRaggedBatches) {
  const std::pair<int32_t, int32_t> kHeads[] = {{128, 128}, {128, 64}, {64, 128}, {192, 128}, {256, 64}, {64, 64}};
  int ran = 0, variant = 0;
  for (const std::string p : kUnifiedPaths) {
    const Capability& cap = kernel(p).info().capability;
    for (DType kv : {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz}) {
      if (!(cap.kv_dtypes & bit(kv)) || (is_fp8(kv) && kv != dev_.native_fp8)) continue;
      for (KvLayout layout : {KvLayout::nhd, KvLayout::hnd})
        for (PageTable table : {PageTable::padded, PageTable::csr})
          for (const auto& [d, dv] : kHeads)
            for (int32_t G : {1, 4, 16}) {
              const int32_t B = cap.block_sizes[size_t(variant) % cap.block_sizes.size()];
              Case c = test::shaped_case(uint64_t(2200 + variant), {B + 1, 0, 257, 33}, 2 * G, 2, d, B);
              c.kv_dtype = kv;
              c.kv_layout = layout;
              c.kv_scale = variant % 3 == 0 ? ScaleMode::none : variant % 3 == 1 ? ScaleMode::per_tensor
                                                                                   : ScaleMode::per_head;
              c.q_dtype = variant % 2 ? DType::bf16 : DType::fp16;
              c.q_lens = {1, 3, 40, 5};
              c.q_len = 40;
              c.head_size_v = dv == d ? 0 : dv;
              c.page_table = table;
              c.page_pad = variant % 4 == 0 ? 16 : 0;
              c.partition_size = variant % 2 ? 256 : 64;
              if (variant % 5 == 0) c.sinks = true;
              if (variant % 7 == 0) {
                c.sliding_window = 24;
                c.logit_softcap = 30;
                c.softmax_scale = 0.1;
              }
              ++variant;
              if (const auto why = kernel(p).decline_reason(c, dev_)) {
                ADD_FAILURE() << p << " declines " << vars(c) << ": " << *why;  // all inside its capability
                continue;
              }
              ++ran;
              EXPECT_EQ(judge(p, c, dev_), "") << p << " " << vars(c);
            }
    }
  }
  RecordProperty("cases", ran);
  std::printf("ragged sweep: %d GPU cases\n", ran);
  EXPECT_GT(ran, 200);
}

// An empty sequence's rows are the contract's bits: O = 0 and LSE = -inf, or the sink's logit
// with sinks, in both page tables (a CSR sequence of no pages, a padded one of context 0).
TEST_F(Gpu, UnifiedEmptyRowsAreZeroWithTheEmptyLse) {
  for (const std::string p : kUnifiedPaths)
    for (PageTable table : {PageTable::padded, PageTable::csr})
      for (bool sinks : {false, true}) {
        Case c = test::shaped_case(77, {300, 0, 20}, 8, 2, 128);
        c.q_lens = {1, 4, 2};
        c.q_len = 4;
        c.head_size_v = 64;
        c.page_table = table;
        c.sinks = sinks;
        c.partition_size = 64;
        ASSERT_FALSE(kernel(p).decline_reason(c, dev_).has_value()) << vars(c);
        const Inputs in = make_inputs(c);
        const PhysicalKv kv = pack(in);
        const KernelOutput got = kernel(p).run(make_call(in, kv), dev_);
        ASSERT_EQ(got.status, Status::Ok) << p << ": " << got.reason;
        ASSERT_EQ(got.out.size(), size_t(7 * 8 * 64));
        ASSERT_EQ(got.lse.size(), size_t(7 * 8));
        for (int64_t row = 1 * 8; row < 5 * 8; ++row) {  // packed tokens 1..4: sequence 1
          for (int32_t d = 0; d < 64; ++d) EXPECT_EQ(got.out[size_t(row * 64 + d)], 0.f) << p << " row " << row;
          const float want = sinks ? in.sinks[size_t(row % 8)] : -INFINITY;
          EXPECT_EQ(got.lse[size_t(row)], want) << p << " row " << row << " " << vars(c);
        }
        EXPECT_EQ(judge(p, c, dev_), "") << p << " " << vars(c);
      }
}

// Writer then gather reproduces the logical values within one quantisation step; skipped slots
// (slot < 0) stay poisoned.
TEST_F(Gpu, CacheWriterRoundTrip) {
  int variant = 0;
  for (KvLayout layout : {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled})
    for (DType kv : {DType::bf16, DType::fp8_e4m3fn, DType::int8})
      for (ScaleMode sm : {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_token_block_major,
                           ScaleMode::per_token_head_major}) {
        if (kv == DType::int8 && sm == ScaleMode::none) continue;
        Case c = test::shaped_case(uint64_t(++variant), {70, 33}, 2, 2, 64, 32, kv, sm, layout);
        c.page_pad = 16;
        const Inputs in = make_inputs(c);
        const int64_t T = in.k.token_base.back();
        std::vector<bool> skip(size_t(T), false);
        skip[5] = true;
        PhysicalKv kvw;
        ASSERT_EQ(gpu_write_cache(in, skip, kvw), "") << vars(c);
        const LogicalKv got = gather(in, kvw, KvTensor::key);
        const double u = codec::unit_roundoff(kv);
        int bad = 0;
        for (int32_t s = 0; s < c.num_seqs; ++s)
          for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t)
            for (int32_t h = 0; h < 2; ++h) {
              const int64_t row = in.k.row(s, t);
              double amax = 0;
              for (int32_t d = 0; d < 64; ++d) amax = std::max(amax, std::fabs(in.k.value(s, t, h, d)));
              for (int32_t d = 0; d < 64; ++d) {
                const double want = in.k.value(s, t, h, d), have = got.value(s, t, h, d);
                if (skip[size_t(row)]) {  // slot < 0: the poisoned slot must be untouched
                  bad += got.code(s, t, h, d) != codec::poison_code(kv) ? 1 : 0;
                  continue;
                }
                // one rounding of x / scale, relative to the value (float formats) or to the
                // row's step (int8: amax / 127 per token); 1e-6 covers the fp32 x / s.
                const double step = kv == DType::int8 ? amax * 1.25 / 127 : std::fabs(want) * 2 * u;
                if (!(std::fabs(have - want) <= step + 1e-6 * amax + 1e-30)) ++bad;
              }
            }
        EXPECT_EQ(bad, 0) << vars(c);
      }
}

}  // namespace
}  // namespace pa
