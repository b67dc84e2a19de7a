// A test-only device plug-in with a sticky GPU fault: it wraps the GPU example kernel and, for a
// context of exactly 777 tokens, launches a kernel that writes through a wild pointer (an illegal
// address poisons the whole context). pacheck must record that case as a crash naming the fault,
// end the worker, and run every later case in a fresh one (worker/sticky_fault_test.cpp).
#define pacheck_kernels example_pacheck_kernels  // the wrapped example's entry point, renamed
#include "examples/gpu_kernel_plugin/gpu_decode_plugin.hip"
#undef pacheck_kernels

namespace {

PA_GLOBAL void write_wild(int* p) { p[threadIdx.x] = 1; }

int sticky_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  if (p->max_context == 777) {
    PA_LAUNCH(write_wild, 1, 32, 0, static_cast<hipStream_t>(stream), reinterpret_cast<int*>(uintptr_t(0x10)));
    return PACHECK_OK;  // the fault surfaces when pacheck synchronises
  }
  return gpu_launch(self, p, b, stream);
}

pacheck_kernel sticky() {
  pacheck_kernel k = kKernel;
  k.name = "sticky_fault_at_777";
  k.provenance = "pacheck test plug-in (testing/plugins/sticky_fault_plugin.hip)";
  k.launch = sticky_launch;
  return k;
}
const pacheck_kernel kSticky = sticky();
const pacheck_kernel* const kStickyList[] = {&kSticky};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  *count = 0;
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) return nullptr;
  *count = 1;
  return kStickyList;
}
