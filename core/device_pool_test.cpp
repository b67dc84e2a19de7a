// The device pool's size classes (core/device_pool.hpp): what a request is rounded up to decides
// whether the next case of another size meets a cached block, and how much memory a block wastes.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <set>

#include "core/device_pool.hpp"

namespace pa {
namespace {

RC_GTEST_PROP(PoolSizeClass, CoversTheRequestWithAtMostAQuarterMore, ()) {
  const uint64_t shift = *rc::gen::inRange<uint64_t>(0, 40);
  const size_t bytes = size_t(*rc::gen::inRange<uint64_t>(1, (uint64_t(1) << shift) + 2));
  const size_t c = pool_size_class(bytes);
  RC_ASSERT(c >= bytes);
  if (bytes > 4096) RC_ASSERT(c - bytes <= bytes / 4);
  else RC_ASSERT(c - bytes < 512);
  RC_ASSERT(pool_size_class(c) == c);  // a class is its own class: a block given back is found again
}

RC_GTEST_PROP(PoolSizeClass, IsMonotone, ()) {
  const size_t a = size_t(*rc::gen::inRange<uint64_t>(1, uint64_t(1) << 36));
  const size_t b = a + size_t(*rc::gen::inRange<uint64_t>(0, uint64_t(1) << 30));
  RC_ASSERT(pool_size_class(a) <= pool_size_class(b));
}

TEST(PoolSizeClass, FourClassesPerPowerOfTwoAbove4KiB) {
  for (int k = 12; k < 34; k += 3) {
    const size_t lo = size_t(1) << k;
    std::set<size_t> classes;
    for (size_t b = lo + 1; b <= 2 * lo; b += lo / 64) classes.insert(pool_size_class(b));
    EXPECT_EQ(classes.size(), 4u) << "between 2^" << k << " and 2^" << k + 1;
  }
}

}  // namespace
}  // namespace pa
