/*
 * Tiny plug-ins for the loader tests (kernels/plugin_test.cpp). One source, one shared library per
 * variant: kernels/CMakeLists.txt builds it once per PA_PLUGIN_* definition below. Only the good
 * variant is meant to load; each other one carries exactly one defect the loader must name.
 *
 *   PA_PLUGIN_GOOD                two host kernels, zeros_a and zeros_b (write zeros; for PATH:NAME)
 *   PA_PLUGIN_BAD_ABI_VERSION     descriptor abi_version = 999
 *   PA_PLUGIN_NO_ENTRY_POINT      exports pacheck_kernels_v2 instead of pacheck_kernels
 *   PA_PLUGIN_UNKNOWN_LAYOUT_BIT  capability.kv_layouts has bit 9 set (no such layout)
 *   PA_PLUGIN_TRUNCATED_STRUCT    pacheck_kernel.struct_size ends before `launch`
 *   PA_PLUGIN_EMPTY_LIST          returns no kernels
 *   PA_PLUGIN_NULL_LAUNCH         launch = NULL
 */
#include <pacheck/kernel_abi.h>

#include <stddef.h>
#include <string.h>

static const int32_t kHeads[] = {64};
static const int32_t kBlocks[] = {16};

#if defined(PA_PLUGIN_UNKNOWN_LAYOUT_BIT)
#define PA_LAYOUTS (PACHECK_BIT(PACHECK_LAYOUT_NHD) | (1u << 9))
#else
#define PA_LAYOUTS PACHECK_BIT(PACHECK_LAYOUT_NHD)
#endif

static const pacheck_capability kCap = {
    sizeof(pacheck_capability),
    PACHECK_BIT(PACHECK_DTYPE_BF16),
    PACHECK_BIT(PACHECK_DTYPE_BF16),
    PA_LAYOUTS,
    PACHECK_BIT(PACHECK_SCALE_NONE),
    kHeads, 1, kBlocks, 1,
    1, NULL, 0, 1, 0, 0,
    PACHECK_CAP_LSE,
    0, 0, /* minor 1: no fixed partition, any page stride */
    0, NULL, 0, PACHECK_LSE_NATURAL, /* minor 2: padded table, Dv == D, natural LSE */
};

static const char* zeros_last_error(const pacheck_kernel* self) {
  (void)self;
  return "";
}

#if !defined(PA_PLUGIN_NULL_LAUNCH)
/* Zeros for out (0x0000 is +0 in bf16) and lse: only a loader fixture, never a correct kernel. */
static int zeros_launch(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b,
                        void* stream) {
  (void)self;
  (void)stream;
  const size_t rows = (size_t)p->num_seqs * (size_t)p->q_len * (size_t)p->num_q_heads;
  memset(b->out, 0, rows * (size_t)p->head_size * 2u);
  if (b->lse) memset(b->lse, 0, rows * sizeof(float));
  return PACHECK_OK;
}
#endif

#if defined(PA_PLUGIN_BAD_ABI_VERSION)
#define PA_ABI 999u
#else
#define PA_ABI PACHECK_KERNEL_ABI_VERSION
#endif

#if defined(PA_PLUGIN_TRUNCATED_STRUCT)
/* As if built against a header that ended before `launch`: too short for ABI version 1. */
#define PA_SIZE ((uint32_t)offsetof(pacheck_kernel, launch))
#else
#define PA_SIZE ((uint32_t)sizeof(pacheck_kernel))
#endif

#if defined(PA_PLUGIN_NULL_LAUNCH)
#define PA_LAUNCH NULL
#else
#define PA_LAUNCH zeros_launch
#endif

static const pacheck_kernel kZerosA = {
    PA_SIZE, PA_ABI, "zeros_a", "1", "pacheck kernels/testdata/test_plugins.c",
    PACHECK_MEMORY_HOST, &kCap, NULL, NULL, NULL, NULL, PA_LAUNCH, zeros_last_error,
    PACHECK_KERNEL_ABI_MINOR, NULL, 0, NULL, NULL,
    NULL, /* minor 2: no instance report */
};
static const pacheck_kernel kZerosB = {
    PA_SIZE, PA_ABI, "zeros_b", "1", "pacheck kernels/testdata/test_plugins.c",
    PACHECK_MEMORY_HOST, &kCap, NULL, NULL, NULL, NULL, PA_LAUNCH, zeros_last_error,
    PACHECK_KERNEL_ABI_MINOR, NULL, 0, NULL, NULL,
    NULL, /* minor 2: no instance report */
};
static const pacheck_kernel* const kKernels[] = {&kZerosA, &kZerosB};

#if defined(PA_PLUGIN_NO_ENTRY_POINT)
#define PA_ENTRY pacheck_kernels_v2 /* a plausible typo: the loader looks for pacheck_kernels only */
#else
#define PA_ENTRY pacheck_kernels
#endif

PACHECK_EXPORT const pacheck_kernel* const* PA_ENTRY(uint32_t host_abi_version, uint32_t* count) {
  (void)host_abi_version;
#if defined(PA_PLUGIN_EMPTY_LIST)
  *count = 0;
  return kKernels;
#else
  *count = 2;
  return kKernels;
#endif
}
