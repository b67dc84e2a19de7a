/*
 * pacheck kernel ABI: how a paged-attention decode kernel is put under test.
 *
 * Plain C99, no dependencies: build a plug-in with gcc, clang, nvcc or hipcc without pacheck's
 * sources. A plug-in is a shared library exporting one function,
 *
 *     const pacheck_kernel* const* pacheck_kernels(uint32_t host_abi_version, uint32_t* count);
 *
 * which returns `*count` kernel descriptors (a family such as v1 and v2 may share a library).
 * pacheck's own kernels are registered through this same descriptor type.
 *
 * Rules of the boundary
 *  - Every struct starts with `struct_size` (sizeof the struct as the writer compiled it). Fields
 *    are only ever appended; a reader never reads a field that lies past struct_size. A struct too
 *    short for the fields of ABI version 1 is refused at load.
 *  - PACHECK_KERNEL_ABI_VERSION is bumped only when a field changes meaning or position. pacheck
 *    refuses a library whose descriptors carry another version.
 *  - No C++ types, exceptions or allocations cross the boundary. Strings are NUL-terminated and
 *    owned by the side that returns them (descriptor strings live as long as the library).
 *  - "Not supported" is an answer, not a crash: `supports` returns 0 with a reason, `launch`
 *    returns PACHECK_NOT_SUPPORTED. Any other failure returns PACHECK_ERROR and `last_error`
 *    says why.
 *
 * The problem (one decode step; docs/problem.md)
 *  S = num_seqs sequences, each with q_len query tokens (q_len > 1: multi-token decode, causal among
 *  themselves), Hq query heads, Hkv KV heads (query head h reads KV head h / G, G = Hq / Hkv),
 *  head size D, B tokens per page. Sequence s has context_lens[s] tokens of KV, the q_len new ones
 *  included; query token i of sequence s sits at position p = context_lens[s] - q_len + i and sees
 *  keys t <= p (and t > p - sliding_window when a window is set).
 *  Logical token t of sequence s lives in page blk = block_tables[s * max_blocks_per_seq + t / B]
 *  at slot tok = t % B. Table entries past ceil(context_lens[s] / B) are garbage and must never be
 *  read; free pages and unused slots hold poison (NaN codes).
 *
 * KV layouts (docs/layouts.md). x = 16 / sizeof(element) (8 for 16-bit, 16 for 8-bit elements).
 * `page_stride` = elements between consecutive pages, >= the dense page H*B*D (strided views are
 * real: hybrid models hand the cache as a view). Offset of element (blk, h, tok, d), in elements:
 *    NHD       K and V [NB, B, H, D]:   blk*page_stride + (tok*H + h)*D + d
 *    HND       K and V [NB, H, B, D]:   blk*page_stride + (h*B + tok)*D + d
 *    VLLM      K [NB, H, D/x, B, x]:    blk*page_stride + h*D*B + (d/x)*B*x + tok*x + d%x
 *              V [NB, H, D, B]:         blk*page_stride + h*D*B + d*B + tok
 *    SHUFFLED  K as VLLM
 *              V [NB, H, B/x, D, x]:    blk*page_stride + h*D*B + (tok/x)*D*x + d*x + tok%x
 *              (needs B % x == 0)
 *
 * Scales (dequantized value = decode(code) * scale; the writer stored code = sat(x / scale)):
 *    NONE                   scale 1 (k_scales/v_scales hold one element, 1.0)
 *    PER_TENSOR             [1]
 *    PER_HEAD               [Hkv]:              index h
 *    PER_TOKEN_BLOCK_MAJOR  [NB, Hkv, B]:       index (blk*Hkv + h)*B + tok
 *    PER_TOKEN_HEAD_MAJOR   [Hkv, NB*B]:        index h*NB*B + blk*B + tok
 *  Per-token scales follow the *physical* slot (blk, tok), never the logical token index.
 *
 * Logits: x = softmax_scale * (q . k); then, in this order, soft-cap c*tanh(x/c) when
 * logit_softcap > 0, then + alibi_slopes[h] * (t - p) when ALiBi is on. A sink adds exp(sinks[h])
 * to the softmax denominator only. LSE = log(sum of exp(x) over visible keys [+ exp(sink)]).
 *
 * Element codes: BF16 and FP16 are IEEE-style 16-bit (little-endian); FP8_E4M3FN is OCP e4m3
 * (max 448, NaN 0x7F/0xFF, MI355 and NVIDIA); FP8_E4M3FNUZ is MI300's (max 240, single NaN 0x80, no
 * -0); FP8_E5M2 is the top byte of an fp16 (max 57344); INT8 is a two's-complement integer code.
 */
#ifndef PACHECK_KERNEL_ABI_H
#define PACHECK_KERNEL_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PACHECK_KERNEL_ABI_VERSION 1u

/* ---- vocabulary (numeric ids are part of the ABI) -------------------------------------------- */

typedef enum pacheck_dtype {
  PACHECK_DTYPE_BF16 = 0,
  PACHECK_DTYPE_FP16 = 1,
  PACHECK_DTYPE_FP8_E4M3FN = 2,
  PACHECK_DTYPE_FP8_E4M3FNUZ = 3,
  PACHECK_DTYPE_INT8 = 4,
  PACHECK_DTYPE_FP32 = 5,
  PACHECK_DTYPE_FP8_E5M2 = 6,
  PACHECK_DTYPE_COUNT_ = 7
} pacheck_dtype;

typedef enum pacheck_kv_layout {
  PACHECK_LAYOUT_NHD = 0,
  PACHECK_LAYOUT_HND = 1,
  PACHECK_LAYOUT_VLLM = 2,
  PACHECK_LAYOUT_SHUFFLED = 3,
  PACHECK_LAYOUT_COUNT_ = 4
} pacheck_kv_layout;

typedef enum pacheck_scale_mode {
  PACHECK_SCALE_NONE = 0,
  PACHECK_SCALE_PER_TENSOR = 1,
  PACHECK_SCALE_PER_HEAD = 2,
  PACHECK_SCALE_PER_TOKEN_BLOCK_MAJOR = 3,
  PACHECK_SCALE_PER_TOKEN_HEAD_MAJOR = 4,
  PACHECK_SCALE_COUNT_ = 5
} pacheck_scale_mode;

/* Where the kernel's buffers live. Host kernels are first-class: CI tests them without a GPU. */
typedef enum pacheck_memory {
  PACHECK_MEMORY_HOST = 0,
  PACHECK_MEMORY_DEVICE = 1
} pacheck_memory;

typedef enum pacheck_status {
  PACHECK_OK = 0,
  PACHECK_NOT_SUPPORTED = 1, /* a clean refusal; last_error names why */
  PACHECK_ERROR = 2          /* the kernel failed; last_error names why */
} pacheck_status;

/* Bit masks: 1u << id. */
#define PACHECK_BIT(id) (1u << (unsigned)(id))

/* Capability flags (pacheck_capability.flags). */
#define PACHECK_CAP_STRIDED_PAGES (1u << 0)     /* page_stride > dense page size */
#define PACHECK_CAP_CUSTOM_SCALE (1u << 1)      /* softmax_scale other than 1/sqrt(D) */
#define PACHECK_CAP_SLIDING_WINDOW (1u << 2)
#define PACHECK_CAP_LOGIT_SOFTCAP (1u << 3)
#define PACHECK_CAP_ALIBI (1u << 4)
#define PACHECK_CAP_SINKS (1u << 5)
#define PACHECK_CAP_LSE (1u << 6)               /* writes the LSE output */
#define PACHECK_CAP_PARTITION_OF_PAGES (1u << 7)/* split-K: partition_size a multiple of B */
#define PACHECK_CAP_TOKEN_SCALES_FOR_8BIT (1u << 8) /* 8-bit KV only with per-token scales */

/* ---- the static capability declaration ------------------------------------------------------ */

typedef struct pacheck_capability {
  uint32_t struct_size;
  uint32_t q_dtypes;        /* mask of pacheck_dtype: query and output (out dtype = q dtype) */
  uint32_t kv_dtypes;       /* mask of pacheck_dtype, fp8 flavours separately */
  uint32_t kv_layouts;      /* mask of pacheck_kv_layout */
  uint32_t scale_modes;     /* mask of pacheck_scale_mode */
  const int32_t* head_sizes;   /* the supported D values */
  uint32_t num_head_sizes;
  const int32_t* block_sizes;  /* the supported B values */
  uint32_t num_block_sizes;
  int32_t max_gqa;          /* largest G = Hq / Hkv */
  const int32_t* gqa_tiles; /* optional: G runs padded up to the smallest tile >= G */
  uint32_t num_gqa_tiles;
  int32_t max_q_len;        /* largest q_len (1 = plain decode only) */
  int32_t max_q_len_x_gqa;  /* 0 = no limit; else q_len * G must not exceed it */
  int32_t max_context;      /* 0 = no limit */
  uint32_t flags;           /* PACHECK_CAP_* */
} pacheck_capability;

/* What the kernel rounds, and to what: the tolerance model derives the tolerance from this, so a
 * kernel declaring looser numerics gets a wider elementwise bound (never a blind aggregate check).
 * Each field is a pacheck_dtype, PACHECK_ROUND_NONE (kept in fp32) or PACHECK_ROUND_AS_Q (the
 * case's q dtype). The output is always rounded to the q dtype. */
#define PACHECK_ROUND_NONE 100
#define PACHECK_ROUND_AS_Q 101
typedef struct pacheck_numerics {
  uint32_t struct_size;
  int32_t p_round;        /* softmax weights P before P.V (e.g. a 16-bit matrix core) */
  int32_t qk_round;       /* Q (or K) before Q.K (e.g. fp8 Q on fp8 paths) */
  int32_t partial_round;  /* split-K partial outputs as stored between stages */
} pacheck_numerics;

/* ---- one launch ------------------------------------------------------------------------------ */

typedef struct pacheck_problem {
  uint32_t struct_size;
  int32_t num_seqs, q_len, num_q_heads, num_kv_heads, head_size, block_size;
  int32_t max_blocks_per_seq;  /* row length of block_tables */
  int32_t max_context;         /* max over context_lens */
  int64_t num_blocks;          /* pages in the pool */
  int64_t page_stride;         /* elements between consecutive pages, K and V alike */
  int32_t q_dtype;             /* pacheck_dtype of q and out */
  int32_t kv_dtype;            /* pacheck_dtype of the cache codes */
  int32_t kv_layout;           /* pacheck_kv_layout */
  int32_t scale_mode;          /* pacheck_scale_mode */
  double softmax_scale;        /* always given explicitly (1/sqrt(D) is only the default) */
  int32_t sliding_window;      /* 0 = off */
  double logit_softcap;        /* 0 = off */
  int32_t has_alibi;           /* alibi_slopes given */
  int32_t has_sinks;           /* sinks given */
  int32_t partition_size;      /* split-K partition the case asks two-stage kernels to use */
  int32_t want_lse;            /* lse buffer given */
} pacheck_problem;

typedef struct pacheck_buffers {
  uint32_t struct_size;
  const void* q;               /* [S, q_len, Hq, D] codes of q_dtype */
  void* out;                   /* [S, q_len, Hq, D] codes of q_dtype */
  float* lse;                  /* [S, q_len, Hq] natural log, sinks included; NULL unless want_lse */
  const void* k_cache;         /* layout above, codes of kv_dtype */
  const void* v_cache;
  const float* k_scales;       /* scale layout above */
  const float* v_scales;
  const int32_t* block_tables; /* [S, max_blocks_per_seq] */
  const int32_t* context_lens; /* [S] */
  const float* alibi_slopes;   /* [Hq] or NULL */
  const float* sinks;          /* [Hq] or NULL */
  void* workspace;             /* workspace_bytes(problem) bytes, or NULL when 0 */
  uint64_t workspace_bytes;
} pacheck_buffers;

/* ---- the descriptor -------------------------------------------------------------------------- */

typedef struct pacheck_kernel pacheck_kernel;
struct pacheck_kernel {
  uint32_t struct_size;
  uint32_t abi_version;        /* PACHECK_KERNEL_ABI_VERSION the kernel was built against */
  const char* name;            /* unique, [A-Za-z0-9_.-]: names records in reports */
  const char* version;
  const char* provenance;      /* where it comes from: project, commit, library */
  int32_t memory;              /* pacheck_memory */
  const pacheck_capability* capability;
  const pacheck_numerics* numerics;
  void* user_data;             /* the kernel's own, passed back through the descriptor */
  /* Limits a table cannot express (shared memory, a kernel-table lookup). NULL = the table says
   * everything. Returns 1 when supported, else 0 with a reason written to why[0..len). */
  int (*supports)(const pacheck_kernel* self, const pacheck_problem* p, char* why, size_t len);
  /* Scratch the launch needs, in bytes. NULL = none. */
  uint64_t (*workspace_bytes)(const pacheck_kernel* self, const pacheck_problem* p);
  /* Runs the kernel. Device kernels get device pointers and `stream` (hipStream_t/cudaStream_t,
   * NULL = the default stream) and may return before the work completes; host kernels get host
   * pointers and a NULL stream. Returns a pacheck_status. */
  int (*launch)(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b,
                void* stream);
  /* The reason for the last NOT_SUPPORTED or ERROR of this kernel on the calling thread. */
  const char* (*last_error)(const pacheck_kernel* self);
};

/* The one symbol a plug-in exports. Returns NULL (and *count = 0) when the plug-in cannot serve
 * `host_abi_version`. */
typedef const pacheck_kernel* const* (*pacheck_kernels_fn)(uint32_t host_abi_version, uint32_t* count);
#define PACHECK_KERNELS_SYMBOL "pacheck_kernels"

#if defined(_WIN32)
#define PACHECK_EXPORT __declspec(dllexport)
#else
#define PACHECK_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
}
#endif

#endif /* PACHECK_KERNEL_ABI_H */
