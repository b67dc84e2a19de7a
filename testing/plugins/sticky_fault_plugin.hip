// Test-only device plug-ins that break the contract around the launch (worker/parity_test.cpp).
// Both wrap the GPU example kernel:
//   sticky_fault_at_777       for a context of exactly 777 tokens, writes through a wild pointer
//                             (an illegal address poisons the whole context): pacheck must record
//                             that case as a crash naming the fault, end the worker, and run every
//                             later case in a fresh one
//   writes_k_cache_on_device  computes the right answer, then flips one bit of byte 5 of its K
//                             cache: metric input_written, in process and in a worker
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

PA_GLOBAL void flip_byte_5(unsigned char* p) { p[5] ^= 0x01; }

int writes_k_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  const int st = gpu_launch(self, p, b, stream);
  PA_LAUNCH(flip_byte_5, 1, 1, 0, static_cast<hipStream_t>(stream),
            const_cast<unsigned char*>(static_cast<const unsigned char*>(b->k_cache)));
  return st;
}

pacheck_kernel writes_k() {
  pacheck_kernel k = kKernel;
  k.name = "writes_k_cache_on_device";
  k.provenance = "pacheck test plug-in (testing/plugins/sticky_fault_plugin.hip)";
  k.launch = writes_k_launch;
  return k;
}

pacheck_kernel sticky() {
  pacheck_kernel k = kKernel;
  k.name = "sticky_fault_at_777";
  k.provenance = "pacheck test plug-in (testing/plugins/sticky_fault_plugin.hip)";
  k.launch = sticky_launch;
  return k;
}
const pacheck_kernel kSticky = sticky();
const pacheck_kernel kWritesK = writes_k();
const pacheck_kernel* const kStickyList[] = {&kSticky, &kWritesK};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  *count = 0;
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) return nullptr;
  *count = 2;
  return kStickyList;
}
