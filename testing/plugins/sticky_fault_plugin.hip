// Test-only device plug-ins that break the contract around the launch (worker/parity_test.cpp,
// and the integrity checks on a GPU). Each wraps the GPU example kernel:
//   sticky_fault_at_777       for a context of exactly 777 tokens, writes through a wild pointer
//                             (an illegal address poisons the whole context): pacheck must record
//                             that case as a crash naming the fault, end the worker, and run every
//                             later case in a fresh one
//   writes_k_cache_on_device  computes the right answer, then flips one bit of byte 5 of its K
//                             cache: metric input_written, in process and in a worker
//   skips_one_output_on_device  leaves the last output element unwritten (pacheck's poison survives)
//   second_call_differs_on_device  right on its first launch; every later one scales its output
//                             by 1.02 (state left from the first call)
//   cached_by_pointer_on_device  a result cache keyed by the q pointer: a launch whose q lies where
//                             the previous launch's q lay gets that launch's output back
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

// The output's elements: [T, Hq, D] (the example's V head size is its QK one), in the q dtype.
int64_t out_elems(const pacheck_problem* p) {
  return int64_t(p->total_q ? p->total_q : p->num_seqs * p->q_len) * p->num_q_heads * p->head_size;
}
unsigned blocks_for(int64_t n) { return unsigned(n / 256 + 1 < 1024 ? n / 256 + 1 : 1024); }

__device__ uint16_t g_saved_last;
PA_GLOBAL void save_last(const uint16_t* out, int64_t n) { g_saved_last = out[n - 1]; }
PA_GLOBAL void restore_last(uint16_t* out, int64_t n) { out[n - 1] = g_saved_last; }

int skips_one_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  const int64_t n = out_elems(p);
  uint16_t* out = static_cast<uint16_t*>(b->out);
  PA_LAUNCH(save_last, 1, 1, 0, static_cast<hipStream_t>(stream), out, n);  // pacheck's poison
  const int st = gpu_launch(self, p, b, stream);
  PA_LAUNCH(restore_last, 1, 1, 0, static_cast<hipStream_t>(stream), out, n);
  return st;
}

PA_GLOBAL void scale_out(uint16_t* out, int64_t n, int32_t dtype, float f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = encode16(dtype, decode16(dtype, out[i]) * f);
}

int second_call_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  thread_local int calls = 0;
  const int st = gpu_launch(self, p, b, stream);
  if (calls++ > 0) {
    const int64_t n = out_elems(p);
    PA_LAUNCH(scale_out, blocks_for(n), 256, 0, static_cast<hipStream_t>(stream), static_cast<uint16_t*>(b->out), n,
              p->q_dtype, 1.02f);
  }
  return st;
}

// The cache lives in device globals (no allocation in a launch); larger outputs are not cached.
constexpr int64_t kCacheElems = int64_t(1) << 22, kCacheRows = int64_t(1) << 18;
__device__ uint16_t g_cached_out[kCacheElems];
__device__ float g_cached_lse[kCacheRows];
PA_GLOBAL void stash(const uint16_t* out, const float* lse, int64_t n, int64_t rows, bool back) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (back) const_cast<uint16_t*>(out)[i] = g_cached_out[i];
    else g_cached_out[i] = out[i];
    if (lse && i < rows) {
      if (back) const_cast<float*>(lse)[i] = g_cached_lse[i];
      else g_cached_lse[i] = lse[i];
    }
  }
}

int cached_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* stream) {
  thread_local const void* key = nullptr;
  const int64_t n = out_elems(p), rows = n / p->head_size;
  const hipStream_t s = static_cast<hipStream_t>(stream);
  if (n > kCacheElems || rows > kCacheRows) return gpu_launch(self, p, b, stream);
  if (key == b->q) {
    PA_LAUNCH(stash, blocks_for(n), 256, 0, s, static_cast<const uint16_t*>(b->out), b->lse, n, rows, true);
    return PACHECK_OK;
  }
  const int st = gpu_launch(self, p, b, stream);
  PA_LAUNCH(stash, blocks_for(n), 256, 0, s, static_cast<const uint16_t*>(b->out), b->lse, n, rows, false);
  key = b->q;
  return st;
}

pacheck_kernel variant(const char* name, int (*launch)(const pacheck_kernel*, const pacheck_problem*,
                                                        const pacheck_buffers*, void*)) {
  pacheck_kernel k = kKernel;
  k.name = name;
  k.provenance = "pacheck test plug-in (testing/plugins/sticky_fault_plugin.hip)";
  k.launch = launch;
  return k;
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
const pacheck_kernel kSkipsOne = variant("skips_one_output_on_device", skips_one_launch);
const pacheck_kernel kSecondCall = variant("second_call_differs_on_device", second_call_launch);
const pacheck_kernel kCached = variant("cached_by_pointer_on_device", cached_launch);
const pacheck_kernel* const kStickyList[] = {&kSticky, &kWritesK, &kSkipsOne, &kSecondCall, &kCached};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  *count = 0;
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) return nullptr;
  *count = sizeof kStickyList / sizeof kStickyList[0];
  return kStickyList;
}
