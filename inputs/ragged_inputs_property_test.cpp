// Properties of the ragged family's inputs over generated cases: the CSR page table is a
// codec of the same logical map as the padded table (its pages, its last-page lengths, pads that
// name only free pages), V of Dv elements packs and gathers back exactly, queries are packed by
// cu_seqlens_q, and a sub-batch (select_sequences) holds exactly the values of its sequences.
#include <algorithm>
#include <numeric>
#include <set>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "inputs/inputs.hpp"

namespace pa {
namespace {

// A small valid ragged case: q_lens, Dv, empty sequences and the table form all drawn.
rc::Gen<Case> gen_ragged_case() {
  return rc::gen::exec([] {
    Case c;
    c.kv_layout = *rc::gen::element(KvLayout::nhd, KvLayout::hnd, KvLayout::vllm);
    c.kv_dtype = *rc::gen::element(DType::bf16, DType::fp16, DType::fp8_e4m3fn);
    c.kv_scale = *rc::gen::element(ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_token_head_major);
    c.num_kv_heads = *rc::gen::inRange(1, 3);
    c.num_q_heads = c.num_kv_heads * *rc::gen::element(1, 2, 4);
    c.head_size = *rc::gen::element(16, 32, 64);
    c.head_size_v = *rc::gen::element(0, 16, 48);
    if (c.head_size_v == c.head_size) c.head_size_v = 0;
    c.block_size = *rc::gen::element(1, 4, 16);
    c.num_seqs = *rc::gen::inRange(1, 5);
    for (int32_t s = 0; s < c.num_seqs; ++s) c.q_lens.push_back(*rc::gen::element(1, 1, 3, 6, 20));
    c.q_len = *std::max_element(c.q_lens.begin(), c.q_lens.end());
    if (*std::min_element(c.q_lens.begin(), c.q_lens.end()) == c.q_len) c.q_lens.clear();
    c.context_lens.clear();
    for (int32_t s = 0; s < c.num_seqs; ++s)
      c.context_lens.push_back(*rc::gen::inRange(c.q_len_of(s), c.q_len_of(s) + 3 * c.block_size + 2));
    if (c.num_seqs > 1 && *rc::gen::arbitrary<bool>()) c.context_lens[size_t(*rc::gen::inRange(0, c.num_seqs))] = 0;
    c.page_table = *rc::gen::element(PageTable::padded, PageTable::csr);
    c.page_pad = *rc::gen::element<int64_t>(0, 0, 8);
    c.values = *rc::gen::element(Values::normal, Values::extremes);
    RC_PRE(validate(c).empty());
    return c;
  });
}

RC_GTEST_PROP(RaggedInputs, TheCsrTableEncodesThePaddedTablesMap, ()) {
  Case c = *gen_ragged_case();
  c.page_table = PageTable::csr;
  const Inputs in = make_inputs(c);
  const CsrTable csr{in.kv_indptr.data(), in.kv_indices.data(), in.kv_last_page_len.data(), c.block_size};
  RC_ASSERT(in.kv_indptr.size() == size_t(c.num_seqs) + 1);
  std::set<int32_t> valid;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    RC_ASSERT(csr.context(s) == c.context_lens[size_t(s)]);  // the last-page length is honoured
    RC_ASSERT(csr.pages(s) == c.blocks_for(c.context_lens[size_t(s)]));
    const int32_t last = in.kv_last_page_len[size_t(s)];
    const bool last_ok = csr.pages(s) == 0 ? last == 0 : (last >= 1 && last <= c.block_size);
    RC_ASSERT(last_ok);
    for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t) {
      RC_ASSERT(csr.block_of(s, t) == in.page_of(s, t));
      valid.insert(csr.block_of(s, t));
    }
  }
  // Entries past kv_indptr[S] exist and name no page any sequence reads (pads are never valid).
  RC_ASSERT(int64_t(in.kv_indices.size()) > int64_t(in.kv_indptr.back()));
  if (in.num_blocks > int64_t(valid.size()))
    for (size_t i = size_t(in.kv_indptr.back()); i < in.kv_indices.size(); ++i) RC_ASSERT(!valid.count(in.kv_indices[i]));
  // The padded form of the same case has no CSR arrays and the same table.
  Case padded = c;
  padded.page_table = PageTable::padded;
  const Inputs p = make_inputs(padded);
  RC_ASSERT(p.kv_indptr.empty() && p.kv_indices.empty());
  RC_ASSERT(p.block_tables == in.block_tables);
  RC_ASSERT(p.q_codes == in.q_codes);
}

RC_GTEST_PROP(RaggedInputs, QueriesArePackedAndVOfDvGathersBack, ()) {
  const Case c = *gen_ragged_case();
  const Inputs in = make_inputs(c);
  RC_ASSERT(in.cu_seqlens_q.size() == size_t(c.num_seqs) + 1);
  for (int32_t s = 0; s < c.num_seqs; ++s) RC_ASSERT(in.cu_seqlens_q[size_t(s) + 1] - in.cu_seqlens_q[size_t(s)] == c.q_len_of(s));
  RC_ASSERT(int64_t(in.q_codes.size()) == c.total_q() * c.num_q_heads * c.head_size);
  RC_ASSERT(in.v.head_size == c.dv());
  const PhysicalKv phys = pack(in);
  const LogicalKv k = gather(in, phys, KvTensor::key), v = gather(in, phys, KvTensor::value);
  RC_ASSERT(k.codes == in.k.codes);
  RC_ASSERT(v.codes == in.v.codes);
  RC_ASSERT(v.scales == in.v.scales);
}

RC_GTEST_PROP(RaggedInputs, ASubBatchHoldsItsSequencesValues, ()) {
  const Case c = *gen_ragged_case();
  const Inputs in = make_inputs(c);
  // Every sequence, in a drawn order: the same numbers, moved with their sequences.
  std::vector<int32_t> order(size_t(c.num_seqs));
  std::iota(order.begin(), order.end(), 0);
  std::rotate(order.begin(), order.begin() + *rc::gen::inRange<int64_t>(0, int64_t(order.size())), order.end());
  if (*rc::gen::arbitrary<bool>()) std::reverse(order.begin(), order.end());
  std::vector<SequencePick> picks;
  for (int32_t s : order) picks.push_back({s, -1, 0, -1});
  RC_PRE(std::any_of(order.begin(), order.end(), [&](int32_t s) { return c.context_lens[size_t(s)] > 0; }));
  const Inputs sub = select_sequences(in, picks);
  RC_ASSERT(validate(sub.c).empty());
  for (size_t j = 0; j < order.size(); ++j) {
    const int32_t s = order[j];
    RC_ASSERT(sub.c.q_len_of(int32_t(j)) == c.q_len_of(s));
    for (int32_t i = 0; i < c.q_len_of(s); ++i)
      for (int32_t d = 0; d < c.head_size; ++d) RC_ASSERT(sub.q_at(int32_t(j), i, 0, d) == in.q_at(s, i, 0, d));
    for (int32_t t = 0; t < c.context_lens[size_t(s)]; ++t) {
      RC_ASSERT(sub.page_of(int32_t(j), t) == in.page_of(s, t));
      RC_ASSERT(sub.v.code(int32_t(j), t, 0, c.dv() - 1) == in.v.code(s, t, 0, c.dv() - 1));
    }
  }
  // In the original order it is the original batch.
  std::vector<SequencePick> same;
  for (int32_t s = 0; s < c.num_seqs; ++s) same.push_back({s, -1, 0, -1});
  const Inputs again = select_sequences(in, same);
  RC_ASSERT(again.q_codes == in.q_codes);
  RC_ASSERT(again.k.codes == in.k.codes);
  RC_ASSERT(again.kv_indices == in.kv_indices);
  RC_ASSERT(input_hash(again) == input_hash(in));
}

}  // namespace
}  // namespace pa
