// Each contract mutant's transformation on a small case: the bytes it moves, the fields it drops,
// the outputs it changes -- checked directly, so a catch in the mutation test is known to come
// from the planted bug and not from a wrapper that broke the call some other way.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>

#include "mutate/contract_mutants.hpp"
#include "testing/case_shape.hpp"

namespace pa {
namespace {

/// A case's inputs and the call that views them (kept together: the call points into them).
struct Prepared {
  Inputs in;
  PhysicalKv kv;
  KernelCall call;
  explicit Prepared(const Case& c) : in(make_inputs(c)), kv(pack(in)), call(make_call(in, kv)) {}
};
std::unique_ptr<Prepared> prepare(const Case& c) { return std::make_unique<Prepared>(c); }

KernelPtr host(const char* name) { return builtin_kernels(Backend::host).get(name); }

// `m` planted into hip's call of `p` on MI300X; the test fails where it does not plant.
MutatedCall plant_in_hip(ContractMutant m, const Prepared& p) {
  MutatedCall out = mutate_call(m, p.call, *host("hip"), device_mi300x());
  EXPECT_TRUE(out.planted) << "not planted";
  return out;
}

Case shuffled_case(DType kv = DType::bf16, ScaleMode scale = ScaleMode::none) {
  return test::shaped_case(Case{}.seed, {40, 17}, 8, 2, 128, 16, kv, scale, KvLayout::shuffled);
}

uint16_t code_at(const View<uint8_t>& v, int32_t eb, int64_t i) {
  return eb == 1 ? v.data[i] : uint16_t(v.data[2 * i] | (v.data[2 * i + 1] << 8));
}

TEST(ContractMutants, CatalogueNamesAreUniqueAndParse) {
  std::set<std::string> names;
  for (const ContractMutantInfo& m : contract_mutants()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name;
    EXPECT_EQ(parse_contract_mutant(m.name), m.id);
    EXPECT_STRNE(m.incident_class, "");
  }
  EXPECT_EQ(names.size(), 17u);
  EXPECT_FALSE(parse_contract_mutant("no_such_mutant"));
}

TEST(ContractMutants, ApplyToTheDeclarationsTheyCanTouch) {
  // (mutant, a twin it applies to, one it does not)
  const struct {
    ContractMutant m;
    const char *to, *not_to;
  } table[] = {{ContractMutant::drop_softcap, "v1", "hip"},
               {ContractMutant::drop_custom_scale, "hip", "asm"},
               {ContractMutant::token_scale_logical_index, "asm", "v1"},
               {ContractMutant::per_tensor_scale_ignored, "v1", "asm"},
               {ContractMutant::head_size_routing, "asm", "hip"},
               {ContractMutant::block_size_routing, "asm", "v1"}};
  for (const auto& t : table) {
    EXPECT_TRUE(applies(t.m, host(t.to)->info().capability)) << int(t.m) << " to " << t.to;
    EXPECT_FALSE(applies(t.m, host(t.not_to)->info().capability)) << int(t.m) << " to " << t.not_to;
  }
}

TEST(ContractMutants, WrapperKeepsTheInnerNameAndNeverWritesTheCallersBuffers) {
  const auto p = prepare(shuffled_case());
  const std::vector<uint8_t> v_before = p->kv.v_cache;
  for (const ContractMutantInfo& m : contract_mutants()) {
    const KernelPtr k = mutate(host("hip"), m.id);
    EXPECT_EQ(k->name(), "hip");
    EXPECT_EQ(static_cast<const MutantKernel&>(*k).mutant(), m.id);
    (void)k->run(p->call, device_mi300x());
    EXPECT_EQ(p->kv.v_cache, v_before) << m.name;
  }
}

TEST(ContractMutants, VLayoutIndexMovesVIntoTheWrongFamilysOrder) {
  const auto p = prepare(shuffled_case());
  const MutatedCall m = plant_in_hip(ContractMutant::v_layout_index, *p);
  EXPECT_EQ(m.call.k_cache.data, p->call.k_cache.data);  // K untouched
  const PageLayout own = p->kv.v_layout;
  const PageLayout wrong = make_page_layout(KvLayout::vllm, KvTensor::value, 2, 16, 128, 2, own.page_stride);
  int64_t moved = 0;
  for (int64_t blk = 0; blk < p->call.problem.num_blocks; ++blk)
    for (int32_t h = 0; h < 2; ++h)
      for (int32_t tok = 0; tok < 16; ++tok)
        for (int32_t d = 0; d < 128; ++d) {
          ASSERT_EQ(code_at(m.call.v_cache, 2, own(blk, h, tok, d)), code_at(p->call.v_cache, 2, wrong(blk, h, tok, d)));
          moved += own(blk, h, tok, d) != wrong(blk, h, tok, d);
        }
  EXPECT_GT(moved, 0);
  EXPECT_EQ(wrong_v_layout(KvLayout::nhd), KvLayout::hnd);
  EXPECT_EQ(wrong_v_layout(KvLayout::hnd), KvLayout::nhd);
  EXPECT_EQ(wrong_v_layout(KvLayout::vllm), KvLayout::nhd);
}

TEST(ContractMutants, DensePageStrideReadsTheDensePoolAtTheTrueStride) {
  Case c = shuffled_case();
  c.page_pad = 40;
  const auto p = prepare(c);
  const MutatedCall m = plant_in_hip(ContractMutant::dense_page_stride, *p);
  const PageLayout dense = make_page_layout(KvLayout::shuffled, KvTensor::key, 2, 16, 128, 2, 0);
  for (int64_t blk = 0; blk < p->call.problem.num_blocks; ++blk)
    for (int32_t d = 0; d < 128; d += 7)
      ASSERT_EQ(code_at(m.call.k_cache, 2, p->kv.k_layout(blk, 1, 3, d)), code_at(p->call.k_cache, 2, dense(blk, 1, 3, d)));
  const auto dense_case = prepare(shuffled_case());  // no padding: nothing to plant
  EXPECT_FALSE(mutate_call(ContractMutant::dense_page_stride, dense_case->call, *host("hip"), device_mi300x()).planted);
}

TEST(ContractMutants, TokenScalesFollowTheLogicalPage) {
  Case c = shuffled_case(DType::fp8_e4m3fnuz, ScaleMode::per_token_head_major);
  const auto p = prepare(c);
  const MutatedCall m = plant_in_hip(ContractMutant::token_scale_logical_index, *p);
  const ScaleLayout& sl = p->kv.scale_layout;
  for (int32_t s = 0; s < 2; ++s)
    for (int32_t j = 0; j < c.blocks_for(c.context_lens[size_t(s)]); ++j) {
      const int32_t blk = p->in.block_tables[size_t(s * p->in.max_blocks_per_seq + j)];
      const float want = p->kv.v_scales[size_t(sl(j, 1, 5))];
      const float got = m.call.v_scales.data[sl(blk, 1, 5)];
      EXPECT_TRUE(got == want || (std::isnan(got) && std::isnan(want))) << s << " " << j;
    }
}

TEST(ContractMutants, ScaleMutantsReplaceTheScales) {
  Case c = shuffled_case(DType::fp8_e4m3fnuz, ScaleMode::per_token_block_major);
  const auto tok = prepare(c);
  const MutatedCall m = plant_in_hip(ContractMutant::per_token_scale_as_per_tensor, *tok);
  for (size_t i = 0; i < m.call.k_scales.size; ++i) {
    const float a = m.call.k_scales.data[i], b = tok->kv.k_scales[0];
    ASSERT_TRUE(a == b || (std::isnan(a) && std::isnan(b)));
  }
  c.kv_scale = ScaleMode::per_tensor;
  const auto tensor = prepare(c);
  ASSERT_NE(tensor->kv.k_scales[0], 1.0f);
  const MutatedCall t = plant_in_hip(ContractMutant::per_tensor_scale_ignored, *tensor);
  EXPECT_EQ(t.call.k_scales.data[0], 1.0f);
  EXPECT_EQ(t.call.v_scales.data[0], 1.0f);
  EXPECT_FALSE(mutate_call(ContractMutant::per_tensor_scale_ignored, tok->call, *host("hip"), device_mi300x()).planted);
}

TEST(ContractMutants, Fp8WrongFlavourTranscodesEveryByte) {
  Case c = shuffled_case(DType::fp8_e4m3fnuz, ScaleMode::per_tensor);
  const auto p = prepare(c);
  const MutatedCall m = plant_in_hip(ContractMutant::fp8_wrong_flavour, *p);
  int64_t changed = 0;
  for (size_t i = 0; i < m.call.k_cache.size; ++i) {
    const uint8_t want = uint8_t(codec::encode(DType::fp8_e4m3fnuz, codec::decode(DType::fp8_e4m3fn, p->kv.k_cache[i])));
    ASSERT_EQ(m.call.k_cache.data[i], want);
    changed += m.call.k_cache.data[i] != p->kv.k_cache[i];
  }
  EXPECT_GT(changed, 0);
}

TEST(ContractMutants, DroppedOptionsLeaveTheProblem) {
  Case c;
  c.num_q_heads = 4;
  c.context_lens = {40};
  c.softmax_scale = 0.05;
  c.logit_softcap = 5.0;
  c.sliding_window = 8;
  c.sinks = true;
  const auto p = prepare(c);
  const KernelPtr v1 = host("v1");
  const Device dev = device_mi300x();
  const MutatedCall s = mutate_call(ContractMutant::drop_custom_scale, p->call, *v1, dev);
  EXPECT_TRUE(s.planted);
  EXPECT_DOUBLE_EQ(s.call.problem.softmax_scale, 1.0 / std::sqrt(128.0));
  const MutatedCall cap = mutate_call(ContractMutant::drop_softcap, p->call, *v1, dev);
  EXPECT_TRUE(cap.planted);
  EXPECT_EQ(cap.call.problem.logit_softcap, 0.0);
  const MutatedCall w = mutate_call(ContractMutant::drop_window, p->call, *v1, dev);
  EXPECT_TRUE(w.planted);
  EXPECT_EQ(w.call.problem.sliding_window, 0);
  const MutatedCall k = mutate_call(ContractMutant::drop_sinks, p->call, *v1, dev);
  EXPECT_TRUE(k.planted);
  EXPECT_EQ(k.call.problem.has_sinks, 0);
  EXPECT_TRUE(k.call.sinks.empty());
  EXPECT_FALSE(p->call.sinks.empty());
  const auto plain = prepare(Case{});
  for (ContractMutant m : {ContractMutant::drop_custom_scale, ContractMutant::drop_softcap, ContractMutant::drop_window,
                           ContractMutant::drop_sinks})
    EXPECT_FALSE(mutate_call(m, plain->call, *v1, dev).planted) << m;
}

TEST(ContractMutants, GqaHeadModHkvChangesExactlyTheRowsWhoseKvHeadMoves) {
  const Case c = shuffled_case();  // Hq = 8, Hkv = 2: h / 4 and h % 2 agree for h in {0, 2, 5, 7}
  const auto p = prepare(c);
  const Device dev = device_mi300x();
  const MutatedCall m = mutate_call(ContractMutant::gqa_h_mod_hkv, p->call, *host("hip"), dev);
  ASSERT_TRUE(m.planted);
  EXPECT_EQ(m.call.problem.num_kv_heads, 8);
  const KernelOutput good = host("hip")->run(p->call, dev);
  const KernelOutput bad = mutate(host("hip"), ContractMutant::gqa_h_mod_hkv)->run(p->call, dev);
  ASSERT_EQ(good.status, Status::Ok);
  ASSERT_EQ(bad.status, Status::Ok) << bad.reason;
  for (int32_t s = 0; s < 2; ++s)
    for (int32_t h = 0; h < 8; ++h) {
      bool same = true;
      for (int32_t d = 0; d < 128; ++d) {
        const size_t i = size_t(((s * 8) + h) * 128 + d);
        same = same && good.out[i] == bad.out[i];
      }
      EXPECT_EQ(same, h / 4 == h % 2) << "s=" << s << " h=" << h;
    }
  Case mha = c;
  mha.num_kv_heads = 8;  // G = 1: nothing to plant
  const auto q = prepare(mha);
  EXPECT_FALSE(mutate_call(ContractMutant::gqa_h_mod_hkv, q->call, *host("hip"), dev).planted);
}

TEST(ContractMutants, UnusedSlotReadReachesThePoison) {
  Case c;
  c.context_lens = {40, 32};
  c.num_seqs = 2;
  const auto p = prepare(c);
  const MutatedCall m = mutate_call(ContractMutant::unused_slot_read, p->call, *host("v1"), device_mi300x());
  ASSERT_TRUE(m.planted);
  EXPECT_EQ(m.call.context_lens.data[0], 41);
  EXPECT_EQ(m.call.problem.max_context, 41);
  const KernelOutput out = mutate(host("v1"), ContractMutant::unused_slot_read)->run(p->call, device_mi300x());
  ASSERT_EQ(out.status, Status::Ok);
  EXPECT_TRUE(std::any_of(out.out.begin(), out.out.end(), [](float x) { return std::isnan(x); }));
}

TEST(ContractMutants, RoutingMutantsDeclareWhatTheKernelLacksAndRunItAnyway) {
  Case c = shuffled_case();
  c.head_size = 256;
  const Device dev = device_mi300x();
  const KernelPtr as = host("asm");
  ASSERT_TRUE(as->decline_reason(c, dev));
  const KernelPtr head = mutate(as, ContractMutant::head_size_routing);
  EXPECT_FALSE(head->decline_reason(c, dev));
  EXPECT_EQ(head->info().capability.head_sizes, (std::vector<int32_t>{128, 256}));
  const auto p = prepare(c);
  EXPECT_EQ(head->run(p->call, dev).status, Status::Ok);
  c.head_size = 128;
  c.block_size = 32;
  ASSERT_TRUE(as->decline_reason(c, dev));
  const KernelPtr block = mutate(as, ContractMutant::block_size_routing);
  EXPECT_FALSE(block->decline_reason(c, dev));
  c.sliding_window = 4;  // still the inner kernel's to refuse
  EXPECT_TRUE(block->decline_reason(c, dev));
}

TEST(ContractMutants, OutputMutantsCorruptWhatTheKernelReturns) {
  const auto p = prepare(shuffled_case());
  const Device dev = device_mi300x();
  const KernelOutput good = host("hip")->run(p->call, dev);
  const KernelOutput scaled = mutate(host("hip"), ContractMutant::output_scaled_1_03)->run(p->call, dev);
  const KernelOutput trunc = mutate(host("hip"), ContractMutant::output_truncated)->run(p->call, dev);
  const KernelOutput lse = mutate(host("hip"), ContractMutant::lse_plus_log2)->run(p->call, dev);
  ASSERT_EQ(good.status, Status::Ok);
  int64_t moved = 0;
  for (size_t i = 0; i < good.out.size(); ++i) {
    EXPECT_EQ(scaled.out[i], codec::decode(DType::bf16, codec::encode(DType::bf16, good.out[i] * 1.03f)));
    EXPECT_LE(std::fabs(trunc.out[i]), std::fabs(good.out[i]));
    EXPECT_LE(std::fabs(trunc.out[i] - good.out[i]), std::fabs(good.out[i]) / 128);  // at most one bf16 ulp
    moved += trunc.out[i] != good.out[i];
  }
  EXPECT_GT(moved, int64_t(good.out.size() / 4));  // about half the codes are odd
  ASSERT_EQ(lse.lse.size(), good.lse.size());
  for (size_t i = 0; i < good.lse.size(); ++i) EXPECT_NEAR(lse.lse[i] - good.lse[i], std::log(2.0), 1e-5);
}

}  // namespace
}  // namespace pa
