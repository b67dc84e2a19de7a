#pragma once
// The C/C++ worker: `pacheck worker --kernel PATH.so[:NAME] | builtin:host | builtin:gpu` serves
// the kernels over the protocol of docs/worker-protocol.md on fds 3 (shared memory), 4
// (requests) and 5 (responses) until its request pipe closes.
#include <vector>

#include "kernels/kernel.hpp"

namespace pa::worker {

/// Serves `kernels` until EOF on fd 4. Returns the process exit code (0 after a clean EOF).
int serve(const std::vector<KernelPtr>& kernels);

}  // namespace pa::worker
