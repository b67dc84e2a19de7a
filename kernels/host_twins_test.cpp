// Host twins: refusals outside capability, poison detection, page ids > 65535 (label `unit`).
// Generated cases inside each twin's capability are the property suite's (property/properties_test.cpp).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>

#include "testing/twin_test.hpp"

namespace pa {
namespace {

using namespace twin_test;

// Outside the capability every path refuses with a reason naming the field, and outputs nothing.
TEST(HostTwins, RefusesOutsideCapability) {
  struct Bad { std::string p; Case c; const char* field; };
  std::vector<Bad> bad;
  Case c;
  c.kv_layout = KvLayout::shuffled;  // v1 has no shuffled layout
  bad.push_back({"v1", c, "kv_layout"});
  c.head_size = 96;  // hip: {64,128,256}
  bad.push_back({"hip", c, "head_size"});
  c.head_size = 128;
  c.block_size = 32;  // asm: block 16 only
  bad.push_back({"asm", c, "block_size"});
  c.block_size = 16;
  c.sliding_window = 8;  // hip: no window
  bad.push_back({"hip", c, "sliding_window"});
  c.sliding_window = 0;
  c.num_q_heads = 16;
  c.q_len = 2;  // asm: q_len*G <= 16
  c.context_lens = {64};
  bad.push_back({"asm", c, "q_len*gqa"});
  c.q_len = 1;
  c.kv_dtype = DType::fp8_e4m3fn;  // asm: 8-bit needs per-token scales
  bad.push_back({"asm", c, "kv_scale"});
  for (const Bad& b : bad) {
    const Inputs in = make_inputs(b.c);
    const PathRecord r = run_and_judge(twin(b.p), b.c, make_call(in, pack(in)), reference_attention(in), device_mi355x());
    EXPECT_EQ(r.status, Status::NotSupported) << b.p << " " << vars(b.c);
    EXPECT_NE(r.message.find(b.field), std::string::npos) << r.message;
  }
  // Wrong fp8 flavour for the device is refused too (factor-2 errors otherwise).
  Case fnuz;
  fnuz.kv_dtype = DType::fp8_e4m3fnuz;
  EXPECT_TRUE(twin("v1").decline_reason(fnuz, device_mi355x()).has_value());
}

// Poison reaches a twin only if it reads a slot it must not: the packer poisons free pages,
// unused slots and padding, so a clean output proves none was read; and the negative control
// shows that a poisoned *visible* slot does reach the output (the check can fail).
TEST(HostTwins, PoisonedVisibleSlotIsDetected) {
  for (const std::string p : {"v1", "hip", "asm"}) {
    Case c;
    c.kv_layout = p == "v1" ? KvLayout::nhd : KvLayout::shuffled;
    c.num_q_heads = 8;
    c.context_lens = {40};
    c.page_pad = 16;
    const Inputs in = make_inputs(c);
    PhysicalKv kv = pack(in);
    EXPECT_EQ(judge(p, c, device_mi300x()), "") << p;
    const int32_t t = 37;  // a visible token: poison one V element of it
    store_code(kv.v_cache, 2, kv.v_layout(in.page_of(0, t), 0, t % c.block_size, 5),
               uint16_t(codec::poison_code(c.kv_dtype)));
    const KernelOutput r = twin(p).run(make_call(in, kv), device_mi300x());
    ASSERT_EQ(r.status, Status::Ok);
    EXPECT_TRUE(std::isnan(r.out[5])) << p << ": poison in a visible slot did not show";
  }
}

// Block ids above 65535 (16-bit index truncation) with a strided page view.
TEST(HostTwins, PageIdsAbove65535) {
  Case c;
  c.head_size = 16;
  c.block_size = 1;
  c.num_q_heads = 2;
  c.context_lens = {33, 7};
  c.num_seqs = 2;
  c.num_blocks = 70000;
  c.page_pad = 3;
  const Inputs in = make_inputs(c);
  int32_t max_id = 0;
  for (int32_t s = 0; s < 2; ++s)
    for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t) max_id = std::max(max_id, in.page_of(s, t));
  ASSERT_GT(max_id, 65535);
  EXPECT_EQ(judge("v1", c, device_mi300x()), "");
}

// Four million keys in one row: a single fp32 sum over them lost 1 % of the softmax denominator
// (the LSE was 9x outside its bound, and at 2^24 keys the output's scale check failed by 3 %). The
// twin now merges partial sums over chunks, as the GPU does.
TEST(HostTwins, OneRowOfFourMillionKeysStaysWithinItsBounds) {
  Case c;
  c.head_size = 16;
  c.block_size = 256;
  c.num_q_heads = 1;
  c.num_kv_heads = 1;
  c.context_lens = {1 << 22};
  c.seed = 5;
  EXPECT_EQ(judge("v1", c, device_mi300x()), "");
}

}  // namespace
}  // namespace pa
