// The dispatcher's tests: an exhaustive sweep of the capability cross-product, the dispatcher
// incidents as named tests, the forced-path override and the workspace formula.
#include "dispatch/select.hpp"
#include "testing/case_shape.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace pa {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::string* declined_reason(const Decision& d, const std::string& p) {
  for (const auto& [q, r] : d.declined)
    if (q == p) return &r;
  return nullptr;
}

const std::vector<KernelPtr>& twins() {
  static const std::vector<KernelPtr> k = builtin_kernels(Backend::host).all();
  return k;
}
Decision select(const Device& dev, const Case& c, std::optional<std::string> forced = std::nullopt) {
  return select_path(dev, c, twins(), std::move(forced));
}
const char* kPaths[] = {"v1", "hip", "asm"};

Case shaped(int32_t S, int32_t hq, int32_t hkv, int32_t D, int32_t B, DType kv, KvLayout layout,
            ScaleMode scale, int32_t ctx = 1000) {
  return test::shaped_case(Case{}.seed, std::vector<int32_t>(size_t(S), ctx), hq, hkv, D, B, kv, scale, layout);
}

// A second, independent statement of each path's limits: the facts of the three modelled aiter /
// vLLM paths written out as literal conditions, never read from the capability declarations the
// dispatcher reads. A wrong declaration entry then fails the exhaustive sweep, not one hand-picked
// case.
bool takes(const std::string& path, const Device& dev, const Case& c) {
  const bool fp8 = c.kv_dtype == DType::fp8_e4m3fn || c.kv_dtype == DType::fp8_e4m3fnuz;
  if (fp8 && c.kv_dtype != dev.native_fp8) return false;
  const bool bit8 = fp8 || c.kv_dtype == DType::int8;
  const bool per_token = c.kv_scale == ScaleMode::per_token_block_major || c.kv_scale == ScaleMode::per_token_head_major;
  const bool options = c.sliding_window > 0 || c.logit_softcap > 0 || c.alibi || c.sinks;
  const int32_t G = c.num_q_heads / c.num_kv_heads;
  const bool pow2 = c.block_size > 0 && (c.block_size & (c.block_size - 1)) == 0;
  if (path == "v1")
    return (c.kv_layout == KvLayout::nhd || c.kv_layout == KvLayout::vllm) && !per_token && c.head_size % 16 == 0 &&
           c.head_size <= 256 && pow2 && c.block_size <= 256 && c.q_len <= 16;
  if (path == "hip")
    return c.kv_layout == KvLayout::shuffled && c.kv_dtype != DType::int8 && c.kv_scale != ScaleMode::per_head &&
           (c.head_size == 64 || c.head_size == 128 || c.head_size == 256) &&
           (c.block_size == 16 || c.block_size == 32) && G <= 16 && c.q_len <= 8 && !options &&
           c.partition_size % c.block_size == 0 && c.partition_size >= c.block_size;
  if (path == "asm")
    return c.kv_layout == KvLayout::shuffled && c.head_size == 128 && c.block_size == 16 && G <= 16 &&
           c.q_len * G <= 16 && (c.kv_scale == ScaleMode::per_token_block_major || (c.kv_scale == ScaleMode::none && !bit8)) &&
           c.softmax_scale == 0 && !options;
  return false;
}

// The heuristic as a set of checkable facts rather than a second copy of the selection code:
// returns "" when `d` is a correct decision for `c`, else what is wrong.
std::string check_decision(const Device& dev, const Case& c, const Decision& d) {
  const std::vector<std::string> invalid = validate(c);
  if (!invalid.empty()) {
    if (d.path) return "invalid case routed to " + *d.path;
    if (!contains(d.error(), "invalid case") || !contains(d.error(), invalid.front()))
      return "invalid case refused without naming the validation error: " + d.error();
    return {};
  }
  std::map<std::string, bool> ok;
  for (const char* p : kPaths) {
    ok[p] = takes(p, dev, c);
    if (ok[p] == bool(declined_reason(d, p)))
      return std::string(p) + (ok[p] ? " declined a case the path's facts admit: " + *declined_reason(d, p)
                                     : " accepted a case the path's facts exclude");
  }
  const int64_t work = int64_t(c.num_seqs) * c.num_q_heads;
  const bool prefer_asm = work > 2 * int64_t(dev.cu_count) || c.kv_dtype == DType::int8;
  if (!d.path) {
    if (ok["v1"] || ok["hip"] || ok["asm"]) return "refused although a path supports the case";
    for (const char* p : kPaths)
      if (!contains(d.error(), std::string(p) + ": ")) return "error() misses a path";
    if (d.workspace_bytes != 0) return "refusal with a workspace";
    return {};
  }
  const std::string p = *d.path;
  if (!ok[p]) return "chose " + p + ", which declines the case";
  if (prefer_asm && ok["asm"] && p != "asm") return "asm preferred and supported, not chosen";
  if (!prefer_asm && ok["hip"] && p != "hip") return "hip preferred and supported, not chosen";
  if (p == "v1" && (ok["hip"] || ok["asm"])) return "v1 chosen although a shuffled path supports the case";
  if (!contains(d.why, "num_seqs*Hq=" + std::to_string(work) + (work > 2 * dev.cu_count ? " > " : " <= ") +
                           "2*CU=" + std::to_string(2 * dev.cu_count)))
    return "why does not state the rule with numbers: " + d.why;
  if ((p == "hip") != (d.workspace_bytes > 0)) return "workspace inconsistent with the path";
  return {};
}

const KvLayout kLayouts[] = {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled};
const DType kKvTypes[] = {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8};
const ScaleMode kScales[] = {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                             ScaleMode::per_token_block_major, ScaleMode::per_token_head_major};
const int32_t kHeads[] = {64, 80, 96, 112, 128, 192, 256};
const int32_t kBlocks[] = {1, 8, 16, 32, 64};
const int32_t kGqa[] = {1, 2, 4, 5, 8, 16, 32};
const int32_t kQLen[] = {1, 2, 4, 8, 16};
enum class Option { none, custom_scale, window, softcap, alibi, sinks };
const Option kOptions[] = {Option::none, Option::custom_scale, Option::window,
                           Option::softcap, Option::alibi, Option::sinks};
constexpr int32_t kHkv = 2;

void set_option(Case& c, Option o) {
  c.softmax_scale = o == Option::custom_scale ? 1.0 / std::sqrt(168.0) : 0;  // Gemma-3
  c.sliding_window = o == Option::window ? 128 : 0;
  c.logit_softcap = o == Option::softcap ? 50 : 0;  // Gemma-2
  c.alibi = o == Option::alibi;
  c.sinks = o == Option::sinks;
}

TEST(SelectExhaustive, EveryDecisionIsSupportedAndFollowsTheHeuristic) {
  int64_t cases = 0, wrong = 0, forced_checked = 0, forced_wrong = 0;
  std::map<std::string, int64_t> taken;
  std::vector<std::string> first_wrong;
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()}) {
    Case c;
    for (KvLayout layout : kLayouts)
      for (DType kv : kKvTypes)
        for (ScaleMode scale : kScales)
          for (int32_t D : kHeads)
            for (int32_t B : kBlocks)
              for (int32_t G : kGqa)
                for (int32_t q_len : kQLen)
                  for (Option o : kOptions)
                    for (bool high : {false, true}) {
                      // Both sides of the threshold, at the boundary: S*Hq == or just under 2*CU
                      // (not above: the rule is strict) versus one sequence more.
                      const int32_t hq = G * kHkv;
                      const int32_t S = std::max(1, 2 * dev.cu_count / hq) + (high ? 1 : 0);
                      c = shaped(S, hq, kHkv, D, B, kv, layout, scale, 300 + q_len);
                      c.q_len = q_len;
                      set_option(c, o);
                      ++cases;
                      const Decision d = select(dev, c);
                      const std::string err = check_decision(dev, c, d);
                      if (!err.empty()) {
                        ++wrong;
                        if (first_wrong.size() < 10) first_wrong.push_back(dev.name + " " + vars(c).substr(0, 200) + ": " + err);
                      }
                      taken[d.path ? *d.path : d.invalid.empty() ? "refused" : "invalid"]++;
                      // Forcing each path: on a stride of the sweep (every case would quadruple
                      // the run time without reaching a new branch of the override).
                      if (cases % 5 != 0) continue;
                      for (const char* p : kPaths) {
                        ++forced_checked;
                        const Decision f = select(dev, c, std::string(p));
                        const bool admits = takes(p, dev, c);
                        bool good;
                        if (!d.invalid.empty()) good = !f.path && contains(f.error(), "invalid case");
                        else if (admits) good = f.path == std::optional<std::string>(p) && contains(f.why, "forced to");
                        else good = !f.path && contains(f.error(), std::string("forced path ") + p);
                        if (!good) {
                          ++forced_wrong;
                          if (first_wrong.size() < 10) first_wrong.push_back("forced " + std::string(p) + " " + vars(c).substr(0, 200));
                        }
                      }
                    }
  }
  std::printf("dispatcher cross-product: %lld cases, %lld wrong decisions\n", (long long)cases,
              (long long)wrong);
  for (const auto& [name, n] : taken) std::printf("  %-8s %lld\n", name.c_str(), (long long)n);
  std::printf("forced-path checks: %lld, wrong %lld\n", (long long)forced_checked, (long long)forced_wrong);
  for (const auto& w : first_wrong) std::printf("WRONG %s\n", w.c_str());
  EXPECT_EQ(cases, 3LL * 4 * 5 * 5 * 7 * 5 * 7 * 5 * 6 * 2);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(forced_wrong, 0);
  // Each path must take some cases, or the sweep did not reach it.
  EXPECT_GT(taken["v1"], 0);
  EXPECT_GT(taken["hip"], 0);
  EXPECT_GT(taken["asm"], 0);
}

RC_GTEST_PROP(SelectProperty, NeverPicksAPathThatExcludesTheCase, ()) {
  Case c;
  const Device dev = *rc::gen::element(device_mi300x(), device_mi355x(), device_h100());
  c.num_kv_heads = *rc::gen::inRange(1, 9);
  c.num_q_heads = c.num_kv_heads * *rc::gen::inRange(1, 33);
  c.num_seqs = *rc::gen::inRange(1, 700);
  c.q_len = *rc::gen::inRange(1, 17);
  c.head_size = 16 * *rc::gen::inRange(1, 17);
  c.block_size = 1 << *rc::gen::inRange(0, 9);
  c.kv_dtype = *rc::gen::elementOf(std::vector<DType>(std::begin(kKvTypes), std::end(kKvTypes)));
  c.kv_layout = *rc::gen::elementOf(std::vector<KvLayout>(std::begin(kLayouts), std::end(kLayouts)));
  c.kv_scale = *rc::gen::elementOf(std::vector<ScaleMode>(std::begin(kScales), std::end(kScales)));
  c.partition_size = *rc::gen::element(64, 256, 512);
  c.context_lens = *rc::gen::container<std::vector<int32_t>>(size_t(c.num_seqs), rc::gen::inRange(16, 5000));
  set_option(c, *rc::gen::elementOf(std::vector<Option>(std::begin(kOptions), std::end(kOptions))));
  const Decision d = select(dev, c);
  RC_ASSERT(check_decision(dev, c, d) == "");
}

// ---- the dispatcher incidents of docs/incidents.md ------------------------------------------------------

// Qwen3.5-397B (32/2/256), GSM8K 0.00: at high batch head 256 went to the head-128-only kernel.
TEST(SelectIncident, Head256AtHighConcurrencyGoesToHipNotAsm) {
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()}) {
    const Case c = shaped(64, 32, 2, 256, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
    ASSERT_GT(64 * 32, 2 * dev.cu_count);
    const Decision d = select(dev, c);
    ASSERT_EQ(d.path.value_or(""), std::string("hip")) << d.why;
    EXPECT_TRUE(contains(d.why, "prefers asm; asm declined (head_size=256 not in {128})")) << d.why;
  }
}

// "cannot get heuristic kernel! ... gqa:4 block_size:32": an abort instead of a fallback.
TEST(SelectIncident, Block32Gqa4Fp8AtHighConcurrencyRunsOnHip) {
  const Device dev = device_mi300x();
  for (ScaleMode scale : {ScaleMode::per_tensor, ScaleMode::per_token_block_major}) {
    const Case c = shaped(128, 32, 8, 128, 32, DType::fp8_e4m3fnuz, KvLayout::shuffled, scale);
    const Decision d = select(dev, c);
    ASSERT_EQ(d.path.value_or(""), std::string("hip")) << d.error();
    // asm's first objection depends on the scale form; per-token isolates the block size.
    EXPECT_TRUE(contains(d.why, "prefers asm; asm declined (")) << d.why;
    if (scale == ScaleMode::per_token_block_major) {
      EXPECT_TRUE(contains(d.why, "asm declined (block_size=32 not in {16}) -> hip")) << d.why;
    }
    EXPECT_GT(d.workspace_bytes, 0);
  }
}

// Gemma-3-27B (32/16/128, softmax scale 1/sqrt(168)): asm would silently use 1/sqrt(128).
TEST(SelectIncident, CustomSoftmaxScaleNeverGoesToAsm) {
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()})
    for (int32_t S : {1, 8, 19, 20, 64, 512}) {
      Case c = shaped(S, 32, 16, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
      c.softmax_scale = 1.0 / std::sqrt(168.0);
      const Decision d = select(dev, c);
      ASSERT_EQ(d.path.value_or(""), std::string("hip")) << dev.name << " S=" << S << ": " << d.why;
      ASSERT_NE(declined_reason(d, std::string("asm")), nullptr);
      EXPECT_TRUE(contains(*declined_reason(d, std::string("asm")), "softmax_scale"));
      // Forcing asm must refuse, not run it with the default scale.
      const Decision f = select(dev, c, std::string("asm"));
      EXPECT_FALSE(f.path);
      EXPECT_TRUE(contains(f.error(), "softmax_scale")) << f.error();
    }
}

// Gemma-2 (16/8/256, soft-cap 50, window 4096) and gpt-oss (64/8/64, window 128, sinks).
TEST(SelectIncident, SoftcapWindowSinksGoToV1AndAreRefusedOnShuffled) {
  Case gemma2 = shaped(64, 16, 8, 256, 16, DType::bf16, KvLayout::nhd, ScaleMode::none, 5000);
  gemma2.logit_softcap = 50;
  gemma2.sliding_window = 4096;
  Case gpt_oss = shaped(64, 64, 8, 64, 16, DType::bf16, KvLayout::nhd, ScaleMode::none);
  gpt_oss.sliding_window = 128;
  gpt_oss.sinks = true;
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()})
    for (Case c : {gemma2, gpt_oss}) {
      for (KvLayout l : {KvLayout::nhd, KvLayout::vllm}) {
        c.kv_layout = l;
        const Decision d = select(dev, c);
        EXPECT_EQ(d.path.value_or(""), std::string("v1")) << d.why;
        EXPECT_TRUE(contains(d.why, "-> v1")) << d.why;
      }
      c.kv_layout = KvLayout::shuffled;
      const Decision d = select(dev, c);
      ASSERT_FALSE(d.path) << d.why;
      const std::string e = d.error();
      EXPECT_TRUE(contains(e, "no path supports this case")) << e;
      EXPECT_TRUE(contains(e, "v1: kv_layout=shuffled")) << e;
      // hip supports both head sizes: its reason must be an option it would have dropped.
      EXPECT_TRUE(contains(e, "hip: sliding_window=" + std::to_string(c.sliding_window) + ": not supported")) << e;
      EXPECT_TRUE(contains(e, "asm: head_size=")) << e;
    }
  // Each option alone, head 128 (where asm's head size fits): asm and hip both name the option.
  for (Option o : {Option::window, Option::softcap, Option::sinks, Option::alibi}) {
    Case c = shaped(512, 32, 4, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
    set_option(c, o);
    const Decision d = select(device_mi300x(), c);
    ASSERT_FALSE(d.path);
    const char* name = o == Option::window ? "sliding_window" : o == Option::softcap ? "logit_softcap"
                       : o == Option::sinks ? "sinks" : "alibi";
    EXPECT_TRUE(contains(*declined_reason(d, std::string("asm")), name));
    EXPECT_TRUE(contains(*declined_reason(d, std::string("hip")), name));
  }
}

// GQA 4 (and Llama-4's 5) runs in asm's 8-wide tile at high concurrency.
TEST(SelectIncident, Gqa4PaddedToTile8GoesToAsmAtHighConcurrency) {
  for (int32_t hq : {32, 40}) {  // 32/8 -> G=4, Llama-4's 40/8 -> G=5
    const Case c = shaped(64, hq, 8, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
    const Decision d = select(device_mi300x(), c);
    ASSERT_EQ(d.path.value_or(""), std::string("asm")) << d.why;
    EXPECT_TRUE(contains(d.why, "gqa=" + std::to_string(c.gqa()) + " padded to tile 8")) << d.why;
    EXPECT_EQ(padded_gqa(builtin_kernels(Backend::host).get("asm")->info().capability, c.gqa()), 8);
    EXPECT_EQ(d.workspace_bytes, 0);
  }
}

// MiniMax FP8 KV, GSM8K 0.01: e4m3fnuz bytes decoded as e4m3fn.
TEST(SelectIncident, Fp8FlavourMismatchIsRefusedByEveryPath) {
  struct Mismatch { Device dev; DType cache; DType native; };
  for (const Mismatch& m : {Mismatch{device_mi355x(), DType::fp8_e4m3fnuz, DType::fp8_e4m3fn},
                            Mismatch{device_h100(), DType::fp8_e4m3fnuz, DType::fp8_e4m3fn},
                            Mismatch{device_mi300x(), DType::fp8_e4m3fn, DType::fp8_e4m3fnuz}})
    for (KvLayout l : {KvLayout::nhd, KvLayout::vllm, KvLayout::shuffled})
      for (ScaleMode s : {ScaleMode::per_tensor, ScaleMode::per_token_block_major})
        for (int32_t S : {1, 1000}) {
          const Case c = shaped(S, 8, 1, 128, 16, m.cache, l, s);
          const Decision d = select(m.dev, c);
          ASSERT_FALSE(d.path) << m.dev.name << " " << d.why;
          ASSERT_EQ(d.declined.size(), 3u);
          const std::string named = std::string("kv_dtype=") + to_string(m.cache) + " but device " +
                                    m.dev.name + " decodes fp8 as " + to_string(m.native) + " ";
          for (const auto& [p, r] : d.declined) EXPECT_TRUE(contains(r, named)) << p << ": " << r;
          // The native flavour on the same device is accepted wherever the scale form fits.
          Case native = c;
          native.kv_dtype = m.native;
          if (l == KvLayout::shuffled || s == ScaleMode::per_tensor) {
            EXPECT_TRUE(select(m.dev, native).path) << select(m.dev, native).error();
          }
        }
}

TEST(SelectIncident, Int8GoesToAsmAtAnyConcurrency) {
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()})
    for (int32_t S : {1, 4, 1000}) {
      const Case c = shaped(S, 8, 1, 128, 16, DType::int8, KvLayout::shuffled, ScaleMode::per_token_block_major);
      const Decision d = select(dev, c);
      ASSERT_EQ(d.path.value_or(""), std::string("asm")) << d.error();
      EXPECT_TRUE(contains(d.why, "kv_dtype=int8 prefers asm")) << d.why;
    }
}

// ---- the rule's numbers, the boundary, refusals, the override, the workspace --------------------

TEST(Select, WhyStatesTheRuleWithNumbers) {
  const Case c = shaped(16, 32, 4, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  const Decision d = select(device_h100(), c);
  EXPECT_EQ(d.path.value_or(""), std::string("asm"));
  EXPECT_TRUE(contains(d.why, "num_seqs*Hq=512 > 2*CU=264")) << d.why;
  const Decision low = select(device_mi300x(), c);
  EXPECT_EQ(low.path.value_or(""), "hip");
  EXPECT_TRUE(contains(low.why, "num_seqs*Hq=512 <= 2*CU=608")) << low.why;
}

TEST(Select, ThresholdIsStrict) {
  // 19 * 32 = 608 = 2 * 304 exactly: still hip on MI300X; one sequence more goes to asm.
  const Case at = shaped(19, 32, 4, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  const Case above = shaped(20, 32, 4, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  EXPECT_EQ(select(device_mi300x(), at).path.value_or(""), "hip");
  EXPECT_EQ(select(device_mi300x(), above).path.value_or(""), "asm");
}

TEST(Select, LowConcurrencyFallsBackToAsmWhenHipDeclines) {
  // q_len 16 with G 1: above hip's MTP limit of 8, inside asm's q_len*G <= 16.
  Case c = shaped(1, 2, 2, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  c.q_len = 16;
  const Decision d = select(device_mi300x(), c);
  ASSERT_EQ(d.path.value_or(""), std::string("asm")) << d.why;
  EXPECT_TRUE(contains(d.why, "prefers hip; hip declined (q_len=16 above 8) -> asm")) << d.why;
}

TEST(Select, InvalidCaseIsRefusedNamingTheValidationErrors) {
  Case c = shaped(2, 6, 4, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  const Decision d = select(device_mi300x(), c, std::string("hip"));
  EXPECT_FALSE(d.path);
  EXPECT_TRUE(contains(d.error(), "invalid case: num_kv_heads=4")) << d.error();
  EXPECT_EQ(d.workspace_bytes, 0);
}

TEST(Select, NoPathErrorNamesEachPathAndItsReason) {
  const Case c = shaped(1, 8, 1, 128, 16, DType::bf16, KvLayout::hnd, ScaleMode::none);
  const std::string e = select(device_mi300x(), c).error();
  EXPECT_EQ(e, "no path supports this case: v1: kv_layout=hnd not in {nhd,vllm}; "
               "hip: kv_layout=hnd not in {shuffled}; asm: kv_layout=hnd not in {shuffled}");
}

TEST(Select, ForcedPathRunsOrIsRefusedWithItsReason) {
  const Case c = shaped(1, 8, 1, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  const Decision a = select(device_mi300x(), c, std::string("asm"));
  EXPECT_EQ(a.path.value_or(""), "asm");
  EXPECT_TRUE(contains(a.why, "forced to asm")) << a.why;
  EXPECT_TRUE(contains(a.why, "would pick hip")) << a.why;
  const Decision v = select(device_mi300x(), c, std::string("v1"));
  EXPECT_FALSE(v.path);
  EXPECT_EQ(v.error(), "forced path v1 does not support this case: kv_layout=shuffled not in "
                       "{nhd,vllm}; supported by: hip, asm");
}

TEST(Select, ForcedPathFromEnvironment) {
  EXPECT_EQ(forced_path_from_string(nullptr, twins()), std::nullopt);
  EXPECT_EQ(forced_path_from_string("", twins()), std::nullopt);
  EXPECT_EQ(forced_path_from_string("asm", twins()).value_or(""), "asm");
  EXPECT_EQ(forced_path_from_string("v1", twins()).value_or(""), "v1");
  try {
    forced_path_from_string("asm_v2", twins());
    FAIL() << "unknown value accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(contains(e.what(), "PACHECK_FORCE_PATH=asm_v2")) << e.what();
    EXPECT_TRUE(contains(e.what(), "v1, hip, asm")) << e.what();
  }
  ASSERT_EQ(setenv("PACHECK_FORCE_PATH", "hip", 1), 0);
  EXPECT_EQ(forced_path_from_env(twins()).value_or(""), "hip");
  ASSERT_EQ(setenv("PACHECK_FORCE_PATH", "nope", 1), 0);
  EXPECT_THROW(forced_path_from_env(twins()), InputError);
  ASSERT_EQ(unsetenv("PACHECK_FORCE_PATH"), 0);
  EXPECT_EQ(forced_path_from_env(twins()), std::nullopt);
}

TEST(Select, HipWorkspaceIsTheSplitKScratch) {
  // S=3, q_len=2, Hq=8, D=128, longest context 1000 with partition 256 -> 4 partitions:
  // max_logits = exp_sums = 3*2*8*4 = 192 floats, tmp_out = 192*128 = 24576 floats.
  Case c = shaped(3, 8, 2, 128, 16, DType::bf16, KvLayout::shuffled, ScaleMode::none);
  c.q_len = 2;
  c.context_lens = {10, 1000, 300};
  const Registry reg = builtin_kernels(Backend::host);
  EXPECT_EQ(reg.get("hip")->workspace_bytes(c), 4 * (192 + 192 + 24576));
  EXPECT_EQ(select(device_mi300x(), c).workspace_bytes, 4 * (192 + 192 + 24576));
  // Partition boundaries: 256 tokens is one partition, 257 two.
  c.context_lens = {256, 2, 3};
  EXPECT_EQ(reg.get("hip")->workspace_bytes(c), 4 * (48 + 48 + 48 * 128));
  c.context_lens = {257, 2, 3};
  EXPECT_EQ(reg.get("hip")->workspace_bytes(c), 4 * (96 + 96 + 96 * 128));
  EXPECT_EQ(reg.get("asm")->workspace_bytes(c), 0);
  EXPECT_EQ(reg.get("v1")->workspace_bytes(c), 0);
}

}  // namespace
}  // namespace pa
