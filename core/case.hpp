#pragma once
// One decode step = one Case (docs/problem.md). A Case is a plain value: it names the shape, dtypes,
// layout, scale mode, options and the seed from which every input is regenerated. It validates
// itself (naming each bad field), has a canonical identity string and round-trips through JSON.
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.hpp"
#include "core/layout.hpp"
#include "core/text.hpp"

namespace pa {

/// Thrown for bad user input (a malformed case file, an unknown name). The message names the
/// field and the value; tools turn it into exit code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// How the input values are drawn (docs/verdict.md, "inputs that make bugs visible").
///  normal:   Q, K and V are bounded normals; logits have a standard deviation of 2.
///  outliers: what real LLM activations look like: two channels of each KV head are 20-60x the
///            rest in Q and in K (logits reach hundreds without a soft-cap, so a kernel that does
///            not subtract the running max overflows), and a quarter of the K and V elements are
///            scaled by 2^-k, k in [0, 15], so 8-bit codes reach down into the subnormal range.
///  extremes: the fault shapes of 2026's decode kernels (design section 10): every fourth query row
///            is zero (uniform attention over the visible keys, a direct probe of masking and of
///            the denominator) and the row after each such row is scaled by 2^13, so its logits
///            spread over tens of thousands and most keys fall far below the running max (beyond
///            -5e4, a finite "-inf" sentinel in one library). K and V are drawn as for normal.
enum class Values : uint8_t { normal, outliers, extremes };
const char* to_string(Values v);
std::optional<Values> parse_values(std::string_view s);

struct Case {
  std::string name;                  // optional label (regression cases, suites)
  uint64_t seed = 1;                 // every input tensor is regenerated from it
  int32_t num_seqs = 1;              // S
  int32_t q_len = 1;                 // query tokens per sequence (MTP when > 1), causal; with
                                     // q_lens, their maximum
  std::vector<int32_t> q_lens;       // [S] per-sequence query tokens (a ragged batch); empty = q_len
                                     // for every sequence
  int32_t num_q_heads = 8;           // Hq
  int32_t num_kv_heads = 1;          // Hkv; query head h reads KV head h / G
  int32_t head_size = 128;           // D: the Q and K head size
  int32_t head_size_v = 0;           // Dv: the V and output head size; 0 = D
  int32_t block_size = 16;           // B, tokens per page
  std::vector<int32_t> context_lens = {64};  // [S], includes the q_len new tokens; 0 = an empty
                                             // slot (a padded batch), whose rows see no key
  int64_t num_blocks = 0;            // pool size; 0 = used pages + a quarter more free pages
  DType q_dtype = DType::bf16;       // also the output dtype
  DType kv_dtype = DType::bf16;
  KvLayout kv_layout = KvLayout::nhd;
  ScaleMode kv_scale = ScaleMode::none;
  double softmax_scale = 0;          // 0 = 1/sqrt(D)
  int32_t sliding_window = 0;        // 0 = off; else a query at p sees keys in (p - W, p]
  double logit_softcap = 0;          // 0 = off; else c * tanh(x / c)
  bool alibi = false;                // slopes[Hq], see alibi_slope()
  bool sinks = false;                // one extra logit per query head in the denominator only
  int32_t partition_size = 256;      // split-K partition for two-stage paths
  int64_t page_pad = 0;              // extra elements between pages (strided page views)
  Values values = Values::normal;    // how the input values are drawn
  PageTable page_table = PageTable::padded;  // how the logical page map is handed to the kernel
  TablePad table_pad = TablePad::garbage;    // what the table holds where no page is

  int32_t gqa() const { return num_kv_heads > 0 ? num_q_heads / num_kv_heads : 0; }
  /// Query tokens of sequence s (q_lens[s], or q_len when uniform).
  int32_t q_len_of(int32_t s) const { return q_lens.empty() ? q_len : q_lens[size_t(s)]; }
  /// First packed query row of sequence s (cu_seqlens_q[s]): query token i of s is row
  /// q_start(s) + i of Q [T, Hq, D], O [T, Hq, Dv] and LSE [T, Hq].
  int64_t q_start(int32_t s) const;
  /// T: query tokens of the whole batch (cu_seqlens_q[S]).
  int64_t total_q() const { return q_start(num_seqs); }
  /// A batch whose sequences have different q_lens.
  bool ragged() const { return !q_lens.empty(); }
  int32_t dv() const { return head_size_v > 0 ? head_size_v : head_size; }
  /// Some sequence has context 0 (its rows are empty: O = 0, LSE = -inf).
  bool has_empty_rows() const;
  double effective_softmax_scale() const;
  int32_t max_context() const;
  int32_t blocks_for(int32_t ctx) const { return (ctx + block_size - 1) / block_size; }
  int64_t used_blocks() const;
  /// Logical tokens of every sequence: the rows of K (and of V) per KV head.
  int64_t total_tokens() const;
  /// The pool size actually used (resolves num_blocks == 0).
  int64_t pool_blocks() const;
  /// Block-table row length: enough for the longest sequence plus one garbage column, so every
  /// sequence has table entries past its end that must never be read.
  int32_t max_blocks_per_seq() const { return blocks_for(max_context()) + 1; }
  /// Elements between consecutive pages of the K and of the V cache: the dense page of the
  /// cache's row length (cache_row: D and Dv, or the MLA caches' rows) plus page_pad.
  int64_t page_stride() const {
    return int64_t(num_kv_heads) * block_size * cache_row(kv_layout, KvTensor::key, head_size, dv()) + page_pad;
  }
  int64_t page_stride_v() const {
    return int64_t(num_kv_heads) * block_size * cache_row(kv_layout, KvTensor::value, head_size, dv()) + page_pad;
  }
};

/// Limits validate() enforces beyond the shape rules (docs/cli.md, "Input limits").
inline constexpr size_t kMaxCaseName = 4096;         // bytes of a case's name label
inline constexpr int32_t kMaxSeqs = 1 << 20;         // sequences in one case
inline constexpr int64_t kMaxPagePad = int64_t(1) << 24;  // elements between pages

/// Every problem with the case, one message per bad field naming the field and its value.
/// Empty means valid. These are the generic rules; a path's capabilities are stricter.
std::vector<std::string> validate(const Case& c);
/// Throws InputError listing every problem when the case is invalid.
void check_valid(const Case& c);

/// A case that passed validate(): made once at the edge (a file, a flag, a generator) and trusted
/// by every stage below it, so the testbed, the dispatcher and input generation never validate
/// the same case again. Converts to the Case it holds.
class ValidCase {
 public:
  /// The case when valid; else nullopt and, when `errs` is given, every problem with it.
  static std::optional<ValidCase> of(const Case& c, std::vector<std::string>* errs = nullptr);
  /// The case, or InputError listing every problem (check_valid's message).
  static ValidCase checked(const Case& c);
  const Case& get() const { return c_; }
  operator const Case&() const { return c_; }  // NOLINT: a ValidCase is a Case
  const Case* operator->() const { return &c_; }

 private:
  explicit ValidCase(Case c) : c_(std::move(c)) {}
  Case c_;
};

/// Sets per-sequence query counts in the case's one spelling: q_len their maximum, q_lens cleared
/// when they are all equal (a uniform batch). @pre qls.size() == c.num_seqs, every entry >= 1
void set_q_lens(Case& c, std::vector<int32_t> qls);

/// Canonical "key=value ..." identity string (fixed key order, defaults included): two cases are
/// the same problem iff their vars() are equal. The seed is part of it.
std::string vars(const Case& c);
/// A short identifier usable as a test name: [A-Za-z0-9_] only, encodes the configuration
/// CUTLASS-style and ends with a hash of vars() to stay unique.
std::string slug(const Case& c);
/// Prints name and vars() (test parameters and logs).
std::ostream& operator<<(std::ostream& os, const Case& c);

nlohmann::json to_json(const Case& c);
/// Parses a case; unknown keys and bad values throw InputError naming each of them.
Case case_from_json(const nlohmann::json& j);

/// One field of a Case: its JSON key (also replay's flag), its key in vars() (nullptr = not part
/// of the identity), and what it means. A field `optional` was added after cases were stored: at
/// its default it is left out of vars() and JSON, so every earlier case keeps its identity, slug
/// and bytes.
struct CaseField {
  const char* json;
  const char* key;
  const char* help;
  bool optional = false;
};

/// The largest q_len of one sequence (an extend row: a prefill chunk over an existing context).
inline constexpr int32_t kMaxQLen = 1024;

/// The Case's fields, described once, in vars() order: f(field, member) for each. to_json,
/// case_from_json, vars(), validate()'s messages and replay's case-field flags are all driven by
/// it, so adding a field touches this table, the struct and the code that uses the field.
template <class C, class F>
void for_each_field(C& c, F&& f) {
  f(CaseField{"name", nullptr, "optional label (regression cases, suites)"}, c.name);
  f(CaseField{"num_seqs", "S", "sequences in the batch"}, c.num_seqs);
  f(CaseField{"q_len", "q_len", "query tokens per sequence (MTP when > 1), causal"}, c.q_len);
  f(CaseField{"q_lens", "qls", "query tokens of each sequence, a ragged batch (1,5,300)", true}, c.q_lens);
  f(CaseField{"num_q_heads", "hq", "query heads Hq"}, c.num_q_heads);
  f(CaseField{"num_kv_heads", "hkv", "KV heads Hkv (divides Hq)"}, c.num_kv_heads);
  f(CaseField{"head_size", "d", "head size D (Q and K)"}, c.head_size);
  f(CaseField{"head_size_v", "dv", "V and output head size Dv (0 = D)", true}, c.head_size_v);
  f(CaseField{"block_size", "b", "tokens per page"}, c.block_size);
  f(CaseField{"context_lens", "ctx", "context length per sequence, new tokens included (64,65)"}, c.context_lens);
  f(CaseField{"num_blocks", "nb", "page pool size (0 = used pages + a quarter more)"}, c.num_blocks);
  f(CaseField{"q_dtype", "q", "query and output dtype: bf16|fp16"}, c.q_dtype);
  f(CaseField{"kv_dtype", "kv", "KV cache dtype: bf16|fp16|fp8_e4m3fn|fp8_e4m3fnuz|fp8_e5m2|int8"}, c.kv_dtype);
  f(CaseField{"kv_layout", "layout", "KV cache layout: nhd|hnd|vllm|shuffled|mla_joint|mla_split (MLA: a latent cache, V = K's first Dv)"}, c.kv_layout);
  f(CaseField{"kv_scale", "scale", "KV scale mode: none|per_tensor|per_head|per_token_block_major|per_token_head_major"}, c.kv_scale);
  f(CaseField{"softmax_scale", "sm", "softmax scale (0 = 1/sqrt(D))"}, c.softmax_scale);
  f(CaseField{"sliding_window", "win", "sliding window W (0 = off)"}, c.sliding_window);
  f(CaseField{"logit_softcap", "cap", "logit soft-cap c (0 = off)"}, c.logit_softcap);
  f(CaseField{"alibi", "alibi", "ALiBi slopes"}, c.alibi);
  f(CaseField{"sinks", "sinks", "one attention-sink logit per query head"}, c.sinks);
  f(CaseField{"partition_size", "part", "split-K partition of two-stage paths"}, c.partition_size);
  f(CaseField{"page_pad", "pad", "extra elements between pages (strided page views)"}, c.page_pad);
  f(CaseField{"values", "vals", "input values: normal|outliers (outlier channels, logits in the hundreds, fp8 subnormals)|extremes (zero and huge query rows)"},
    c.values);
  f(CaseField{"page_table", "table", "page table handed to the kernel: padded|csr", true}, c.page_table);
  f(CaseField{"table_pad", "pads", "table entries where no page is: garbage (free pages)|minus_one|zero", true},
    c.table_pad);
  f(CaseField{"seed", "seed", "the seed every input is regenerated from"}, c.seed);
}

/// ALiBi slope of query head h: 2^-(1 + floor(8 h / Hq)), an exact power of two so it is the same
/// on every compiler (the classic 2^(-8(h+1)/Hq) needs exp2, which is not correctly rounded).
double alibi_slope(int32_t h, int32_t num_q_heads);

}  // namespace pa
