#pragma once
// Inputs of a Case, regenerated from its seed (docs/verdict.md: generated so that bugs are visible).
//
// Logical view (what the reference reads): stored codes + a scale per logical token, so the value
// the reference sees, decode(code) * scale, is exactly what the cache holds. Physical view (what a
// kernel reads): the same codes placed by the case's PageLayout into a pool whose free pages,
// unused slots and page padding are poisoned (NaN codes, NaN per-token scales), with pages placed
// at random, non-identity positions.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/case.hpp"
#include "core/layout.hpp"

namespace pa {

/// K or V over logical coordinates: [total_tokens, Hkv, D] codes and [total_tokens, Hkv] scales,
/// sequences concatenated (token t of sequence s is row token_base[s] + t).
struct LogicalKv {
  DType dtype = DType::bf16;
  int32_t heads = 0, head_size = 0;
  std::vector<int64_t> token_base;  // [S + 1]
  std::vector<uint16_t> codes;      // [T, Hkv, D]
  std::vector<float> scales;        // [T, Hkv]

  int64_t row(int32_t s, int32_t t) const { return token_base[size_t(s)] + t; }
  uint16_t code(int32_t s, int32_t t, int32_t h, int32_t d) const {
    return codes[size_t((row(s, t) * heads + h) * head_size + d)];
  }
  float scale(int32_t s, int32_t t, int32_t h) const { return scales[size_t(row(s, t) * heads + h)]; }
  /// The logical value: decode(code) * scale.
  double value(int32_t s, int32_t t, int32_t h, int32_t d) const {
    return double(codec::decode(dtype, code(s, t, h, d))) * double(scale(s, t, h));
  }
};

/// The batch arrays of a case: query row offsets cu_seqlens_q [S + 1] and, for the CSR table,
/// kv_indptr [S + 1] (each sequence's page count, summed) and kv_last_page_len [S] (empty for the
/// padded table). What make_inputs hands a kernel, and what a kernel's plan step reads.
struct BatchArrays {
  std::vector<int32_t> cu_seqlens_q, kv_indptr, kv_last_page_len;
};
BatchArrays batch_arrays(const Case& c);

struct Inputs {
  Case c;
  std::vector<uint16_t> q_codes;       // [T, Hq, D] in q_dtype (T = total_q: sequences packed)
  std::vector<float> q;                // decoded q_codes
  LogicalKv k, v;
  std::vector<float> alibi_slopes;     // [Hq] or empty
  std::vector<float> sinks;            // [Hq] or empty
  std::vector<int32_t> block_tables;   // [S, max_blocks_per_seq]; past-the-end entries are garbage
  std::vector<int32_t> context_lens;   // [S]
  std::vector<int32_t> cu_seqlens_q;   // [S + 1]: query token i of sequence s is row cu[s] + i
  // The same page map as block_tables in CSR form (PageTable::csr cases only, else empty):
  // kv_indptr [S + 1], kv_indices [kv_indptr[S] + a few garbage entries], kv_last_page_len [S].
  std::vector<int32_t> kv_indptr, kv_indices, kv_last_page_len;
  int32_t max_blocks_per_seq = 0;
  int64_t num_blocks = 0;

  /// The packed query row of token i of sequence s.
  int64_t q_row(int32_t s, int32_t i) const { return int64_t(cu_seqlens_q[size_t(s)]) + i; }
  float q_at(int32_t s, int32_t i, int32_t h, int32_t d) const {
    return q[size_t((q_row(s, i) * c.num_q_heads + h) * c.head_size + d)];
  }
  /// The block table read through PagedLayout (its one reader) with a page geometry `page`.
  PagedLayout paged(const PageLayout& page) const { return {page, block_tables.data(), max_blocks_per_seq}; }
  /// The physical page holding token t of sequence s.
  int32_t page_of(int32_t s, int32_t t) const {
    PageLayout geometry{};
    geometry.block = c.block_size;
    return paged(geometry).block_of(s, t);
  }
};

/// Regenerates every input of the case from its seed. Runs on input_threads() threads; every
/// element is drawn from its own position of its stream, so the bytes never depend on the count.
Inputs make_inputs(const ValidCase& c);
/// The same for a case not yet validated: InputError naming every problem of an invalid one.
Inputs make_inputs(const Case& c);

/// The cache as a kernel sees it.
struct PhysicalKv {
  PageLayout k_layout, v_layout;
  ScaleLayout scale_layout;
  std::vector<uint8_t> k_cache, v_cache;  // raw element bytes, cosize(num_blocks) elements each
  std::vector<float> k_scales, v_scales;  // scale_layout.size() each
};

PageLayout key_layout(const Case& c);
PageLayout value_layout(const Case& c);
ScaleLayout scale_layout(const Case& c);

/// Writes the logical codes and scales into the case's physical layout; every element not
/// written holds poison (codec::poison_code, NaN scales). Runs on input_threads() threads, one
/// page per thread at a time; the bytes never depend on the count.
/// @pre in's shapes match in.c (as make_inputs leaves them; tables may be edited)
/// @post every byte is what a sequential scatter of tokens in (s, t, h, d) order over a poisoned
/// pool leaves (later tokens win where two table entries share a page)
PhysicalKv pack(const Inputs& in);
/// Reads the physical cache back into logical form (the inverse of pack on valid tokens).
LogicalKv gather(const Inputs& in, const PhysicalKv& phys, KvTensor which);

/// One sequence of a sub-batch: sequence `seq` of the original, its query rows
/// [q_first, q_first + q_count) (q_count -1: to the end) with its context cut where the last kept
/// row sees it (context -1: whole; else it must equal ctx - q_len + q_first + q_count).
struct SequencePick {
  int32_t seq = 0;
  int32_t context = -1;
  int32_t q_first = 0;
  int32_t q_count = -1;
};
/// The inputs of the batch made of `picks` (in that order): every value and page id as in `in`
/// (the same pool, the picked sequences' table rows, the CSR form rebuilt from them), so a kernel's
/// rows on it must equal its rows on `in` for the same queries. The case keeps in's seed, but
/// make_inputs of it would draw other values: use these inputs, not the case's.
/// @throws std::invalid_argument for a pick that names no sequence or rows it lacks
Inputs select_sequences(const Inputs& in, const std::vector<SequencePick>& picks);

/// Raw element access in a byte buffer of 1- or 2-byte codes.
inline uint16_t load_code(const std::vector<uint8_t>& buf, int32_t elem_bytes, int64_t i) {
  return elem_bytes == 1 ? buf[size_t(i)]
                         : uint16_t(buf[size_t(2 * i)] | (uint16_t(buf[size_t(2 * i + 1)]) << 8));
}
inline void store_code(std::vector<uint8_t>& buf, int32_t elem_bytes, int64_t i, uint16_t code) {
  if (elem_bytes == 1) {
    buf[size_t(i)] = uint8_t(code);
  } else {
    buf[size_t(2 * i)] = uint8_t(code & 0xFF);
    buf[size_t(2 * i + 1)] = uint8_t(code >> 8);
  }
}

// ---- CPU threads --------------------------------------------------------------------------------
// The harness's own CPU work (make_inputs, pack, the fp64 reference) splits into independent items
// run on a few std::threads. Every output element is computed by exactly one item, in a fixed
// order, so results are bit-identical for any thread count; the count only changes speed.

// PA_CPU_CLONES before a hot-loop function also compiles it for AVX2 and AVX-512 hosts and picks
// a clone when the program loads (GCC function multiversioning), so the library stays baseline
// x86-64 yet uses the wide units where they exist. Vectorising a loop over independent elements
// changes no operation and no order of any element's arithmetic, and the project compiles with
// -ffp-contract=off (no FMA in any clone), so every clone gives the bits of the baseline one.
// Off under ThreadSanitizer: the clone resolver runs while the dynamic loader relocates, before
// the TSan runtime is up, and its instrumented code crashes there.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__CUDACC__) && \
    !defined(__HIP__) && !defined(__SANITIZE_THREAD__)
#define PA_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PA_CPU_CLONES
#endif

/// Threads used when none was set: env PACHECK_THREADS when it is a positive integer, else
/// std::thread::hardware_concurrency() (at least 1).
int default_threads();

/// Threads make_inputs and pack use. set_input_threads(n): n >= 1 fixes the count, 0 restores
/// default_threads(). Thread-safe; meant to be set once by a driver (or by a test).
void set_input_threads(int n);
/// @post >= 1
int input_threads();

/// Runs body(item, worker) once for every item in [0, n) on min(threads, n) threads (the caller is
/// worker 0; worker < that count, so per-worker scratch can be indexed by it). Items are handed
/// out dynamically: body must write only where its item alone writes. Returns when every item is
/// done; if items throw, rethrows the exception of the lowest such item (the others still run).
/// @pre threads >= 1, n >= 0
void parallel_for(int64_t n, int threads,
                  const std::function<void(int64_t item, int worker)>& body);

/// 64-bit FNV-1a over every generated input (codes, scales, tables, slopes, sinks): fixtures store
/// it so that generator drift is caught.
uint64_t input_hash(const Inputs& in);

}  // namespace pa
