// Test-only plug-ins that misbehave the way real kernels do, each on one shape and correct on
// every other (they wrap the CPU example kernel): a segfault for contexts above 1000 tokens, an
// abort for 32-token pages (aiter's "cannot get heuristic kernel" was an abort), and a hang for
// q_len 2. pacheck must record each as that case's Fail and carry on.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>

#define pacheck_kernels example_pacheck_kernels  // the wrapped example's entry point, renamed
#include "examples/cpu_kernel_plugin/cpu_decode_plugin.cpp"
#undef pacheck_kernels

namespace {

int segfault_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  if (p->max_context > 1000) {
    volatile int* nowhere = nullptr;
    *nowhere = 1;  // an out-of-bounds read of a kernel that indexes past its page table
  }
  return cpu_launch(self, p, b, s);
}
int abort_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  if (p->block_size == 32) std::abort();
  return cpu_launch(self, p, b, s);
}
int hang_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  if (p->q_len == 2)
    for (;;) ::pause();
  return cpu_launch(self, p, b, s);
}

pacheck_kernel variant(const char* name, int (*launch)(const pacheck_kernel*, const pacheck_problem*,
                                                       const pacheck_buffers*, void*)) {
  pacheck_kernel k = kKernel;
  k.name = name;
  k.provenance = "pacheck test plug-in (testing/plugins/misbehaving_plugins.cpp)";
  k.launch = launch;
  return k;
}

const pacheck_kernel kSegfault = variant("segfaults_above_1000", segfault_launch);
const pacheck_kernel kAbort = variant("aborts_on_block32", abort_launch);
const pacheck_kernel kHang = variant("hangs_on_qlen2", hang_launch);
const pacheck_kernel* const kMisbehaving[] = {&kSegfault, &kAbort, &kHang};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  *count = 0;
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) return nullptr;
  *count = 3;
  return kMisbehaving;
}
