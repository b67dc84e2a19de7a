// The call around the launch (ABI minor 3), as properties of one drawn case:
//   plan   a kernel with a plan step: the plan made for the case gives its answer, reused on other
//          values (another layer) and, where the declaration covers them, on shorter contexts and
//          emptied sequences (a padded graph batch); reused on a longer batch it is refused or
//          right; reused on other dtypes it is refused; a plan made at a padded batch (empty
//          slots appended) gives the real sequences' answer.
//   graph  a GRAPH_SAFE device kernel in this process: captured at a longer batch and replayed on
//          the case in the same buffers, it gives the case's answer (and with DETERMINISTIC the
//          eager launch's bits, twice) -- the testbed's own check (testbed/call_contract.hpp).
#include "core/capability.hpp"
#include "inputs/inputs.hpp"
#include "property/properties.hpp"
#include "testbed/call_contract.hpp"
#include "testbed/testbed.hpp"

namespace pa::prop {

namespace {

std::string tag(const Kernel& k) { return "kernel=" + k.name() + " metric=plan"; }

std::string ctx_text(const Case& c) {
  std::string s;
  for (size_t i = 0; i < c.context_lens.size(); ++i) s += (i ? "," : "") + std::to_string(c.context_lens[i]);
  return "[" + s + "]";
}

// A case judged through `plan`: nullopt when it gives the case's answer, else why not. A refusal
// is a finding only when `must_take`.
std::optional<std::string> through(const Kernel& k, const PlanPtr& plan, const Case& c, const Device& dev,
                                   bool must_take, bool* refused_out, const std::string& what) {
  const Inputs in = make_inputs(c);
  const PhysicalKv kv = pack(in);
  KernelCall call = make_call(in, kv);
  call.plan = plan;
  const KernelOutput out = k.run(call, dev);
  const bool refused = out.status == Status::NotSupported || (out.status == Status::Fail && out.metric == "kernel_error");
  if (refused_out) *refused_out = refused;
  if (refused) {
    if (must_take) return tag(k) + " (" + what + "): refused: " + out.reason;
    return std::nullopt;
  }
  if (out.status != Status::Ok) return tag(k) + " (" + what + "): " + to_string(out.status) + " " + out.metric + ": " + out.reason;
  const PathRecord r = judge(k, out, c, reference(in));
  if (r.status == Status::Ok) return std::nullopt;
  return tag(k) + " (" + what + "): gave " + r.metric + ": " + r.message;
}

PlanPtr plan_for(const Kernel& k, const Case& c, const Device& dev, std::string* why) {
  const BatchArrays b = batch_arrays(c);
  KernelCall call;
  call.problem = problem_of(c);
  call.batch = plan_batch(c, b);
  KernelOutput refused;
  PlanPtr p = k.plan(call, dev, &refused);
  if (!p) *why = refused.reason;
  return p;
}

// `c` changed by `f`, when still valid and taken by the kernel.
template <class F>
std::optional<Case> variant(const Kernel& k, const Case& c, const Device& dev, F&& f) {
  Case v = c;
  f(v);
  if (!validate(v).empty() || k.decline_reason(v, dev)) return std::nullopt;
  return v;
}

}  // namespace

PropertySpec plan_property(const PropertyContext& ctx) {
  PropertySpec p = inside_spec(ctx, "plan", [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Capability& cap = k.info().capability;
    const Device dev = ctx.device_for(c);
    std::string why;
    const PlanPtr plan = plan_for(k, c, dev, &why);
    if (!plan) return tag(k) + ": the plan step refused a case the declaration admits: " + why;
    if (auto e = through(k, plan, c, dev, true, nullptr, "planned for the case")) return e;
    Case other = c;
    other.seed = c.seed + 1;  // another layer: the same batch, other values
    if (auto e = through(k, plan, other, dev, true, nullptr, "reused on the same batch with other values")) return e;
    if (cap.plan_covers_shorter) {
      // Shorter contexts, and the last sequence emptied where the kernel takes empty ones.
      const auto shorter = variant(k, c, dev, [&](Case& v) {
        for (int32_t s = 0; s < v.num_seqs; ++s) {
          int32_t& n = v.context_lens[size_t(s)];
          if (n > 0) n = std::max(v.q_len_of(s), n - std::max(1, n / 3));
        }
        if (cap.empty_rows && v.num_seqs > 1) v.context_lens.back() = 0;
      });
      if (shorter && shorter->context_lens != c.context_lens)
        if (auto e = through(k, plan, *shorter, dev, true, nullptr,
                             "made for contexts " + ctx_text(c) + ", reused on the shorter " + ctx_text(*shorter) +
                                 " its declaration covers (PLAN_COVERS_SHORTER)"))
          return e;
    }
    // A longer batch is no batch the plan was made for: refused, or right.
    if (const auto longer = variant(k, c, dev, [](Case& v) { v.context_lens.front() += v.block_size; }))
      if (auto e = through(k, plan, *longer, dev, false, nullptr,
                           "made for contexts " + ctx_text(c) + ", reused on the longer " + ctx_text(*longer)))
        return e;
    // Other dtypes: refused (a plan is made for its dtypes).
    for (int t = 0; t < kDTypeCount; ++t) {
      const DType kvt = DType(t);
      if (kvt == c.kv_dtype || !(cap.kv_dtypes & bit(kvt))) continue;
      const auto retyped = variant(k, c, dev, [&](Case& v) { v.kv_dtype = kvt; });
      if (!retyped) continue;
      bool was_refused = false;
      const std::string what = std::string("made for kv ") + to_string(c.kv_dtype) + ", launched on kv " + to_string(kvt);
      if (auto e = through(k, plan, *retyped, dev, false, &was_refused, what)) return e;
      if (!was_refused) return tag(k) + " (" + what + "): not refused: a plan is made for its dtypes";
      break;
    }
    // A plan made at a padded batch: two empty slots appended.
    if (cap.empty_rows) {
      const auto padded = variant(k, c, dev, [](Case& v) {
        v.num_seqs += 2;
        v.context_lens.push_back(0);
        v.context_lens.push_back(0);
        if (v.ragged()) {
          v.q_lens.push_back(1);
          v.q_lens.push_back(1);
        }
      });
      if (padded) {
        const PlanPtr pp = plan_for(k, *padded, dev, &why);
        if (!pp) return tag(k) + ": the plan step refused the padded batch " + ctx_text(*padded) + ": " + why;
        if (auto e = through(k, pp, *padded, dev, true, nullptr, "planned at the padded batch " + ctx_text(*padded)))
          return e;
      }
    }
    return std::nullopt;
  });
  if (!ctx.kernel->info().capability.plan) p.not_applicable = ctx.kernel->name() + " has no plan step";
  return p;
}

PropertySpec graph_property(const PropertyContext& ctx) {
  PropertySpec p = inside_spec(ctx, "graph", [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    const PathRecord r = run_and_judge(k, c, make_call(in, kv), reference(in), ctx.device_for(c));
    if (r.status == Status::Ok) return std::nullopt;
    return "kernel=" + k.name() + " status=" + to_string(r.status) + (r.metric.empty() ? "" : " metric=" + r.metric) +
           ": " + r.message;
  });
  const Kernel& k = *ctx.kernel;
  std::string no_gpu;
  if (!k.info().capability.graph_safe) p.not_applicable = k.name() + " does not declare GRAPH_SAFE";
  else if (k.info().memory != Memory::device) p.not_applicable = k.name() + " is a host kernel (graphs are the GPU's)";
  else if (!dynamic_cast<const AbiKernel*>(&k))
    p.not_applicable = k.name() + " runs in a worker; a graph is captured in this process (--isolate never)";
  else if (!gpu_available(&no_gpu)) p.not_applicable = "no GPU: " + no_gpu;
  return p;
}

}  // namespace pa::prop
