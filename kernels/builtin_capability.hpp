#pragma once
// The declarations of pacheck's own kernels, in the plug-in vocabulary: the host twins and the GPU
// kernels of one path share one capability and one numerics, so a twin can never claim more
// than its kernel. These are the facts of the three modelled aiter/vLLM paths:
//   v1   vLLM/aiter paged_attention_v1: nhd and classic vllm layouts (fp8_e5m2 too), per-tensor or per-head
//        scales, everything optional (window, soft-cap, ALiBi, sinks, MTP, custom scale), head
//        sizes multiple of 16 up to 256, power-of-two pages. fp32 throughout: only the output rounds.
//   hip  aiter paged_attention_rocm: shuffled layout, two-stage split-K, per-tensor or per-token
//        scales, head 64/128/256, pages of 16/32, G <= 16, q_len <= 8. P goes to the MFMA in the
//        q dtype; partials stay fp32.
//   unified, unified_split  the ragged family (vLLM v1's / aiter's unified_attention, FlashInfer's
//        batch decode over CSR): one launch over a ragged batch (per-sequence q_len: decode, MTP
//        and extend rows), a padded or CSR page table, empty slots (context 0), Dv != D; nhd and
//        hnd layouts, 16-bit and e4m3 caches with per-tensor or per-head scales; natural LSE.
//        unified is one pass per row; unified_split splits the context at partition_size and
//        merges the rescaled partials in a second stage. fp32 throughout.
//   mla, mla_split  MLA decode over a latent cache (DeepSeek/Kimi: FlashMLA, aiter mla_decode_fwd,
//        FlashInfer's MLA wrapper): one latent KV head, K 576 = 512 latent + 64 rope, V the latent
//        512, joint or split caches, padded or CSR tables, pages of 1/16/64, bf16/fp16 or e4m3
//        KV with a per-tensor scale or none, q_len up to 16, ragged. mla is one pass per row over
//        any head count up to 128 (fp32 throughout); mla_split is the split-K kernel with a
//        separate merge over the native head counts 16, 32, 64 and 128 -- other counts are padded
//        up to the next (8, 12 -> 16; 20, 24 -> 32; 40 -> 64), the padded rows computed on zero
//        queries and discarded -- with P fed to the matrix core in the q dtype.
//   asm  aiter pa_fwd_asm: shuffled layout, head 128 and pages of 16 only, GQA tiles 8 and 16
//        (G padded up), q_len*G <= 16, 8-bit KV only with per-token [NB,Hkv,B] scales. P in the
//        q dtype.
#include "pacheck/kernel_abi.h"

namespace pa::builtin {

// The trailing zeros are the fields of ABI minors 1 and 2 at their defaults (no fixed partition,
// any page stride; V and P.V kept in fp32; the padded table, Dv == D, natural LSE): the classic
// built-ins declare exactly what they did under 1.0.

inline constexpr uint32_t kQDtypes = PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16);
inline constexpr uint32_t kAllKv = PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16) |
                                   PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ) |
                                   PACHECK_BIT(PACHECK_DTYPE_INT8);

inline constexpr int32_t kV1Heads[] = {16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256};
inline constexpr int32_t kV1Blocks[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
inline constexpr int32_t kHipHeads[] = {64, 128, 256};
inline constexpr int32_t kHipBlocks[] = {16, 32};
inline constexpr int32_t kAsmHeads[] = {128};
inline constexpr int32_t kAsmBlocks[] = {16};
inline constexpr int32_t kAsmTiles[] = {8, 16};

inline constexpr uint32_t kAllOptions = PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_SLIDING_WINDOW |
                                        PACHECK_CAP_LOGIT_SOFTCAP | PACHECK_CAP_ALIBI | PACHECK_CAP_SINKS;

// vLLM's fp8_e5m2 caches are read by the general path only.
inline const pacheck_capability kV1Capability = {
    sizeof(pacheck_capability), kQDtypes, kAllKv | PACHECK_BIT(PACHECK_DTYPE_FP8_E5M2),
    PACHECK_BIT(PACHECK_LAYOUT_NHD) | PACHECK_BIT(PACHECK_LAYOUT_VLLM),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR) | PACHECK_BIT(PACHECK_SCALE_PER_HEAD),
    kV1Heads, 16, kV1Blocks, 9, 1 << 30, nullptr, 0, 16, 0, 0,
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_LSE | kAllOptions, 0, 0,
    0, nullptr, 0, PACHECK_LSE_NATURAL};

inline const pacheck_capability kHipCapability = {
    sizeof(pacheck_capability), kQDtypes, kAllKv & ~PACHECK_BIT(PACHECK_DTYPE_INT8),
    PACHECK_BIT(PACHECK_LAYOUT_SHUFFLED),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR) |
        PACHECK_BIT(PACHECK_SCALE_PER_TOKEN_BLOCK_MAJOR) | PACHECK_BIT(PACHECK_SCALE_PER_TOKEN_HEAD_MAJOR),
    kHipHeads, 3, kHipBlocks, 2, 16, nullptr, 0, 8, 0, 0,
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_LSE | PACHECK_CAP_PARTITION_OF_PAGES | PACHECK_CAP_CUSTOM_SCALE, 0, 0,
    0, nullptr, 0, PACHECK_LSE_NATURAL};

inline const pacheck_capability kAsmCapability = {
    sizeof(pacheck_capability), kQDtypes, kAllKv,
    PACHECK_BIT(PACHECK_LAYOUT_SHUFFLED),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TOKEN_BLOCK_MAJOR),
    kAsmHeads, 1, kAsmBlocks, 1, 16, kAsmTiles, 2, 16, 16, 0,
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_LSE | PACHECK_CAP_TOKEN_SCALES_FOR_8BIT, 0, 0,
    0, nullptr, 0, PACHECK_LSE_NATURAL};

inline constexpr int32_t kUnifiedHeads[] = {64, 128, 192, 256};
inline constexpr int32_t kUnifiedHeadsV[] = {64, 128};
inline constexpr int32_t kUnifiedBlocks[] = {1, 16, 32, 64};

inline const pacheck_capability kUnifiedCapability = {
    sizeof(pacheck_capability), kQDtypes,
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) |
        PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ),
    PACHECK_BIT(PACHECK_LAYOUT_NHD) | PACHECK_BIT(PACHECK_LAYOUT_HND),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR) | PACHECK_BIT(PACHECK_SCALE_PER_HEAD),
    kUnifiedHeads, 4, kUnifiedBlocks, 4, 16, nullptr, 0, 256, 0, 0,
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_LSE | PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_SLIDING_WINDOW |
        PACHECK_CAP_LOGIT_SOFTCAP | PACHECK_CAP_SINKS | PACHECK_CAP_RAGGED | PACHECK_CAP_EMPTY_ROWS,
    0, 0,
    PACHECK_BIT(PACHECK_TABLE_PADDED) | PACHECK_BIT(PACHECK_TABLE_CSR), kUnifiedHeadsV, 2, PACHECK_LSE_NATURAL};
// The split-K variant splits at partition_size in whole pages, so pacheck draws one- and two-page
// partitions where a merge bug shrinks to the fewest pages.
inline const pacheck_capability kUnifiedSplitCapability = [] {
  pacheck_capability c = kUnifiedCapability;
  c.flags |= PACHECK_CAP_ONLY_PAGE_PARTITIONS;
  return c;
}();

inline constexpr int32_t kMlaHeads[] = {576};
inline constexpr int32_t kMlaHeadsV[] = {512};
inline constexpr int32_t kMlaBlocks[] = {1, 16, 64};
inline constexpr int32_t kMlaTiles[] = {16, 32, 64, 128};

inline const pacheck_capability kMlaCapability = {
    sizeof(pacheck_capability), kQDtypes,
    PACHECK_BIT(PACHECK_DTYPE_BF16) | PACHECK_BIT(PACHECK_DTYPE_FP16) | PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FN) |
        PACHECK_BIT(PACHECK_DTYPE_FP8_E4M3FNUZ),
    PACHECK_BIT(PACHECK_LAYOUT_MLA_JOINT) | PACHECK_BIT(PACHECK_LAYOUT_MLA_SPLIT),
    PACHECK_BIT(PACHECK_SCALE_NONE) | PACHECK_BIT(PACHECK_SCALE_PER_TENSOR),
    kMlaHeads, 1, kMlaBlocks, 3, 128, nullptr, 0, 16, 0, 0,
    PACHECK_CAP_STRIDED_PAGES | PACHECK_CAP_LSE | PACHECK_CAP_CUSTOM_SCALE | PACHECK_CAP_RAGGED | PACHECK_CAP_EMPTY_ROWS,
    0, 0,
    PACHECK_BIT(PACHECK_TABLE_PADDED) | PACHECK_BIT(PACHECK_TABLE_CSR), kMlaHeadsV, 1, PACHECK_LSE_NATURAL};
inline const pacheck_capability kMlaSplitCapability = [] {
  pacheck_capability c = kMlaCapability;
  c.gqa_tiles = kMlaTiles;
  c.num_gqa_tiles = 4;
  c.flags |= PACHECK_CAP_ONLY_PAGE_PARTITIONS;
  return c;
}();

inline const pacheck_numerics kV1Numerics = {sizeof(pacheck_numerics), PACHECK_ROUND_NONE, PACHECK_ROUND_NONE,
                                             PACHECK_ROUND_NONE, 0, 0, 0};
inline const pacheck_numerics kMfmaNumerics = {sizeof(pacheck_numerics), PACHECK_ROUND_AS_Q, PACHECK_ROUND_NONE,
                                               PACHECK_ROUND_NONE, 0, 0, 0};

}  // namespace pa::builtin
