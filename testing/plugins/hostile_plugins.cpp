// Test-only plug-ins that misbehave the way a hostile environment does, each wrapping the CPU
// example kernel (worker/hostile_test.cpp):
//   slow_but_right      sleeps 1.5 s, then computes correctly (a case in flight when a signal comes)
//   helper_then_crash   leaves a background child holding the worker's pipes, then segfaults
//   forks_and_returns   fork()s without exec; both copies return from the launch
//   flaky               adds 1 to every output on odd calls (a nondeterministic kernel)
//   bad_utf8            a provenance that is not UTF-8
// Built again with PA_HOSTILE_NAMED_V1 (one kernel named like a built-in) and PA_HOSTILE_MANY (a
// kernel count no list holds).
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#define pacheck_kernels example_pacheck_kernels  // the wrapped example's entry point, renamed
#include "examples/cpu_kernel_plugin/cpu_decode_plugin.cpp"
#undef pacheck_kernels

namespace {

int slow_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  // Tells a waiting test that a launch is in flight (the file HOSTILE_MARKER names).
  if (const char* marker = std::getenv("HOSTILE_MARKER")) std::fclose(std::fopen(marker, "w"));
  ::usleep(1500 * 1000);
  return cpu_launch(self, p, b, s);
}
int helper_then_crash(const pacheck_kernel*, const pacheck_problem*, const pacheck_buffers*, void*) {
  if (::fork() == 0) {  // a helper that outlives the launch, holding every inherited descriptor
    ::sleep(30);
    ::_exit(0);
  }
  volatile int* nowhere = nullptr;
  return *nowhere;
}
int forks_and_returns(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  ::fork();  // no exec: the copy returns into whatever called the launch
  return cpu_launch(self, p, b, s);
}
std::atomic<int> g_calls{0};
int flaky(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b, void* s) {
  const int st = cpu_launch(self, p, b, s);
  if (g_calls.fetch_add(1) % 2 == 1) {
    const size_t n = size_t(p->num_seqs) * size_t(p->q_len) * size_t(p->num_q_heads) * size_t(p->head_size);
    auto* out = static_cast<uint16_t*>(b->out);
    for (size_t i = 0; i < n; ++i) out[i] = uint16_t(out[i] ^ 0x0040);  // a visible change in bf16 and fp16
  }
  return st;
}

pacheck_kernel variant(const char* name, int (*launch)(const pacheck_kernel*, const pacheck_problem*,
                                                       const pacheck_buffers*, void*)) {
  pacheck_kernel k = kKernel;
  k.name = name;
  k.provenance = "pacheck test plug-in (testing/plugins/hostile_plugins.cpp)";
  k.launch = launch;
  return k;
}
pacheck_kernel bad_utf8() {
  pacheck_kernel k = variant("bad_utf8", cpu_launch);
  k.provenance = "caf\xe9 \xff\xfe not UTF-8";
  return k;
}

#if defined(PA_HOSTILE_NAMED_V1)
const pacheck_kernel kList[] = {variant("v1", cpu_launch)};
#else
const pacheck_kernel kList[] = {variant("slow_but_right", slow_launch), variant("helper_then_crash", helper_then_crash),
                                variant("forks_and_returns", forks_and_returns), variant("flaky", flaky), bad_utf8()};
#endif
const pacheck_kernel* const kPtrs[] = {
#if defined(PA_HOSTILE_NAMED_V1)
    &kList[0]
#else
    &kList[0], &kList[1], &kList[2], &kList[3], &kList[4]
#endif
};

}  // namespace

extern "C" PACHECK_EXPORT const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count) {
  *count = 0;
  if (host_abi_version != PACHECK_KERNEL_ABI_VERSION) return nullptr;
#if defined(PA_HOSTILE_MANY)
  *count = 0xFFFFFFFFu;  // a count no list holds: pacheck must not read past the end
#else
  *count = uint32_t(sizeof kPtrs / sizeof kPtrs[0]);
#endif
  return kPtrs;
}
