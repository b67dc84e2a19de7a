// Test-only plug-ins for the parity of the isolation modes: the same fault must get the same
// verdict whether the kernel runs in pacheck's process (--isolate never) or in a worker (the
// default for plug-ins). Each wraps the CPU example kernel:
//   device_memory_kernel  declares device memory; on a pacheck built without a GPU it cannot run
//                         anywhere: Skipped (pacheck's limit), never a Fail blamed on the kernel
//   overruns_out          writes one element past the end of `out` on every launch: metric guard
//   writes_canary_byte    writes the guard's first canary byte value just past `out` (a guard of
//                         one constant byte would miss it): metric guard
//   writes_k_cache        computes the right answer, then flips one bit of its K cache: metric
//                         input_written, naming the buffer
//   skips_one_output      leaves the last output element unwritten (its poison survives): nan
//   skips_one_lse         leaves the last LSE element unwritten: metric lse
// and two whose supports() misbehaves, which only a worker survives: the case is that kernel's
// Fail (crash or timeout), never an Ok launch after a "yes" nobody gave:
//   supports_segfaults    supports() dereferences NULL for contexts above 30 tokens
//   supports_hangs        supports() never returns for q_len 2
#include <unistd.h>

#define pacheck_kernels example_pacheck_kernels  // the wrapped example's entry point, renamed
#include "examples/cpu_kernel_plugin/cpu_decode_plugin.cpp"
#undef pacheck_kernels

namespace {

size_t out_bytes_of(const pacheck_problem* p) {
  return size_t(p->num_seqs) * size_t(p->q_len) * size_t(p->num_q_heads) * size_t(p->head_size) * 2;
}
int overrun_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  const int st = cpu_launch(self, p, b, s);
  static_cast<unsigned char*>(b->out)[out_bytes_of(p) + 3] = 0x42;  // past the last element
  return st;
}
int canary_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  const int st = cpu_launch(self, p, b, s);
  unsigned char* end = static_cast<unsigned char*>(b->out) + out_bytes_of(p);
  for (int i = 0; i < 8; ++i) end[i] = 0xA5;  // the value a constant canary would hold
  return st;
}

int k_cache_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  const int st = cpu_launch(self, p, b, s);
  const_cast<unsigned char*>(static_cast<const unsigned char*>(b->k_cache))[5] ^= 0x01;  // an input, written
  return st;
}

// Every element as the example computes it, then the last one restored to what pacheck left there
// (the poison): the element was, in effect, never written.
int skip_out_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  unsigned char* last = static_cast<unsigned char*>(b->out) + out_bytes_of(p) - 2;
  const unsigned char before[2] = {last[0], last[1]};
  const int st = cpu_launch(self, p, b, s);
  last[0] = before[0];
  last[1] = before[1];
  return st;
}
int skip_lse_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  const size_t rows = size_t(p->num_seqs) * size_t(p->q_len) * size_t(p->num_q_heads);
  const float before = b->lse ? b->lse[rows - 1] : 0.f;
  const int st = cpu_launch(self, p, b, s);
  if (b->lse) b->lse[rows - 1] = before;
  return st;
}

int segfault_supports(const pacheck_kernel*, const pacheck_problem* p, char*, size_t) {
  if (p->max_context > 30) {
    volatile int* nowhere = nullptr;
    return *nowhere;
  }
  return 1;
}
int hang_supports(const pacheck_kernel*, const pacheck_problem* p, char*, size_t) {
  if (p->q_len == 2)
    for (;;) ::pause();
  return 1;
}

pacheck_kernel variant(const char* name, int memory,
                       int (*launch)(const pacheck_kernel*, const pacheck_problem*, const pacheck_buffers*, void*)) {
  pacheck_kernel k = kKernel;
  k.name = name;
  k.provenance = "pacheck test plug-in (testing/plugins/parity_plugins.cpp)";
  k.memory = memory;
  k.launch = launch;
  return k;
}

const pacheck_kernel kDevice = variant("device_memory_kernel", PACHECK_MEMORY_DEVICE, cpu_launch);
const pacheck_kernel kOverrun = variant("overruns_out", PACHECK_MEMORY_HOST, overrun_launch);
const pacheck_kernel kCanary = variant("writes_canary_byte", PACHECK_MEMORY_HOST, canary_launch);
const pacheck_kernel kWritesK = variant("writes_k_cache", PACHECK_MEMORY_HOST, k_cache_launch);
const pacheck_kernel kSkipsOut = variant("skips_one_output", PACHECK_MEMORY_HOST, skip_out_launch);
const pacheck_kernel kSkipsLse = variant("skips_one_lse", PACHECK_MEMORY_HOST, skip_lse_launch);
pacheck_kernel with_supports(const char* name, int (*supports)(const pacheck_kernel*, const pacheck_problem*, char*, size_t)) {
  pacheck_kernel k = variant(name, PACHECK_MEMORY_HOST, cpu_launch);
  k.supports = supports;
  return k;
}
const pacheck_kernel kSupportsSegfaults = with_supports("supports_segfaults", segfault_supports);
const pacheck_kernel kSupportsHangs = with_supports("supports_hangs", hang_supports);
const pacheck_kernel* const kParity[] = {&kDevice, &kOverrun, &kCanary, &kWritesK, &kSkipsOut, &kSkipsLse};
const pacheck_kernel* const kBadSupports[] = {&kSupportsSegfaults, &kSupportsHangs};

}  // namespace

// Built twice (testing/CMakeLists.txt): the parity kernels, and with PA_BAD_SUPPORTS the two
// whose supports() misbehaves (which would take pacheck down in process).
extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  *count = 0;
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) return nullptr;
#if defined(PA_BAD_SUPPORTS)
  *count = 2;
  return kBadSupports;
#else
  *count = 6;
  return kParity;
#endif
}
