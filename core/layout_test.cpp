// Unit tests of the layout values: errors, printing, names and the traps of docs/layouts.md.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "core/layout.hpp"

namespace pa {
namespace {

const KvLayout kLayouts[] = {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled};

TEST(LayoutError, ShuffledRejectsBlockNotMultipleOfX) {
  // 8-bit: x = 16; 16-bit: x = 8.
  const auto e1 = layout_error(KvLayout::shuffled, 2, 8, 128, 1);
  ASSERT_TRUE(e1.has_value());
  EXPECT_NE(e1->find("block_size=8"), std::string::npos) << *e1;
  EXPECT_NE(e1->find("x=16"), std::string::npos) << *e1;
  const auto e2 = layout_error(KvLayout::shuffled, 2, 12, 128, 2);
  ASSERT_TRUE(e2.has_value());
  EXPECT_NE(e2->find("block_size=12"), std::string::npos) << *e2;
  EXPECT_NE(e2->find("x=8"), std::string::npos) << *e2;
}

TEST(LayoutError, SplitLayoutsRejectHeadSizeNotMultipleOfX) {
  for (KvLayout k : {KvLayout::vllm, KvLayout::shuffled}) {
    const auto e = layout_error(k, 1, 16, 72, 1);  // 72 % 16 != 0
    ASSERT_TRUE(e.has_value()) << to_string(k);
    EXPECT_NE(e->find("head_size=72"), std::string::npos) << *e;
    EXPECT_NE(e->find(to_string(k)), std::string::npos) << *e;
    const auto e2 = layout_error(k, 1, 16, 20, 2);  // 20 % 8 != 0
    ASSERT_TRUE(e2.has_value());
    EXPECT_NE(e2->find("head_size=20"), std::string::npos) << *e2;
    EXPECT_FALSE(layout_error(k, 1, 16, 72, 2).has_value()) << "72 % 8 == 0 for 16-bit";
  }
}

TEST(LayoutError, UnsplitLayoutsAcceptAnySizes) {
  for (KvLayout k : {KvLayout::nhd, KvLayout::hnd})
    for (int eb : {1, 2}) EXPECT_FALSE(layout_error(k, 3, 7, 13, eb).has_value()) << to_string(k);
  // vllm only splits D: any block size is fine.
  EXPECT_FALSE(layout_error(KvLayout::vllm, 1, 7, 32, 1).has_value());
}

TEST(LayoutError, RejectsNonPositiveSizesAndBadElementSize) {
  for (KvLayout k : kLayouts) {
    EXPECT_TRUE(layout_error(k, 0, 16, 128, 2).has_value());
    EXPECT_TRUE(layout_error(k, 1, 0, 128, 2).has_value());
    EXPECT_TRUE(layout_error(k, 1, 16, 0, 2).has_value());
    const auto e = layout_error(k, 1, 16, 128, 4);
    ASSERT_TRUE(e.has_value());
    EXPECT_NE(e->find("4"), std::string::npos) << *e;
  }
}

TEST(LayoutNames, ParseInvertsToString) {
  for (KvLayout k : kLayouts) {
    const auto p = parse_layout(to_string(k));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, k);
  }
  EXPECT_FALSE(parse_layout("NHD").has_value());
  for (ScaleMode m : {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                      ScaleMode::per_token_block_major, ScaleMode::per_token_head_major}) {
    const auto p = parse_scale_mode(to_string(m));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, m);
  }
  EXPECT_FALSE(parse_scale_mode("per_token").has_value());
}

TEST(LayoutToString, NonEmptyAndNamesLayoutAndTensor) {
  for (KvLayout k : kLayouts)
    for (KvTensor t : {KvTensor::key, KvTensor::value}) {
      const std::string s = make_page_layout(k, t, 2, 16, 64, 2).to_string();
      EXPECT_FALSE(s.empty());
      EXPECT_EQ(s.rfind(std::string(to_string(k)) + (t == KvTensor::key ? ".K" : ".V"), 0), 0u) << s;
    }
}

TEST(LayoutToString, SplitLayoutsDifferBetweenKAndV) {
  for (KvLayout k : {KvLayout::vllm, KvLayout::shuffled}) {
    const std::string ks = make_page_layout(k, KvTensor::key, 2, 16, 64, 2).to_string();
    const std::string vs = make_page_layout(k, KvTensor::value, 2, 16, 64, 2).to_string();
    EXPECT_NE(ks, vs);
    // Beyond the tensor tag: the shape:stride parts differ too.
    EXPECT_NE(ks.substr(ks.find(' ')), vs.substr(vs.find(' '))) << ks << " | " << vs;
  }
}

TEST(LayoutToString, ShowsPageStride) {
  const PageLayout L = make_page_layout(KvLayout::hnd, KvTensor::key, 2, 16, 64, 2, 5000);
  EXPECT_NE(L.to_string().find("5000"), std::string::npos) << L.to_string();
}

TEST(ScaleLayoutToString, NamesModeAndShape) {
  ScaleLayout s{ScaleMode::per_token_block_major, 4, 16, 10};
  EXPECT_EQ(s.to_string(), "per_token_block_major [10,4,16]");
  s.mode = ScaleMode::per_token_head_major;
  EXPECT_EQ(s.to_string(), "per_token_head_major [4,160]");
  s.mode = ScaleMode::per_head;
  EXPECT_EQ(s.to_string(), "per_head [4]");
}

TEST(ScaleLayout, SizesPerMode) {
  ScaleLayout s{ScaleMode::none, 4, 16, 10};
  EXPECT_EQ(s.size(), 1);
  s.mode = ScaleMode::per_tensor;
  EXPECT_EQ(s.size(), 1);
  s.mode = ScaleMode::per_head;
  EXPECT_EQ(s.size(), 4);
  s.mode = ScaleMode::per_token_block_major;
  EXPECT_EQ(s.size(), 640);
  s.mode = ScaleMode::per_token_head_major;
  EXPECT_EQ(s.size(), 640);
  EXPECT_TRUE(is_per_token(ScaleMode::per_token_head_major));
  EXPECT_FALSE(is_per_token(ScaleMode::per_head));
}

// Per-token scales follow the physical slot: the two per-token modes put the same slot in
// different places (a kernel reading the wrong mode reads a wrong scale).
TEST(ScaleLayout, BlockMajorAndHeadMajorDiffer) {
  const ScaleLayout bm{ScaleMode::per_token_block_major, 4, 16, 10};
  const ScaleLayout hm{ScaleMode::per_token_head_major, 4, 16, 10};
  EXPECT_EQ(bm(3, 2, 5), (3 * 4 + 2) * 16 + 5);
  EXPECT_EQ(hm(3, 2, 5), 2 * 160 + 3 * 16 + 5);
  EXPECT_NE(bm(3, 2, 5), hm(3, 2, 5));
}

bool same_offsets(const PageLayout& a, const PageLayout& b) {
  for (int32_t h = 0; h < a.heads; ++h)
    for (int32_t tok = 0; tok < a.block; ++tok)
      for (int32_t d = 0; d < a.head_size; ++d)
        if (a(2, h, tok, d) != b(2, h, tok, d)) return false;
  return true;
}

// docs/layouts.md trap: with 8-bit KV and B = 16 (= x), shuffled V and classic vllm V are the same
// bytes, so V-layout bugs only show with 16-bit KV or B >= 32.
TEST(LayoutTrap, EightBitBlock16ShuffledVEqualsVllmV) {
  for (int32_t D : {16, 64, 128})
    EXPECT_TRUE(same_offsets(make_page_layout(KvLayout::shuffled, KvTensor::value, 2, 16, D, 1),
                             make_page_layout(KvLayout::vllm, KvTensor::value, 2, 16, D, 1)))
        << "D=" << D;
}
TEST(LayoutTrap, SixteenBitBlock16ShuffledVDiffersFromVllmV) {
  EXPECT_FALSE(same_offsets(make_page_layout(KvLayout::shuffled, KvTensor::value, 2, 16, 64, 2),
                            make_page_layout(KvLayout::vllm, KvTensor::value, 2, 16, 64, 2)));
}
TEST(LayoutTrap, EightBitBlock32ShuffledVDiffersFromVllmV) {
  EXPECT_FALSE(same_offsets(make_page_layout(KvLayout::shuffled, KvTensor::value, 2, 32, 64, 1),
                            make_page_layout(KvLayout::vllm, KvTensor::value, 2, 32, 64, 1)));
}
// K is the same in vllm and shuffled for every size (both [NB,H,D/x,B,x]).
TEST(LayoutTrap, VllmAndShuffledKeysAlwaysAgree) {
  for (int eb : {1, 2})
    for (int32_t B : {16, 32, 64})
      EXPECT_TRUE(same_offsets(make_page_layout(KvLayout::shuffled, KvTensor::key, 2, B, 64, eb),
                               make_page_layout(KvLayout::vllm, KvTensor::key, 2, B, 64, eb)));
}

// Offsets past 2^31 elements do not wrap (int64 all the way): page 70000 of a 64k-element page.
TEST(LayoutOverflow, OffsetsPast2To31) {
  const PageLayout L = make_page_layout(KvLayout::hnd, KvTensor::key, 8, 64, 128, 2);
  const int64_t blk = 70000;
  EXPECT_EQ(L(blk, 7, 63, 127), blk * 65536 + 65535);
  EXPECT_GT(L(blk, 0, 0, 0), int64_t(1) << 31);
  EXPECT_EQ(L.cosize(blk + 1), (blk + 1) * 65536);
}

TEST(LayoutContiguous, VectorUnitPerLayout) {
  EXPECT_EQ(make_page_layout(KvLayout::nhd, KvTensor::key, 2, 16, 128, 2).contiguous_d(), 128);
  EXPECT_EQ(make_page_layout(KvLayout::hnd, KvTensor::value, 2, 16, 128, 2).contiguous_d(), 128);
  EXPECT_EQ(make_page_layout(KvLayout::vllm, KvTensor::key, 2, 16, 128, 2).contiguous_d(), 8);
  EXPECT_EQ(make_page_layout(KvLayout::vllm, KvTensor::key, 2, 16, 128, 1).contiguous_d(), 16);
  EXPECT_EQ(make_page_layout(KvLayout::vllm, KvTensor::value, 2, 16, 128, 2).contiguous_d(), 1);
  EXPECT_EQ(make_page_layout(KvLayout::shuffled, KvTensor::value, 2, 16, 128, 2).contiguous_d(), 1);
}

}  // namespace
}  // namespace pa
