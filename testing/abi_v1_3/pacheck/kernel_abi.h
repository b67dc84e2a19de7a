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
 *  - Every struct starts with `struct_size` (sizeof the struct as the writer compiled it; write it
 *    with PACHECK_STRUCT_SIZE(T)). Fields are only ever appended; a reader never reads a field that
 *    lies past struct_size (test with PACHECK_HAS_FIELD). A struct too short for the fields of ABI
 *    1.0 is refused at load.
 *  - Versions are MAJOR.MINOR. PACHECK_KERNEL_ABI_VERSION is the major: bumped only when a field
 *    changes meaning or position; pacheck refuses a library whose descriptors carry another major.
 *    PACHECK_KERNEL_ABI_MINOR counts the appended fields: a library built against an older minor
 *    loads unchanged (its structs end earlier, and every field it lacks takes the default written
 *    beside it, which is the older minor's behaviour). Every field added in a minor means "as
 *    before" when zero, so a zero-initialized struct declares nothing new. pacheck refuses a
 *    descriptor whose abi_minor is newer than its own (it could not honour what it cannot read).
 *    Minor 1 added: capability fixed_partition, page_stride_align and the ONLY_SCALES_ON_8BIT flag;
 *    numerics v_round, pv_round and kv_dtypes; buffers device_id; descriptor abi_minor,
 *    numerics_by_kv, init and destroy; max_gqa 0 = no limit.
 *    Minor 2 added the ragged batch (2026's decode surface, docs/problem.md): capability flags
 *    RAGGED and EMPTY_ROWS, page_tables, head_sizes_v and lse_base; problem head_size_v, total_q,
 *    max_q_len, page_table, num_kv_indices and page_stride_v; buffers cu_seqlens_q and the CSR
 *    page table; descriptor instance (which implementation served a launch). A kernel of an
 *    earlier minor is offered only the cases it can express: uniform q_len, Dv == D, the padded
 *    table, no empty sequence.
 *    Minor 3 added the call around the kernel: the plan step (descriptor plan, launch_planned and
 *    release_plan, with pacheck_plan_batch) and the capability flags GRAPH_SAFE, DETERMINISTIC and
 *    PLAN_COVERS_SHORTER. A kernel of an earlier minor plans inside its launch, as before.
 *  - No C++ types, exceptions or allocations cross the boundary. Strings are NUL-terminated and
 *    owned by the side that returns them (descriptor strings live as long as the library).
 *  - One error shape: a call that can fail returns a status and `last_error` names why.
 *    "Not supported" is an answer, not a crash: `launch` returns PACHECK_NOT_SUPPORTED, `supports`
 *    returns 0, `init` returns PACHECK_NOT_SUPPORTED. Any other failure returns PACHECK_ERROR.
 *    The reason is read from `last_error` on the calling thread right after the call. (`supports`
 *    may also write its reason into its `why` buffer, as in 1.0; pacheck reads `why` first and
 *    falls back to `last_error` when `why` is empty.)
 *  - Stream (device kernels): pacheck always passes an explicit stream (never NULL) created on
 *    device `buffers.device_id`, which is current on the calling thread; launch on it, never on
 *    the default (legacy or per-thread) stream, and never synchronize the device. Host kernels get
 *    a NULL stream.
 *
 * The problem (one decode step; docs/problem.md)
 *  S = num_seqs sequences, sequence s with q_len_s = cu_seqlens_q[s+1] - cu_seqlens_q[s] query
 *  tokens (q_len_s > 1: multi-token decode or an extend chunk, causal among themselves), Hq query
 *  heads, Hkv KV heads (query head h reads KV head h / G, G = Hq / Hkv), head size D for Q and K and
 *  Dv = head_size_v for V and the output, B tokens per page. Q is packed [T, Hq, D], out [T, Hq, Dv],
 *  lse [T, Hq]: query token i of sequence s is row cu_seqlens_q[s] + i (T = total_q). A uniform
 *  batch (every q_len_s = q_len) is the same bytes as [S, q_len, Hq, D]; problem.q_len is 0 for a
 *  ragged one (capability flag RAGGED). Sequence s has context_lens[s] tokens of KV, its new ones
 *  included; query token i sits at position p = context_lens[s] - q_len_s + i and sees keys t <= p
 *  (and t > p - sliding_window when a window is set). A sequence of context 0 (an empty slot of a
 *  padded batch, flag EMPTY_ROWS) sees no key: its rows are O = 0 and LSE = -inf.
 *  Page table PADDED: logical token t of sequence s lives in page
 *  blk = block_tables[s * max_blocks_per_seq + t / B] at slot tok = t % B; entries past
 *  ceil(context_lens[s] / B) are garbage (free pages, -1 or 0) and must never be read. Page table CSR (minor 2):
 *  blk = kv_indices[kv_indptr[s] + t / B]; sequence s has kv_indptr[s+1] - kv_indptr[s] pages, the
 *  last holding kv_last_page_len[s] tokens (1..B; 0 when it has none), so its context is
 *  (pages - 1) * B + kv_last_page_len[s]; entries past kv_indptr[S] are garbage. Free pages and
 *  unused slots (the last page's past kv_last_page_len) hold poison (NaN codes).
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
 * to the softmax denominator only. LSE = log(sum of exp(x) over visible keys [+ exp(sink)]), in the
 * base the kernel declares (capability lse_base, minor 2: natural unless PACHECK_LSE_BASE2).
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

#define PACHECK_KERNEL_ABI_VERSION 1u /* major */
#define PACHECK_KERNEL_ABI_MINOR 3u

/* The struct_size of a struct as this header defines it: `pacheck_capability c = {
 * PACHECK_STRUCT_SIZE(pacheck_capability), ...}`. */
#define PACHECK_STRUCT_SIZE(T) ((uint32_t)sizeof(T))
/* Nonzero when the struct at `ptr` (of type T, written by the other side) reaches past `field`:
 * read a field of a later minor only when this holds, else use its documented default. */
#define PACHECK_HAS_FIELD(ptr, T, field) \
  ((ptr)->struct_size >= (uint32_t)(offsetof(T, field) + sizeof(((const T*)0)->field)))
/* A limit field that says "no limit" (max_gqa, max_q_len_x_gqa, max_context). */
#define PACHECK_NO_LIMIT 0

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

/* How the page map is handed over (minor 2; see "The problem" above). */
typedef enum pacheck_page_table {
  PACHECK_TABLE_PADDED = 0,
  PACHECK_TABLE_CSR = 1,
  PACHECK_TABLE_COUNT_ = 2
} pacheck_page_table;

/* The base of the LSE a kernel writes (capability lse_base, minor 2). */
#define PACHECK_LSE_NATURAL 0
#define PACHECK_LSE_BASE2 2

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

/* Capability flags (pacheck_capability.flags), in two kinds:
 *  - PACHECK_CAP_<feature> ENABLES: setting it admits more cases (a window, ALiBi, ...).
 *  - PACHECK_CAP_ONLY_<rule> RESTRICTS: setting it admits fewer cases (it narrows what the masks
 *    and lists above already admit). pacheck never draws a case a restriction excludes. */
#define PACHECK_CAP_STRIDED_PAGES (1u << 0)     /* page_stride > dense page size */
#define PACHECK_CAP_CUSTOM_SCALE (1u << 1)      /* softmax_scale other than 1/sqrt(D) */
#define PACHECK_CAP_SLIDING_WINDOW (1u << 2)
#define PACHECK_CAP_LOGIT_SOFTCAP (1u << 3)
#define PACHECK_CAP_ALIBI (1u << 4)
#define PACHECK_CAP_SINKS (1u << 5)
#define PACHECK_CAP_LSE (1u << 6)               /* writes the LSE output */
#define PACHECK_CAP_RAGGED (1u << 10)           /* minor 2: q_len per sequence (cu_seqlens_q),
                                                 * each up to max_q_len */
#define PACHECK_CAP_EMPTY_ROWS (1u << 11)       /* minor 2: sequences of context 0 */
/* Promises about the call around the launch (minor 3); pacheck tests each one it is given. */
#define PACHECK_CAP_GRAPH_SAFE (1u << 12)       /* device kernels: the launch may be captured in a
                                                 * CUDA/HIP graph at one batch and replayed on new
                                                 * inputs in the same buffers, with every sequence
                                                 * at most as long as captured (an emptied slot
                                                 * included): it reads the batch from the buffers,
                                                 * never from host values of the capture */
#define PACHECK_CAP_DETERMINISTIC (1u << 13)    /* the same inputs give the same bits, launch after
                                                 * launch and graph replay against eager launch */
#define PACHECK_CAP_PLAN_COVERS_SHORTER (1u << 14) /* a plan serves any batch of the planned
                                                 * sequences (same count, q_lens, dtypes and
                                                 * options) whose contexts are each at most the
                                                 * planned one (0 included): the padded batch of a
                                                 * graph. Without it a plan serves only the batch it
                                                 * was made for (any values). */
#define PACHECK_CAP_PROMISE_FLAGS (PACHECK_CAP_GRAPH_SAFE | PACHECK_CAP_DETERMINISTIC | \
    PACHECK_CAP_PLAN_COVERS_SHORTER)
/* Restrictions. */
#define PACHECK_CAP_ONLY_PAGE_PARTITIONS (1u << 7)   /* split-K: partition_size a multiple of B */
#define PACHECK_CAP_ONLY_TOKEN_SCALES_ON_8BIT (1u << 8) /* 8-bit KV only with per-token scales */
#define PACHECK_CAP_ONLY_SCALES_ON_8BIT (1u << 9)    /* minor 1: 16-bit caches are read without
                                                      * scales (vLLM's kv_cache_dtype "auto"):
                                                      * 16-bit cases carry scale mode NONE only */
/* The 1.0 names of the first two restrictions, kept as aliases. */
#define PACHECK_CAP_PARTITION_OF_PAGES PACHECK_CAP_ONLY_PAGE_PARTITIONS
#define PACHECK_CAP_TOKEN_SCALES_FOR_8BIT PACHECK_CAP_ONLY_TOKEN_SCALES_ON_8BIT
#define PACHECK_CAP_ENABLING_FLAGS (PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_CUSTOM_SCALE | \
    PACHECK_CAP_SLIDING_WINDOW | PACHECK_CAP_LOGIT_SOFTCAP | PACHECK_CAP_ALIBI | PACHECK_CAP_SINKS | PACHECK_CAP_LSE | \
    PACHECK_CAP_RAGGED | PACHECK_CAP_EMPTY_ROWS)
#define PACHECK_CAP_RESTRICTING_FLAGS (PACHECK_CAP_ONLY_PAGE_PARTITIONS | \
    PACHECK_CAP_ONLY_TOKEN_SCALES_ON_8BIT | PACHECK_CAP_ONLY_SCALES_ON_8BIT)

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
  int32_t max_gqa;          /* largest G = Hq / Hkv; PACHECK_NO_LIMIT (0) = any (minor 1; 1.0
                             * refused 0) */
  const int32_t* gqa_tiles; /* optional: G runs padded up to the smallest tile >= G */
  uint32_t num_gqa_tiles;
  int32_t max_q_len;        /* largest q_len (1 = plain decode only) */
  int32_t max_q_len_x_gqa;  /* 0 = no limit; else q_len * G must not exceed it */
  int32_t max_context;      /* 0 = no limit */
  uint32_t flags;           /* PACHECK_CAP_* */
  /* ---- minor 1 ---- */
  int32_t fixed_partition;  /* > 0: a two-stage (split-K) kernel that splits the context at this
                             * many tokens whatever problem.partition_size says (vLLM v2: 512), so
                             * pacheck aims context lengths at its multiples. 0 = none (a one-pass
                             * kernel, or one that follows partition_size). */
  int32_t page_stride_align;/* problem.page_stride must be a multiple of this, in ELEMENTS of the
                             * cache (the unit of page_stride): a kernel loading 16-byte vectors
                             * from an 8-bit cache declares 16 (8 would do for 16-bit only).
                             * 0 or 1 = any stride. */
  /* ---- minor 2 (0 = as before) ---- */
  uint32_t page_tables;     /* mask of pacheck_page_table the kernel reads; 0 = PADDED only */
  const int32_t* head_sizes_v; /* V (and output) head sizes Dv the kernel takes besides Dv == D,
                             * with any D of head_sizes; NULL = Dv == D only */
  uint32_t num_head_sizes_v;
  int32_t lse_base;         /* PACHECK_LSE_NATURAL (0) or PACHECK_LSE_BASE2: the verdict judges
                             * the LSE in this base */
} pacheck_capability;

/* What the kernel rounds, and to what: the tolerance model derives the tolerance from this, so a
 * kernel declaring looser numerics gets a wider elementwise bound (never a blind aggregate check).
 * The output is always rounded to the q dtype. A rounding field holds
 *   PACHECK_ROUND_NONE (kept in fp32), PACHECK_ROUND_AS_Q (the case's q dtype), or
 *   PACHECK_ROUND_TO(dtype) (that dtype); the 1.0 fields also take a bare pacheck_dtype id.
 * The fields of minor 1 read 0 as PACHECK_ROUND_NONE (so a zero-initialized struct declares
 * nothing), which is why they name a dtype only through PACHECK_ROUND_TO: a bare id 0 would be
 * BF16. Numerics may differ by KV dtype: see pacheck_kernel.numerics_by_kv. */
#define PACHECK_ROUND_NONE 100
#define PACHECK_ROUND_AS_Q 101
#define PACHECK_ROUND_TO(dtype) (200 + (int32_t)(dtype))
typedef struct pacheck_numerics {
  uint32_t struct_size;
  int32_t p_round;        /* softmax weights P before P.V (e.g. a 16-bit matrix core) */
  int32_t qk_round;       /* Q (or K) before Q.K (e.g. fp8 Q on fp8 paths; K rounded to the q
                           * dtype after fp8 dequantization) */
  int32_t partial_round;  /* split-K partial outputs as stored between stages */
  /* ---- minor 1 (0 = PACHECK_ROUND_NONE) ---- */
  int32_t v_round;        /* V after dequantization (code * scale), before P.V (vLLM rounds it to
                           * the q dtype on fp8 caches) */
  int32_t pv_round;       /* the P.V products and their partial sums, up to 16 terms each (a dot
                           * product of a V vector in fp16, vLLM's V_VEC_SIZE), while the running
                           * sum over the context stays fp32. (A whole-context 16-bit sum has no
                           * useful bound at long contexts, so it is not declarable.) */
  uint32_t kv_dtypes;     /* in numerics_by_kv: the mask of KV dtypes (PACHECK_BIT(dtype)) this
                           * entry governs; ignored on pacheck_kernel.numerics. */
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
  /* ---- minor 2 (pacheck always fills these; a kernel of an earlier minor never sees a case
   * that needs them) ---- */
  int32_t head_size_v;         /* Dv (== head_size unless the kernel declared head_sizes_v) */
  int32_t total_q;             /* T = cu_seqlens_q[S], the rows of q, out and lse */
  int32_t max_q_len;           /* the largest q_len_s */
  int32_t page_table;          /* pacheck_page_table: block_tables or the CSR arrays is given */
  int32_t num_kv_indices;      /* kv_indptr[S] for CSR, else 0 */
  int64_t page_stride_v;       /* elements between consecutive V pages (page_stride when Dv == D;
                                * page_stride is then K's) */
} pacheck_problem;

typedef struct pacheck_buffers {
  uint32_t struct_size;
  const void* q;               /* [T, Hq, D] codes of q_dtype ([S, q_len, Hq, D] when uniform) */
  void* out;                   /* [T, Hq, Dv] codes of q_dtype */
  float* lse;                  /* [T, Hq] in the declared base, sinks included; NULL unless want_lse */
  const void* k_cache;         /* layout above, codes of kv_dtype */
  const void* v_cache;
  const float* k_scales;       /* scale layout above */
  const float* v_scales;
  const int32_t* block_tables; /* [S, max_blocks_per_seq]; NULL when the page table is CSR */
  const int32_t* context_lens; /* [S] */
  const float* alibi_slopes;   /* [Hq] or NULL */
  const float* sinks;          /* [Hq] or NULL */
  void* workspace;             /* workspace_bytes(problem) bytes, or NULL when 0 */
  uint64_t workspace_bytes;
  /* ---- minor 1 ---- */
  int32_t device_id;           /* device kernels: the device (hipSetDevice/cudaSetDevice ordinal)
                                * whose memory the pointers live in and on which `stream` was
                                * created; it is current on the calling thread. Host kernels: -1.
                                * Absent (a 1.0 pacheck): read it only if PACHECK_HAS_FIELD. */
  /* ---- minor 2 ---- */
  const int32_t* cu_seqlens_q;   /* [S + 1] query row offsets (always given) */
  const int32_t* kv_indptr;      /* [S + 1] CSR page table, or NULL when PADDED */
  const int32_t* kv_indices;     /* [num_kv_indices + garbage] */
  const int32_t* kv_last_page_len; /* [S] */
} pacheck_buffers;

/* The batch a plan is made for (minor 3), in HOST memory whatever the kernel's memory kind (an
 * engine plans on the host from the batch it is about to run): the planner reads it during the
 * call only. */
typedef struct pacheck_plan_batch {
  uint32_t struct_size;
  const int32_t* cu_seqlens_q;     /* [S + 1] */
  const int32_t* context_lens;     /* [S] */
  const int32_t* kv_indptr;        /* [S + 1], or NULL when the table is PADDED */
  const int32_t* kv_last_page_len; /* [S], or NULL when the table is PADDED */
} pacheck_plan_batch;

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
  /* Runs the kernel. Device kernels get device pointers and `stream`, a hipStream_t/cudaStream_t
   * that pacheck created on device buffers.device_id: never NULL, so a plug-in built with or
   * without per-thread default streams launches where pacheck waits. Launch on it and return;
   * the work may complete later (pacheck synchronizes the stream). Host kernels get host pointers
   * and a NULL stream. Returns a pacheck_status. */
  int (*launch)(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_buffers* b,
                void* stream);
  /* The reason for the last NOT_SUPPORTED or ERROR of this kernel on the calling thread. */
  const char* (*last_error)(const pacheck_kernel* self);
  /* ---- minor 1 (a 1.0 descriptor ends here: everything below takes its default) ---- */
  uint32_t abi_minor;          /* PACHECK_KERNEL_ABI_MINOR the kernel was built against */
  /* Numerics per KV dtype: the first entry whose kv_dtypes mask holds the case's KV dtype
   * governs it; a KV dtype no entry holds gets `numerics`. NULL/0 = `numerics` for all. */
  const pacheck_numerics* const* numerics_by_kv;
  uint32_t num_numerics_by_kv;
  /* Optional, NULL = none. `init` is called once per process that loads the library, before any
   * other call on this kernel (pacheck and each of its worker processes load it separately):
   * create a context or a workspace pool here. A non-OK status refuses the kernel at load with
   * last_error. `destroy` is called once at that process's normal exit, after init succeeded. A
   * family sharing state between descriptors counts its own references. */
  int (*init)(const pacheck_kernel* self);
  void (*destroy)(const pacheck_kernel* self);
  /* ---- minor 2 ---- */
  /* Optional, NULL = none. The name of the instance that served the last launch on the calling
   * thread, read right after `launch` returned OK: a kernel that dispatches inside (a heuristic
   * picking a 2-D or a 3-D variant) or falls back to another implementation names the one that
   * ran. NULL, "" or the descriptor's own name = this kernel ran. Any other name is a finding
   * (metric `instance`): the case was routed to this kernel, and a silent fallback once passed
   * real test suites. The report records it as the record's `ran`. */
  const char* (*instance)(const pacheck_kernel* self);
  /* ---- minor 3 ---- */
  /* Optional, all three or none: the plan step of a kernel that builds split or work metadata
   * ahead of its launch (FlashInfer plan/run, FlashMLA get_mla_metadata, aiter get_*_metadata).
   * `plan` builds an opaque plan for the problem (its dtypes and options included) and the batch;
   * device kernels may queue work on `stream` (as for launch). `launch_planned` runs the kernel with
   * a plan made earlier, possibly for another batch: it returns PACHECK_NOT_SUPPORTED (or
   * PACHECK_ERROR) with last_error when the plan does not serve this problem, and a plan that
   * serves the batch (the one it was made for, any values; with PLAN_COVERS_SHORTER also shorter
   * ones) must give correct results. pacheck owns every plan's life: it releases each with
   * `release_plan` exactly once, from the thread that made it. With a plan step, pacheck plans and
   * launches through launch_planned; `launch` stays what an earlier pacheck calls, and is judged
   * against launch_planned when the two disagree. */
  int (*plan)(const pacheck_kernel* self, const pacheck_problem* p, const pacheck_plan_batch* batch,
              void* stream, void** plan);
  int (*launch_planned)(const pacheck_kernel* self, const void* plan, const pacheck_problem* p,
                        const pacheck_buffers* b, void* stream);
  void (*release_plan)(const pacheck_kernel* self, void* plan);
};

/* The one symbol a plug-in exports. `host_abi_version` is pacheck's major version. Returns NULL
 * (and *count = 0) when the plug-in cannot serve it. Export only this symbol: hidden visibility
 * alone leaves template instantiations of the C++ standard library (std:: symbols) exported, and
 * two plug-ins loaded into one process could then interpose each other's. Link with a version
 * script (docs/plugins.md):  { global: pacheck_kernels; local: *; };  */
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
