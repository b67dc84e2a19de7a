// Host twins against the CPU reference on generated cases (inside its capabilities each path is
// correct for every case): RapidCheck properties, label `property`.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>

#include "testing/twin_test.hpp"

namespace pa {
namespace {

using namespace twin_test;

RC_GTEST_PROP(HostTwins, V1MatchesReference, ()) { check_path("v1"); }
RC_GTEST_PROP(HostTwins, HipMatchesReference, ()) { check_path("hip"); }
RC_GTEST_PROP(HostTwins, AsmMatchesReference, ()) { check_path("asm"); }

// Split size never changes the answer beyond the error model: hip at the smallest partition
// (one block) and at a whole-context partition both pass against the same reference.
RC_GTEST_PROP(HostTwins, HipSplitSizeInvariant, ()) {
  Case c = gen_hip_case();
  const Device dev = device_for(c.kv_dtype, false);
  for (int32_t part : {c.block_size, 4096}) {
    c.partition_size = part;
    RC_ASSERT(judge("hip", c, dev) == "");
  }
}

}  // namespace
}  // namespace pa
