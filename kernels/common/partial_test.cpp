// The split-K partial and the logit transform, on the host (FlashInfer's habit: the merge is a
// value type, so associativity and empty-partition handling are testable without a GPU).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "kernels/common/logits.hpp"
#include "kernels/common/partial.hpp"

namespace pa {
namespace {

using P4 = Partial<4>;

// Partial over logits x[lo, hi) and values v[t][0..3], computed directly from its definition.
P4 direct(const std::vector<float>& x, const std::vector<std::array<float, 4>>& v, size_t lo, size_t hi) {
  P4 p = P4::empty();
  for (size_t t = lo; t < hi; ++t) p.m = std::max(p.m, x[t]);
  for (size_t t = lo; t < hi; ++t) {
    const float e = expf(x[t] - p.m);
    p.l += e;
    for (int d = 0; d < 4; ++d) p.o[d] += e * v[t][size_t(d)];
  }
  return p;
}

RC_GTEST_PROP(Partial, MergeOfSplitsEqualsWhole, ()) {
  const size_t n = *rc::gen::inRange<size_t>(1, 40);
  std::vector<float> x(n);
  std::vector<std::array<float, 4>> v(n);
  for (size_t t = 0; t < n; ++t) {
    x[t] = float(*rc::gen::inRange(-3000, 3000)) / 100.f;
    for (auto& e : v[t]) e = float(*rc::gen::inRange(-1000, 1000)) / 100.f;
  }
  const size_t a = *rc::gen::inRange<size_t>(0, n + 1), b = *rc::gen::inRange<size_t>(a, n + 1);
  const P4 whole = direct(x, v, 0, n);
  // ((0,a) + (a,b)) + (b,n) and (0,a) + ((a,b) + (b,n)): associativity, empty pieces included.
  P4 left = direct(x, v, 0, a);
  left.merge(direct(x, v, a, b));
  left.merge(direct(x, v, b, n));
  P4 right_tail = direct(x, v, a, b);
  right_tail.merge(direct(x, v, b, n));
  P4 right = direct(x, v, 0, a);
  right.merge(right_tail);
  for (const P4* p : {&left, &right}) {
    RC_ASSERT(std::fabs(p->lse() - whole.lse()) <= 1e-5f * (1 + std::fabs(whole.lse())));
    for (int d = 0; d < 4; ++d)
      RC_ASSERT(std::fabs(p->normalised(d) - whole.normalised(d)) <= 1e-4f * (1 + std::fabs(whole.normalised(d))));
  }
}

TEST(Partial, EmptyIsNeutralAndNeverNaN) {
  P4 e = P4::empty();
  e.merge(P4::empty());
  EXPECT_EQ(e.m, -INFINITY);
  EXPECT_EQ(e.l, 0.f);
  EXPECT_EQ(e.normalised(0), 0.f);  // not NaN
  EXPECT_EQ(e.lse(), -INFINITY);
  P4 a = P4::empty();
  a.m = 2.f;
  a.l = 3.f;
  a.o[1] = 6.f;
  P4 b = a;
  b.merge(P4::empty());
  P4 c = P4::empty();
  c.merge(a);
  for (const P4* p : {&b, &c}) {
    EXPECT_EQ(p->m, 2.f);
    EXPECT_EQ(p->l, 3.f);
    EXPECT_EQ(p->o[1], 6.f);
  }
}

TEST(Partial, SinkEntersTheDenominatorOnly) {
  // One key with logit 0 and value 1, plus a sink of logit 0: weight 1/2, lse = log 2.
  P4 p = P4::empty();
  p.m = 0.f;
  p.l = 1.f;
  p.o[0] = 1.f;
  p.merge(P4::sink(0.f));
  EXPECT_FLOAT_EQ(p.normalised(0), 0.5f);
  EXPECT_FLOAT_EQ(p.lse(), std::log(2.f));
}

TEST(LogitTransform, MaskCapAndAlibi) {
  const float slopes[2] = {0.5f, 0.25f};
  const LogitTransform lt = make_logit_transform(0.5, 10.0, 3, slopes);
  // Window 3 at position 10: keys 8, 9, 10 visible; causal: 11 not.
  EXPECT_FALSE(lt.visible(7, 10));
  EXPECT_TRUE(lt.visible(8, 10));
  EXPECT_TRUE(lt.visible(10, 10));
  EXPECT_FALSE(lt.visible(11, 10));
  EXPECT_EQ(lt.first_visible(10), 8);
  EXPECT_EQ(lt.first_visible(1), 0);
  // x = 10 tanh(0.5 * 4 / 10) + 0.25 * (8 - 10)
  EXPECT_NEAR(lt(4.f, 1, 8, 10), 10.0 * std::tanh(0.2) - 0.5, 1e-6);
  EXPECT_EQ(query_position(100, 3, 0), 97);
}

}  // namespace
}  // namespace pa
