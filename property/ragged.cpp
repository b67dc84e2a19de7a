// The relations of the ragged family, for kernels that take ragged batches: a batch is
// a set of independent sequences, so splitting it into two launches, permuting its sequences or
// computing an extend row's queries one decode step at a time gives the same rows; and a zero
// query attends uniformly, so its output is the mean of the V rows it can see.
#include <algorithm>
#include <numeric>

#include "inputs/inputs.hpp"
#include "core/prng.hpp"
#include "property/properties.hpp"
#include "testbed/testbed.hpp"

namespace pa::prop {

namespace {

std::string tag(const Kernel& k) { return "kernel=" + k.name(); }

KernelOutput run(const Kernel& k, const Inputs& in, const Device& dev) {
  const PhysicalKv kv = pack(in);
  return k.run(make_call(in, kv), dev);
}

std::optional<std::string> ragged_only(const Capability& cap) {
  if (!cap.ragged) return std::string("the kernel declares no ragged batch (RAGGED): its batches are uniform");
  return std::nullopt;
}

// `part` holds the rows of `picks` (whole sequences) of `whole`'s output, in pick order: the
// kernel's rows on the sub-batch, laid where the whole batch has them, so the comparison runs on
// the whole case's shape and tolerance.
KernelOutput placed(const Inputs& in, const KernelOutput& whole, const std::vector<std::pair<std::vector<SequencePick>,
                    KernelOutput>>& parts) {
  KernelOutput out = whole;
  const int64_t row_out = int64_t(in.c.num_q_heads) * in.c.dv(), row_lse = in.c.num_q_heads;
  for (const auto& [picks, part] : parts) {
    int64_t at = 0;  // the part's packed row
    for (const SequencePick& p : picks) {
      const int64_t r0 = in.q_row(p.seq, 0), n = in.c.q_len_of(p.seq);
      std::copy(part.out.begin() + at * row_out, part.out.begin() + (at + n) * row_out, out.out.begin() + r0 * row_out);
      if (!part.lse.empty() && !out.lse.empty())
        std::copy(part.lse.begin() + at * row_lse, part.lse.begin() + (at + n) * row_lse, out.lse.begin() + r0 * row_lse);
      at += n;
    }
  }
  return out;
}

}  // namespace

// Split the batch at a point and permute each half: the two launches' rows are the whole launch's.
PropertySpec batch_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "batch";
  p.not_applicable = ragged_only(ctx.kernel->info().capability);
  p.cases = ctx.inside();
  p.holds = [ctx](const Case& c) -> std::optional<std::string> {
    RC_PRE(c.num_seqs >= 2);  // one sequence has nothing to split or permute (discarded)
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    const Inputs in = make_inputs(c);
    std::vector<int32_t> order(size_t(c.num_seqs));
    std::iota(order.begin(), order.end(), 0);
    Rng rng(c.seed ^ 0xba7c4ull, Stream::kPlacement);
    shuffle(order, rng);
    const size_t cut = size_t(rng.uniform_int(1, c.num_seqs - 1));
    std::vector<std::pair<std::vector<SequencePick>, KernelOutput>> parts;
    for (const auto& [lo, hi] : {std::pair<size_t, size_t>{0, cut}, {cut, order.size()}}) {
      std::vector<SequencePick> picks;
      for (size_t j = lo; j < hi; ++j) picks.push_back({order[j], -1, 0, -1});
      const Inputs sub = select_sequences(in, picks);
      // A half may fall outside what the kernel takes (all its rows empty): nothing to compare.
      if (!validate(sub.c).empty() || k.decline_reason(sub.c, dev)) return std::nullopt;
      parts.push_back({picks, run(k, sub, dev)});
    }
    const KernelOutput whole = run(k, in, dev);
    if (auto e = did_not_run(k, whole, parts[0].second)) return e;
    if (auto e = did_not_run(k, whole, parts[1].second)) return e;
    std::string how = "sequences in the order";
    for (int32_t s : order) how += " " + std::to_string(s);
    return agree(k, in, placed(in, whole, parts), whole, how + ", split before position " + std::to_string(cut));
  };
  return p;
}

// An extend row (q_len_s > 1) equals the decode rows of the same positions, one launch each.
PropertySpec extend_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "extend";
  p.not_applicable = ragged_only(ctx.kernel->info().capability);
  p.cases = ctx.inside();
  p.holds = [ctx](const Case& c) -> std::optional<std::string> {
    int32_t s = -1;
    for (int32_t i = 0; i < c.num_seqs; ++i)
      if (c.q_len_of(i) > 1 && c.context_lens[size_t(i)] > 0 && (s < 0 || c.q_len_of(i) > c.q_len_of(s))) s = i;
    RC_PRE(s >= 0);  // no multi-token sequence (discarded)
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    const Inputs in = make_inputs(c);
    const KernelOutput whole = run(k, in, dev);
    KernelOutput stepped = whole;
    const int32_t ql = c.q_len_of(s), ctx_s = c.context_lens[size_t(s)];
    const int64_t row_out = int64_t(c.num_q_heads) * c.dv(), row_lse = c.num_q_heads;
    // At most 8 steps (the first, the last and six between): an extend row of 300 tokens would
    // otherwise cost 300 launches.
    std::vector<int32_t> steps;
    for (int32_t i = 0; i < ql; i += std::max(1, ql / 8)) steps.push_back(i);
    if (steps.back() != ql - 1) steps.push_back(ql - 1);
    for (int32_t i : steps) {
      const Inputs one = select_sequences(in, {{s, ctx_s - ql + i + 1, i, 1}});
      if (!validate(one.c).empty() || k.decline_reason(one.c, dev)) continue;
      const KernelOutput got = run(k, one, dev);
      if (auto e = did_not_run(k, whole, got)) return e;
      const int64_t r = in.q_row(s, i);
      std::copy(got.out.begin(), got.out.begin() + row_out, stepped.out.begin() + r * row_out);
      if (!got.lse.empty() && !stepped.lse.empty())
        std::copy(got.lse.begin(), got.lse.begin() + row_lse, stepped.lse.begin() + r * row_lse);
    }
    return agree(k, in, stepped, whole,
                 "sequence " + std::to_string(s) + "'s " + std::to_string(ql) + " query tokens as decode steps");
  };
  return p;
}

// A zero query weighs every visible key alike (every logit 0; soft-cap keeps 0 at 0): its output
// is the mean of the V rows it sees, which the oracle computes as `uniform`.
PropertySpec zero_q_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "zero_q";
  const Capability& cap = ctx.kernel->info().capability;
  p.not_applicable = ragged_only(cap);
  p.cases = ctx.inside();
  p.holds = [ctx](const Case& drawn) -> std::optional<std::string> {
    // ALiBi tilts uniform weights and a sink shrinks them: off (an option off stays inside).
    Case c = drawn;
    c.alibi = c.sinks = false;
    const Kernel& k = *ctx.kernel;
    Inputs in = make_inputs(c);
    std::fill(in.q_codes.begin(), in.q_codes.end(), uint16_t(0));
    std::fill(in.q.begin(), in.q.end(), 0.f);
    const ReferenceResult ref = reference(in);
    for (size_t i = 0; i < ref.out.size(); ++i)  // the relation itself: uniform attention is the mean
      if (std::abs(ref.out[i] - ref.uniform[i]) > 1e-12 * (1 + std::abs(ref.uniform[i])))
        return tag(k) + " metric=harness: the oracle's zero-query output is not the mean of the visible V rows at " +
               coordinates(int64_t(i), output_shape(c));
    const KernelOutput out = run(k, in, ctx.device_for(c));
    // Uniform weights round alike: a kernel declaring P rounded (torch's math SDPA rounds the
    // normalised weights to the q dtype) makes one coherent error of it here, which the aggregate
    // checks' noise model (independent roundings) would call a bias. Such a kernel is held to the
    // elementwise bound only; every other kernel to the whole verdict.
    if (out.status == Status::Ok && k.error_model(c).u_p > 0) {
      if (out.out.size() != ref.out.size()) return tag(k) + " metric=shape (q = 0): output size differs";
      Tolerance tol = tolerance_for(k.error_model(c), ref.stats);
      tol.noise.enabled = false;
      const Verdict v = verdict(compare(out.out, ref.out, tol, ref.uniform), tol, output_shape(c));
      if (v.status == Status::Ok) return std::nullopt;
      return tag(k) + " metric=" + v.metric + " (q = 0: the mean of the visible V rows, elementwise): " + v.message;
    }
    return judged(k, c, out, ref, "q = 0: the mean of the visible V rows");
  };
  return p;
}

}  // namespace pa::prop
