// libFuzzer entry for pa::fuzz::report_reader (fuzz/targets.hpp); built by .ci/fuzz.sh.
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pa::fuzz::report_reader(data, size);
  return 0;
}
