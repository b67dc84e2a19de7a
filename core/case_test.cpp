// Case validation, identity and JSON parsing errors.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/case.hpp"
#include "testing/input_error.hpp"

namespace pa {
namespace {

struct BadCase {
  const char* what;
  std::function<void(Case&)> mutate;
  std::string field;  // the message must start with "<field>=<value>"
  std::string value;
};

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> k = {
      {"no sequences", [](Case& c) { c.num_seqs = 0; c.context_lens.clear(); }, "num_seqs", "0"},
      {"q_len zero", [](Case& c) { c.q_len = 0; }, "q_len", "0"},
      {"q_len too long", [](Case& c) { c.q_len = kMaxQLen + 1; }, "q_len", "1025"},
      {"no query heads", [](Case& c) { c.num_q_heads = 0; }, "num_q_heads", "0"},
      {"no kv heads", [](Case& c) { c.num_kv_heads = 0; }, "num_kv_heads", "0"},
      {"kv heads do not divide", [](Case& c) { c.num_kv_heads = 3; }, "num_kv_heads", "3"},
      {"head size zero", [](Case& c) { c.head_size = 0; }, "head_size", "0"},
      {"head size huge", [](Case& c) { c.head_size = 2048; }, "head_size", "2048"},
      {"block size zero", [](Case& c) { c.block_size = 0; }, "block_size", "0"},
      {"block size huge", [](Case& c) { c.block_size = 512; }, "block_size", "512"},
      {"fp8 query", [](Case& c) { c.q_dtype = DType::fp8_e4m3fn; }, "q_dtype", "fp8_e4m3fn"},
      {"int8 query", [](Case& c) { c.q_dtype = DType::int8; }, "q_dtype", "int8"},
      {"fp32 kv", [](Case& c) { c.kv_dtype = DType::fp32; }, "kv_dtype", "fp32"},
      {"int8 without scale", [](Case& c) { c.kv_dtype = DType::int8; }, "kv_scale", "none"},
      {"shuffled block 8 fp8", [](Case& c) { c.kv_layout = KvLayout::shuffled; c.kv_dtype = DType::fp8_e4m3fn; c.block_size = 8; },
       "kv_layout", "shuffled"},
      {"vllm head 72 fp8", [](Case& c) { c.kv_layout = KvLayout::vllm; c.kv_dtype = DType::fp8_e4m3fn; c.head_size = 72; },
       "kv_layout", "vllm"},
      {"context count", [](Case& c) { c.num_seqs = 2; }, "context_lens", "[1 entries]"},
      {"context negative", [](Case& c) { c.context_lens = {-1}; }, "context_lens[0]", "-1"},
      {"context below q_len", [](Case& c) { c.q_len = 4; c.context_lens = {64, 3}; c.num_seqs = 2; },
       "context_lens[1]", "3"},
      {"context huge", [](Case& c) { c.context_lens = {(1 << 24) + 1}; }, "context_lens[0]", "16777217"},
      {"negative pool", [](Case& c) { c.num_blocks = -1; }, "num_blocks", "-1"},
      {"pool too small", [](Case& c) { c.num_blocks = 2; }, "num_blocks", "2"},  // 64 tokens / 16 = 4 pages
      {"negative softmax scale", [](Case& c) { c.softmax_scale = -1; }, "softmax_scale", "-1"},
      {"NaN softmax scale", [](Case& c) { c.softmax_scale = std::nan(""); }, "softmax_scale", "nan"},
      {"Inf softmax scale", [](Case& c) { c.softmax_scale = INFINITY; }, "softmax_scale", "inf"},
      {"negative window", [](Case& c) { c.sliding_window = -1; }, "sliding_window", "-1"},
      {"negative softcap", [](Case& c) { c.logit_softcap = -2.5; }, "logit_softcap", "-2.5"},
      {"zero partition", [](Case& c) { c.partition_size = 0; }, "partition_size", "0"},
      {"negative pad", [](Case& c) { c.page_pad = -3; }, "page_pad", "-3"},
      // A pad this large overflowed the memory estimate, and every kernel then failed `exception`.
      {"huge pad", [](Case& c) { c.page_pad = int64_t(1) << 60; }, "page_pad", "1152921504606846976"},
      {"too many sequences", [](Case& c) { c.num_seqs = kMaxSeqs + 1; c.context_lens.assign(size_t(kMaxSeqs) + 1, 64); },
       "num_seqs", "1048577"},
  };
  return k;
}

// Messages that start with "<field>=".
std::vector<std::string> messages_for(const std::vector<std::string>& errs, const std::string& field) {
  std::vector<std::string> r;
  for (const auto& m : errs)
    if (m.rfind(field + "=", 0) == 0) r.push_back(m);
  return r;
}

TEST(CaseValidate, DefaultCaseIsValid) { EXPECT_TRUE(validate(Case{}).empty()); }

TEST(CaseValidate, RealisticCasesAreValid) {
  Case c;
  c.num_seqs = 3;
  c.num_q_heads = 64;
  c.num_kv_heads = 8;
  c.context_lens = {1, 4097, 300};
  c.kv_dtype = DType::fp8_e4m3fnuz;
  c.kv_layout = KvLayout::shuffled;
  c.kv_scale = ScaleMode::per_token_block_major;
  c.q_len = 1;
  EXPECT_TRUE(validate(c).empty());
  c.kv_dtype = DType::int8;
  c.kv_scale = ScaleMode::per_head;
  c.q_len = 1;
  c.sliding_window = 128;
  c.logit_softcap = 50;
  c.alibi = true;
  c.sinks = true;
  c.page_pad = 100;
  c.num_blocks = 1000;
  EXPECT_TRUE(validate(c).empty());
  EXPECT_NO_THROW(check_valid(c));
}

// Each bad field gets exactly one message, starting with "field=value".
TEST(CaseValidate, NamesEveryBadField) {
  for (const auto& b : bad_cases()) {
    Case c;
    b.mutate(c);
    const auto errs = validate(c);
    const auto mine = messages_for(errs, b.field);
    ASSERT_EQ(mine.size(), 1u) << b.what << ": " << ::testing::PrintToString(errs);
    EXPECT_EQ(mine[0].rfind(b.field + "=" + b.value, 0), 0u) << b.what << ": " << mine[0];
  }
}

TEST(CaseValidate, LayoutMessageExplainsTheSize) {
  Case c;
  c.kv_layout = KvLayout::shuffled;
  c.block_size = 4;  // bf16: x = 8
  const auto m = messages_for(validate(c), "kv_layout");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_NE(m[0].find("block_size=4"), std::string::npos) << m[0];
}

// Several bad fields at once: one message each, all present.
TEST(CaseValidate, SeveralBadFieldsAllReported) {
  Case c;
  c.q_len = 0;
  c.head_size = 0;
  c.page_pad = -1;
  c.partition_size = -5;
  c.sliding_window = -2;
  const auto errs = validate(c);
  for (const char* f : {"q_len=0", "head_size=0", "page_pad=-1", "partition_size=-5", "sliding_window=-2"})
    EXPECT_EQ(messages_for(errs, std::string(f).substr(0, std::string(f).find('='))).size(), 1u) << f;
  EXPECT_EQ(errs.size(), 5u) << ::testing::PrintToString(errs);
}

TEST(CaseValidate, CheckValidThrowsListingEveryField) {
  Case c;
  c.name = "broken";
  c.q_len = 0;
  c.block_size = 0;
  try {
    check_valid(c);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("broken"), std::string::npos) << msg;
    EXPECT_NE(msg.find("q_len=0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("block_size=0"), std::string::npos) << msg;
  }
}

TEST(CaseDerived, PoolAndTableSizes) {
  Case c;
  c.num_seqs = 2;
  c.block_size = 16;
  c.context_lens = {17, 64};
  EXPECT_EQ(c.used_blocks(), 2 + 4);
  EXPECT_EQ(c.pool_blocks(), 6 + 4);  // at least 4 free pages
  EXPECT_EQ(c.max_blocks_per_seq(), 5);  // longest sequence + one garbage column
  c.context_lens = {1600, 1600};
  EXPECT_EQ(c.pool_blocks(), 200 + 50);  // a quarter more
  c.num_blocks = 999;
  EXPECT_EQ(c.pool_blocks(), 999);
  c.num_kv_heads = 2;
  c.head_size = 64;
  c.page_pad = 3;
  EXPECT_EQ(c.page_stride(), 2 * 16 * 64 + 3);
  EXPECT_EQ(c.gqa(), 4);
}

TEST(CaseDerived, EffectiveSoftmaxScale) {
  Case c;
  c.head_size = 64;
  EXPECT_EQ(c.effective_softmax_scale(), 0.125);
  c.softmax_scale = 0.3;
  EXPECT_EQ(c.effective_softmax_scale(), 0.3);
}

TEST(CaseDerived, AlibiSlopesArePowersOfTwo) {
  // 2^-(1 + floor(8h/Hq)): for Hq = 16, heads 0,1 -> 1/2, heads 2,3 -> 1/4, ...
  EXPECT_EQ(alibi_slope(0, 16), 0.5);
  EXPECT_EQ(alibi_slope(1, 16), 0.5);
  EXPECT_EQ(alibi_slope(2, 16), 0.25);
  EXPECT_EQ(alibi_slope(15, 16), std::ldexp(1.0, -8));
  EXPECT_EQ(alibi_slope(7, 8), std::ldexp(1.0, -8));
}

// vars() changes when any single field (other than the free-text name) changes.
TEST(CaseVars, DiffersWhenAnySingleFieldChanges) {
  const Case base;
  const std::vector<std::pair<const char*, std::function<void(Case&)>>> changes = {
      {"seed", [](Case& c) { c.seed = 2; }},
      {"num_seqs", [](Case& c) { c.num_seqs = 2; c.context_lens = {64, 64}; }},
      {"q_len", [](Case& c) { c.q_len = 2; }},
      {"num_q_heads", [](Case& c) { c.num_q_heads = 16; }},
      {"num_kv_heads", [](Case& c) { c.num_kv_heads = 2; }},
      {"head_size", [](Case& c) { c.head_size = 64; }},
      {"block_size", [](Case& c) { c.block_size = 32; }},
      {"context_lens", [](Case& c) { c.context_lens = {65}; }},
      {"num_blocks", [](Case& c) { c.num_blocks = 100; }},
      {"q_dtype", [](Case& c) { c.q_dtype = DType::fp16; }},
      {"kv_dtype", [](Case& c) { c.kv_dtype = DType::fp8_e4m3fn; }},
      {"kv_layout", [](Case& c) { c.kv_layout = KvLayout::hnd; }},
      {"kv_scale", [](Case& c) { c.kv_scale = ScaleMode::per_tensor; }},
      {"softmax_scale", [](Case& c) { c.softmax_scale = 0.1; }},
      {"softmax_scale tiny change", [](Case& c) { c.softmax_scale = std::nextafter(0.1, 1.0); }},
      {"sliding_window", [](Case& c) { c.sliding_window = 8; }},
      {"logit_softcap", [](Case& c) { c.logit_softcap = 30; }},
      {"alibi", [](Case& c) { c.alibi = true; }},
      {"sinks", [](Case& c) { c.sinks = true; }},
      {"partition_size", [](Case& c) { c.partition_size = 512; }},
      {"page_pad", [](Case& c) { c.page_pad = 16; }},
  };
  for (const auto& [what, change] : changes) {
    Case c = base;
    change(c);
    if (std::string(what) == "softmax_scale tiny change") {
      Case d = base;
      d.softmax_scale = 0.1;
      EXPECT_NE(vars(c), vars(d)) << what;
      continue;
    }
    EXPECT_NE(vars(c), vars(base)) << what;
    EXPECT_NE(slug(c), slug(base)) << what;
  }
  Case named = base;
  named.name = "label";
  EXPECT_EQ(vars(named), vars(base)) << "the name is a label, not part of the problem";
}

TEST(CaseVars, StableAcrossCalls) {
  Case c;
  c.context_lens = {3};
  EXPECT_EQ(vars(c), vars(c));
  EXPECT_NE(vars(c).find("seed=1"), std::string::npos);
  EXPECT_NE(vars(c).find("ctx=[3]"), std::string::npos);
}

TEST(CaseVars, Fnv1aKnownAnswers) {
  // Published FNV-1a 64-bit test vectors.
  EXPECT_EQ(fnv1a(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a("foobar"), 0x85944171f73967e8ull);
}

// ---- JSON errors -----------------------------------------------------------------------------------

std::string input_error_of(const nlohmann::json& j) {
  return test::input_error([&] { case_from_json(j); });
}

TEST(CaseJson, UnknownFieldNamed) {
  nlohmann::json j = to_json(Case{});
  j["num_heads"] = 8;
  const std::string msg = input_error_of(j);
  EXPECT_NE(msg.find("num_heads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown field"), std::string::npos) << msg;
}

TEST(CaseJson, BadEnumNamesNamed) {
  const std::pair<const char*, const char*> bad[] = {{"kv_layout", "diagonal"}, {"kv_dtype", "fp4"},
                                                     {"q_dtype", "BF16"}, {"kv_scale", "per_token"}};
  for (const auto& [key, value] : bad) {
    nlohmann::json j = to_json(Case{});
    j[key] = value;
    const std::string msg = input_error_of(j);
    EXPECT_NE(msg.find(std::string(key) + "=" + value), std::string::npos) << msg;
  }
}

TEST(CaseJson, WrongTypeNamed) {
  nlohmann::json j = to_json(Case{});
  j["head_size"] = "big";
  const std::string msg = input_error_of(j);
  EXPECT_NE(msg.find("head_size"), std::string::npos) << msg;
}

TEST(CaseJson, EveryProblemInOneMessage) {
  nlohmann::json j = to_json(Case{});
  j["bogus1"] = 1;
  j["bogus2"] = 2;
  j["kv_layout"] = "zigzag";
  const std::string msg = input_error_of(j);
  for (const char* s : {"bogus1", "bogus2", "zigzag"}) EXPECT_NE(msg.find(s), std::string::npos) << msg;
}

TEST(CaseJson, NotAnObject) {
  EXPECT_THROW(case_from_json(nlohmann::json::array({1, 2})), InputError);
  EXPECT_THROW(case_from_json(nlohmann::json(3)), InputError);
}

TEST(CaseJson, MissingContextLensWithNumSeqs) {
  const std::string msg = input_error_of(nlohmann::json{{"num_seqs", 2}});
  EXPECT_NE(msg.find("context_lens"), std::string::npos) << msg;
}

// Numbers that do not fit the field were cast: 4294967297 ran as 1 sequence, seed -1 as 2^64-1,
// head_size 64.7 as 64, and 1e10 or 1e19 into an integer is undefined behaviour.
TEST(CaseJson, NumbersThatDoNotFitTheFieldAreRefusedWithFieldAndValue) {
  const std::pair<const char*, nlohmann::json> bad[] = {
      {"num_seqs", 4294967297LL}, {"num_seqs", 1e10},     {"num_blocks", 1e19}, {"seed", -1},
      {"head_size", 64.7},        {"block_size", "16"},   {"alibi", 1},         {"softmax_scale", "0.1"},
      {"page_pad", 1e300},        {"context_lens", {64.5}}, {"context_lens", 64}};
  for (const auto& [key, value] : bad) {
    nlohmann::json j = to_json(Case{});
    j[key] = value;
    const std::string msg = input_error_of(j);
    const std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
    EXPECT_NE(msg.find(std::string(key) + "=" + shown + ": "), std::string::npos) << key << ": " << msg;
  }
  EXPECT_NE(input_error_of(nlohmann::json{{"seed", -1}}).find("expected an integer in [0, 18446744073709551615]"),
            std::string::npos);
  nlohmann::json j = to_json(Case{});
  j["head_size"] = 64.0;  // an integral float is that integer
  j["seed"] = 18446744073709551615ULL;
  const Case c = case_from_json(j);
  EXPECT_EQ(c.head_size, 64);
  EXPECT_EQ(c.seed, UINT64_MAX);
}

TEST(CaseValidate, ANameLongerThanTheLimitIsRefusedWithoutEchoingIt) {
  Case c;
  c.name.assign(kMaxCaseName + 1, 'n');
  const auto errs = validate(c);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "name=[4097 bytes]: a case name is at most 4096 bytes");
  c.name.resize(kMaxCaseName);
  EXPECT_TRUE(validate(c).empty());
}

TEST(CaseJson, MissingFieldsTakeDefaults) {
  const Case c = case_from_json(nlohmann::json::object());
  EXPECT_EQ(vars(c), vars(Case{}));
}

// The ragged family's fields: optional, so a classic case keeps its identity and JSON;
// one spelling per case; every bad value named.
TEST(CaseRagged, AClassicCaseHasNoneOfTheNewKeys) {
  const Case c;
  const nlohmann::json j = to_json(c);
  for (const char* k : {"q_lens", "head_size_v", "page_table"}) EXPECT_FALSE(j.contains(k)) << k;
  for (const char* k : {"qls=", "dv=", "table="}) EXPECT_EQ(vars(c).find(k), std::string::npos) << k;
}

TEST(CaseRagged, RoundTripsAndNormalises) {
  Case c;
  c.num_seqs = 3;
  c.q_lens = {1, 6, 40};
  c.q_len = 40;
  c.context_lens = {10, 0, 300};
  c.head_size = 192;
  c.head_size_v = 128;
  c.page_table = PageTable::csr;
  ASSERT_TRUE(validate(c).empty()) << join(validate(c), "; ");
  EXPECT_EQ(c.total_q(), 47);
  EXPECT_EQ(c.q_start(2), 7);
  EXPECT_TRUE(c.has_empty_rows());
  const Case back = case_from_json(to_json(c));
  EXPECT_EQ(vars(back), vars(c));
  EXPECT_NE(vars(c).find("qls=[1,6,40]"), std::string::npos) << vars(c);
  // q_lens all equal is the uniform q_len; q_len beside q_lens is their maximum; Dv == D is 0.
  nlohmann::json j = to_json(Case{});
  j["num_seqs"] = 2;
  j["context_lens"] = {9, 9};
  j["q_lens"] = {4, 4};
  j["head_size_v"] = 128;
  Case u = case_from_json(j);
  EXPECT_TRUE(u.q_lens.empty());
  EXPECT_EQ(u.q_len, 4);
  EXPECT_EQ(u.head_size_v, 0);
  j["q_lens"] = {2, 5};
  u = case_from_json(j);
  EXPECT_EQ(u.q_len, 5);
  EXPECT_TRUE(validate(u).empty());
}

TEST(CaseRagged, BadValuesAreNamed) {
  Case c;
  c.num_seqs = 2;
  c.context_lens = {8, 8};
  c.q_lens = {1, 2, 3};
  c.q_len = 3;
  EXPECT_NE(join(validate(c), "\n").find("q_lens=[1,2,3]: needs one entry per sequence"), std::string::npos);
  c.q_lens = {1, 9};
  c.q_len = 9;
  EXPECT_NE(join(validate(c), "\n").find("context_lens[1]=8: must be 0 (an empty slot) or in [max(1, q_len=9)"),
            std::string::npos)
      << join(validate(c), "\n");
  c.q_lens = {1, 2};
  c.q_len = 1;
  EXPECT_NE(join(validate(c), "\n").find("q_len=1: with q_lens it is their maximum, 2"), std::string::npos);
  c.q_lens.clear();
  c.context_lens = {0, 0};
  EXPECT_NE(join(validate(c), "\n").find("every sequence is empty"), std::string::npos);
  c.context_lens = {0, 8};
  c.head_size_v = 2000;
  EXPECT_NE(join(validate(c), "\n").find("head_size_v=2000: must be in [0, 1024]"), std::string::npos);
}

}  // namespace
}  // namespace pa
