// The case generator aims at what a kernel declares beyond its shapes: a fixed split-K partition
// (vLLM v2's 512 tokens) gets boundary contexts at its multiples, every declared KV dtype is drawn
// (fp8_e5m2 too, on any device), and page padding keeps the declared page-stride alignment.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "property/generators.hpp"

namespace pa {
namespace {

// A kernel that only declares: the v1 host twin's declaration, changed by `edit`. The generator
// reads only the declaration and decline_reason; nothing here is run.
class Declared : public Kernel {
 public:
  explicit Declared(KernelInfo info) : Kernel(std::move(info)) {}
  KernelOutput run(const KernelCall&, const Device&) const override {
    KernelOutput o;
    o.status = Status::Fail;
    o.reason = "a declaration only";
    return o;
  }
};

template <class Edit>
std::unique_ptr<Declared> v1_with(Edit edit) {
  KernelInfo info = builtin_kernels(Backend::host).get("v1")->info();
  info.name = "declared";
  edit(info.capability);
  return std::make_unique<Declared>(info);
}

// Limits without the long range (its uniform lengths could land anywhere past max_context).
gen::Limits short_contexts() {
  gen::Limits lim;
  lim.long_context = lim.max_context;
  return lim;
}

std::vector<Case> draws(const Kernel& k, const Device& dev, int n, std::optional<DType> kv = std::nullopt) {
  std::vector<Case> out;
  const rc::Gen<Case> g = gen::case_in(k, dev, short_contexts(), gen::Weights{}, kv);
  for (int i = 0; i < n; ++i) out.push_back(gen::sample(g, uint64_t(1000 + i), "generators_test"));
  return out;
}

std::map<int32_t, int> context_counts(const std::vector<Case>& cases) {
  std::map<int32_t, int> n;
  for (const Case& c : cases)
    for (int32_t ctx : c.context_lens) ++n[ctx];
  return n;
}

TEST(CaseIn, BoundaryContextsAimAtADeclaredFixedPartition) {
  const auto fixed = v1_with([](Capability& cap) { cap.fixed_partition = 512; });
  const auto free = v1_with([](Capability&) {});
  std::map<int32_t, int> with = context_counts(draws(*fixed, device_mi300x(), 600));
  std::map<int32_t, int> without = context_counts(draws(*free, device_mi300x(), 600));
  // The first two multiples of the fixed partition and their neighbours, whatever partition_size
  // the case carries (v1 cases keep the default 256).
  for (int32_t ctx : {511, 512, 513, 1023, 1024, 1025}) EXPECT_GT(with[ctx], 0) << "context " << ctx << " never drawn";
  // Without the declaration the generator aims at the case's 256: nothing past 600 tokens.
  for (int32_t ctx : {1023, 1024, 1025}) EXPECT_EQ(without[ctx], 0) << "context " << ctx;
  EXPECT_GT(without[257], 0);
}

TEST(CaseIn, EveryDeclaredKvDtypeIsDrawnE5m2OnEveryDevice) {
  const KernelPtr v1 = builtin_kernels(Backend::host).get("v1");
  ASSERT_TRUE(v1->info().capability.kv_dtypes & bit(DType::fp8_e5m2)) << "v1 declares fp8_e5m2";
  for (const Device& dev : {device_mi300x(), device_mi355x(), device_h100()}) {
    const std::vector<DType> kvs = gen::drawable_kv_dtypes(v1->info().capability, dev);
    std::set<DType> expected(kvs.begin(), kvs.end());
    EXPECT_TRUE(expected.count(DType::fp8_e5m2)) << dev.name << ": e5m2 is no e4m3 flavour";
    EXPECT_TRUE(expected.count(dev.native_fp8)) << dev.name;
    EXPECT_FALSE(expected.count(dev.native_fp8 == DType::fp8_e4m3fn ? DType::fp8_e4m3fnuz : DType::fp8_e4m3fn))
        << dev.name << ": the other e4m3 flavour is refused by decline_reason on purpose";
    std::set<DType> drawn;
    for (const Case& c : draws(*v1, dev, 300)) drawn.insert(c.kv_dtype);
    EXPECT_EQ(drawn, expected) << dev.name;
    for (const Case& c : draws(*v1, dev, 20, DType::fp8_e5m2)) {
      EXPECT_EQ(c.kv_dtype, DType::fp8_e5m2);
      EXPECT_FALSE(v1->decline_reason(c, dev)) << vars(c);
    }
  }
}

TEST(CaseIn, PagePaddingKeepsTheDeclaredStrideAlignment) {
  for (int32_t align : {8, 64, 48}) {
    const auto k = v1_with([align](Capability& cap) { cap.page_stride_align = align; });
    int padded = 0;
    for (const Case& c : draws(*k, device_mi300x(), 300)) {
      EXPECT_EQ(c.page_stride() % align, 0) << "align " << align << ": " << vars(c);
      padded += c.page_pad > 0;
    }
    EXPECT_GT(padded, 0) << "align " << align << ": strided pages are still drawn";
  }
  EXPECT_EQ(gen::aligned_page_pad(2048, 0, 8), 0);
  EXPECT_EQ(gen::aligned_page_pad(2048, 40, 16), 48);
  EXPECT_EQ(gen::aligned_page_pad(100, 0, 8), 4);   // an unaligned dense page needs padding
  EXPECT_EQ(gen::aligned_page_pad(100, 16, 1), 16);
}

TEST(Sample, IsDeterministicInItsSeedAndSkipsDiscards) {
  const KernelPtr asm_twin = builtin_kernels(Backend::host).get("asm");
  const rc::Gen<Case> g = gen::case_in(*asm_twin, device_mi300x(), gen::Limits{});
  for (uint64_t seed : {1u, 2u, 77u}) EXPECT_EQ(vars(gen::sample(g, seed, "t")), vars(gen::sample(g, seed, "t")));
  EXPECT_NE(vars(gen::sample(g, 1, "t")), vars(gen::sample(g, 2, "t")));
  const rc::Gen<Case> never = rc::gen::exec([]() -> Case { throw rc::GenerationFailure("nothing"); });
  EXPECT_THROW(gen::sample(never, 1, "never"), InputError);
}

}  // namespace
}  // namespace pa
