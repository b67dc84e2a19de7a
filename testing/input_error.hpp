#pragma once
// The message of the InputError a call throws: how a test checks that bad input is refused and
// that the refusal names the culprit, in one line instead of a try/catch at every site.
#include <string>

#include "core/case.hpp"

namespace pa::test {

/// The InputError message `f()` throws, or "" when it returns (any other exception propagates).
template <class F>
std::string input_error(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace pa::test
