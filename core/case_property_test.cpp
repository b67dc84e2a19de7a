// Case properties over generated valid cases: JSON round trip, slug alphabet, vars identity.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <rapidcheck/gtest.h>

#include "core/case.hpp"

namespace pa {
namespace {

// Any valid case, every field drawn (including awkward doubles and 64-bit seeds).
rc::Gen<Case> gen_valid_case() {
  return rc::gen::exec([] {
    Case c;
    c.name = *rc::gen::element(std::string(), std::string("incident 7"), std::string("ünïcode \"q\""));
    c.seed = *rc::gen::arbitrary<uint64_t>();
    c.kv_layout = *rc::gen::element(KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled);
    c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz,
                                   DType::int8);
    c.q_dtype = *rc::gen::element(DType::bf16, DType::fp16);
    c.kv_scale = *rc::gen::element(ScaleMode::per_tensor, ScaleMode::per_head,
                                   ScaleMode::per_token_block_major, ScaleMode::per_token_head_major);
    if (c.kv_dtype != DType::int8 && *rc::gen::arbitrary<bool>()) c.kv_scale = ScaleMode::none;
    c.num_kv_heads = *rc::gen::inRange(1, 17);
    c.num_q_heads = c.num_kv_heads * *rc::gen::inRange(1, 17);
    c.head_size = 16 * *rc::gen::inRange(1, 17);
    c.block_size = 16 * *rc::gen::inRange(1, 9);
    c.q_len = *rc::gen::inRange(1, 17);
    c.num_seqs = *rc::gen::inRange(1, 6);
    c.context_lens.clear();
    for (int32_t s = 0; s < c.num_seqs; ++s) c.context_lens.push_back(*rc::gen::inRange(c.q_len, 70000));
    c.num_blocks = *rc::gen::arbitrary<bool>() ? 0 : c.used_blocks() + *rc::gen::inRange<int64_t>(0, 100000);
    c.softmax_scale = *rc::gen::arbitrary<bool>() ? 0.0 : *rc::gen::inRange(1, 1000000) / 7777.0;
    c.sliding_window = *rc::gen::element(0, 1, 128, 4096);
    c.logit_softcap = *rc::gen::element(0.0, 30.0, 50.0, 1.0 / 3.0);
    c.alibi = *rc::gen::arbitrary<bool>();
    c.sinks = *rc::gen::arbitrary<bool>();
    c.partition_size = *rc::gen::element(1, 256, 512);
    c.page_pad = *rc::gen::inRange<int64_t>(0, 1000);
    RC_ASSERT(validate(c).empty());
    return c;
  });
}

RC_GTEST_PROP(CaseProps, JsonRoundTripKeepsVars, ()) {
  const Case c = *gen_valid_case();
  const Case back = case_from_json(to_json(c));
  RC_ASSERT(vars(back) == vars(c));
  RC_ASSERT(back.name == c.name);
  RC_ASSERT(back.num_blocks == c.num_blocks);  // the raw field, not only the resolved pool size
}

// Through text too: what a regression file stores is the dumped string.
RC_GTEST_PROP(CaseProps, JsonTextRoundTripKeepsVars, ()) {
  const Case c = *gen_valid_case();
  const Case back = case_from_json(nlohmann::json::parse(to_json(c).dump()));
  RC_ASSERT(vars(back) == vars(c));
  RC_ASSERT(to_json(back) == to_json(c));
}

RC_GTEST_PROP(CaseProps, SlugUsesOnlyIdentifierCharacters, ()) {
  const Case c = *gen_valid_case();
  const std::string s = slug(c);
  RC_ASSERT(!s.empty());
  for (char ch : s)
    RC_ASSERT((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_');
}

// vars is an identity: a different seed gives different vars and slug; the same case, copied,
// gives the same.
RC_GTEST_PROP(CaseProps, VarsIsAnIdentity, ()) {
  const Case c = *gen_valid_case();
  Case d = c;
  RC_ASSERT(vars(d) == vars(c));
  RC_ASSERT(slug(d) == slug(c));
  d.seed = c.seed ^ (uint64_t(1) << *rc::gen::inRange(0, 64));
  RC_ASSERT(vars(d) != vars(c));
  RC_ASSERT(slug(d) != slug(c));
}

RC_GTEST_PROP(CaseProps, GeneratedValidCasesPassCheckValid, ()) {
  const Case c = *gen_valid_case();
  check_valid(c);  // throws on failure, which fails the property
  RC_ASSERT(c.pool_blocks() >= c.used_blocks());
  RC_ASSERT(c.max_blocks_per_seq() > c.blocks_for(c.max_context()));
}

}  // namespace
}  // namespace pa
