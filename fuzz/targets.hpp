#pragma once
// The fuzzed readers, one function each: the libFuzzer entry points (*_fuzz.cpp, built with clang
// by .ci/fuzz.sh) and the replay of saved findings (regressions_test.cpp, every build) call the
// same code. Each returns normally for any input a reader must survive: a value it accepts, or an
// InputError naming the problem. Anything else (a crash, undefined behaviour, another exception,
// a property below that does not hold) is a finding.
#include <cstddef>
#include <cstdint>

namespace pa::fuzz {

/// Case JSON as `pacheck run --case` and the corpus read it: parse, read the case (bare or wrapped
/// in a corpus file's {"case": ...}), validate; an accepted case must round-trip through JSON.
void case_reader(const uint8_t* data, size_t size);
/// A report or a `.partial` file's text: parse; an accepted report must round-trip through JSON
/// and diff against itself with no regression.
void report_reader(const uint8_t* data, size_t size);
/// One line from a worker, as the parent reads hello and response lines and the worker reads
/// requests: the problem, the kernels' capability and numerics.
void worker_protocol(const uint8_t* data, size_t size);

}  // namespace pa::fuzz
