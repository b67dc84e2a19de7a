// Sub-batches of a case's inputs: the same values and page ids, fewer (or reordered, or shortened)
// sequences. The ragged family's relations (property/ragged.cpp) compare a kernel's rows on a
// batch with its rows on such a sub-batch, so both must hold exactly the same numbers.
#include <stdexcept>

#include "inputs/inputs.hpp"

namespace pa {

namespace {
// The CSR form of `in`'s padded table rows (as make_inputs builds it), keeping in's garbage tail.
void rebuild_csr(Inputs& out, const std::vector<int32_t>& garbage) {
  const Case& c = out.c;
  out.kv_indptr.assign(size_t(c.num_seqs) + 1, 0);
  out.kv_last_page_len.assign(size_t(c.num_seqs), 0);
  out.kv_indices.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t ctx = out.context_lens[size_t(s)], nb = c.blocks_for(ctx);
    out.kv_indptr[size_t(s) + 1] = out.kv_indptr[size_t(s)] + nb;
    out.kv_last_page_len[size_t(s)] = nb == 0 ? 0 : ctx - (nb - 1) * c.block_size;
    for (int32_t b = 0; b < nb; ++b)
      out.kv_indices.push_back(out.block_tables[size_t(int64_t(s) * out.max_blocks_per_seq + b)]);
  }
  out.kv_indices.insert(out.kv_indices.end(), garbage.begin(), garbage.end());
}
}  // namespace

Inputs select_sequences(const Inputs& in, const std::vector<SequencePick>& picks) {
  const Case& c = in.c;
  if (picks.empty()) throw std::invalid_argument("select_sequences: no sequence picked");
  Inputs out;
  out.c = c;
  Case& oc = out.c;
  oc.name.clear();
  oc.num_seqs = int32_t(picks.size());
  oc.context_lens.clear();
  oc.q_lens.clear();
  oc.num_blocks = in.num_blocks;  // the same pool: page ids keep their meaning
  std::vector<int32_t> qls;
  for (const SequencePick& p : picks) {
    if (p.seq < 0 || p.seq >= c.num_seqs) throw std::invalid_argument("select_sequences: no sequence " + std::to_string(p.seq));
    const int32_t ctx = in.context_lens[size_t(p.seq)], ql = c.q_len_of(p.seq);
    const int32_t keep = p.context < 0 ? ctx : p.context;
    const int32_t first = p.q_first, count = p.q_count < 0 ? ql - first : p.q_count;
    // The kept query rows must sit at the same positions: the context ends where the last kept
    // row's own position + 1 ends it in `in`.
    if (keep > ctx || first < 0 || count < 1 || first + count > ql || (ctx > 0 && keep != ctx - ql + first + count))
      throw std::invalid_argument("select_sequences: sequence " + std::to_string(p.seq) + " cannot keep context " +
                                  std::to_string(keep) + " with query rows [" + std::to_string(first) + ", " +
                                  std::to_string(first + count) + ")");
    oc.context_lens.push_back(keep);
    qls.push_back(count);
  }
  oc.q_len = 0;
  for (int32_t q : qls) oc.q_len = std::max(oc.q_len, q);
  for (int32_t q : qls)
    if (q != oc.q_len) oc.q_lens = qls;
  out.context_lens = oc.context_lens;
  out.num_blocks = in.num_blocks;
  out.max_blocks_per_seq = oc.max_blocks_per_seq();
  out.alibi_slopes = in.alibi_slopes;
  out.sinks = in.sinks;
  const int64_t qrow = int64_t(c.num_q_heads) * c.head_size;
  out.cu_seqlens_q.assign(1, 0);
  std::vector<int64_t> base(1, 0);
  for (LogicalKv* kv : {&out.k, &out.v}) {
    const LogicalKv& src = kv == &out.k ? in.k : in.v;
    kv->dtype = src.dtype;
    kv->heads = src.heads;
    kv->head_size = src.head_size;
  }
  for (size_t j = 0; j < picks.size(); ++j) {
    const SequencePick& p = picks[j];
    const int32_t first = p.q_first, count = qls[j], keep = oc.context_lens[j];
    out.cu_seqlens_q.push_back(out.cu_seqlens_q.back() + count);
    const int64_t r0 = in.q_row(p.seq, first);
    out.q_codes.insert(out.q_codes.end(), in.q_codes.begin() + r0 * qrow, in.q_codes.begin() + (r0 + count) * qrow);
    out.q.insert(out.q.end(), in.q.begin() + r0 * qrow, in.q.begin() + (r0 + count) * qrow);
    for (LogicalKv* kv : {&out.k, &out.v}) {
      const LogicalKv& src = kv == &out.k ? in.k : in.v;
      const int64_t row = src.token_base[size_t(p.seq)] * src.heads, n = int64_t(keep) * src.heads;
      kv->codes.insert(kv->codes.end(), src.codes.begin() + row * src.head_size,
                       src.codes.begin() + (row + n) * src.head_size);
      kv->scales.insert(kv->scales.end(), src.scales.begin() + row, src.scales.begin() + row + n);
    }
    base.push_back(base.back() + keep);
    for (int32_t b = 0; b < out.max_blocks_per_seq; ++b)
      out.block_tables.push_back(b < in.max_blocks_per_seq
                                     ? in.block_tables[size_t(int64_t(p.seq) * in.max_blocks_per_seq + b)]
                                     : in.block_tables[size_t(int64_t(p.seq) * in.max_blocks_per_seq)]);
  }
  out.k.token_base = base;
  out.v.token_base = base;
  if (c.page_table == PageTable::csr) {
    const int32_t used = in.kv_indptr.empty() ? 0 : in.kv_indptr.back();
    rebuild_csr(out, std::vector<int32_t>(in.kv_indices.begin() + used, in.kv_indices.end()));
  }
  return out;
}

}  // namespace pa
