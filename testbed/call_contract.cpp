#include "testbed/call_contract.hpp"

#include <cstring>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/capability.hpp"
#include "inputs/inputs.hpp"
#include "inputs/inputs_device.hpp"
#include "testbed/testbed.hpp"

namespace pa {

PlanBatch plan_batch(const Case& c, const BatchArrays& b) {
  return {b.cu_seqlens_q, c.context_lens, b.kv_indptr, b.kv_last_page_len};
}

Case capture_batch(const Case& c) {
  Case g = c;
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    int32_t& ctx = g.context_lens[size_t(s)];
    ctx = ctx == 0 ? std::max(c.block_size, c.q_len_of(s)) : ctx + c.block_size;
  }
  if (c.num_blocks) g.num_blocks = c.num_blocks + c.num_seqs;  // room for the longer sequences
  return g;
}

namespace {

// A case with what a plan does not depend on set to `like`'s.
Case batch_only(Case c, const Case& like) {
  c.name = like.name;
  c.seed = like.seed;
  c.values = like.values;
  c.num_blocks = like.num_blocks;
  c.table_pad = like.table_pad;
  return c;
}

std::string ctx_list(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return "[" + s + (v.size() > 8 ? ",..." : "") + "]";
}

std::string dtypes_of(const Case& c) {
  return std::string("q ") + to_string(c.q_dtype) + ", kv " + to_string(c.kv_dtype);
}

void fail(PathRecord& r, const char* metric, const std::string& message, const std::string& replay_flags = "") {
  r.status = Status::Fail;
  r.metric = metric;
  r.message = message;
  r.replay_flags = replay_flags;
}

// The record of a launch through `plan` judged on c: "" when it gives c's answer, else why not.
std::string judged_wrong(const Kernel& k, const KernelOutput& out, const Case& c, const ReferenceResult& ref) {
  const PathRecord j = judge(k, out, c, ref);
  if (j.status == Status::Ok) return "";
  return to_string(j.status) + std::string(j.metric.empty() ? "" : " metric " + j.metric) + ": " + j.message;
}

bool refused(const KernelOutput& out) {
  return out.status == Status::NotSupported || (out.status == Status::Fail && out.metric == "kernel_error");
}

// The plan each thread made last, per kernel, with the case it was made for: the next case of
// the same thread reuses it.
struct LastPlan {
  PlanPtr plan;
  Case planned;
};
std::map<std::pair<const Kernel*, std::string>, LastPlan>& last_plans() {
  thread_local std::map<std::pair<const Kernel*, std::string>, LastPlan> m;
  return m;
}

KernelCall planning_call(const Case& c, const BatchArrays& b) {
  KernelCall call;
  call.problem = problem_of(c);
  call.batch = plan_batch(c, b);
  return call;
}

// A plan made for a batch its declaration covers must give c's answer.
void check_covered_shorter(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref,
                           const Device& dev, PathRecord& r) {
  const Case g = capture_batch(c);
  if (!validate(g).empty() || k.decline_reason(g, dev)) return;  // no longer batch to plan for
  const BatchArrays gb = batch_arrays(g);
  KernelOutput why;
  PlanPtr plan = k.plan(planning_call(g, gb), dev, &why);
  const std::string made = "a plan made for contexts " + ctx_list(g.context_lens) + " (PLAN_COVERS_SHORTER: it serves "
                           "contexts " + ctx_list(c.context_lens) + ")";
  if (!plan) return fail(r, "plan", "the plan step refused the longer batch " + ctx_list(g.context_lens) + ": " + why.reason);
  KernelCall again = call;
  again.plan = plan;
  const KernelOutput out = k.run(again, dev);
  if (out.status != Status::Ok) return fail(r, "plan", made + " was not taken: " + out.reason);
  if (auto wrong = judged_wrong(k, out, c, ref); !wrong.empty()) return fail(r, "plan", made + " gave: " + wrong);
}

// The previous plan of this thread (or --plan-from's) reused on c.
void check_reuse(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref,
                 const std::optional<Case>& plan_from, const Device& dev, PathRecord& r) {
  LastPlan prev;
  auto& mine = last_plans()[{&k, k.name()}];
  if (plan_from) {
    KernelOutput why;
    const BatchArrays fb = batch_arrays(*plan_from);
    prev.plan = k.plan(planning_call(*plan_from, fb), dev, &why);
    prev.planned = *plan_from;
    if (!prev.plan) return;  // nothing to reuse
  } else {
    prev = mine;
    // This case's plan is the next case's previous one.
    KernelOutput why;
    const BatchArrays cb = batch_arrays(c);
    mine.plan = k.plan(planning_call(c, cb), dev, &why);
    mine.planned = c;
    if (!prev.plan) return;
  }
  const Case& p = prev.planned;
  const bool covered = plan_covers(p, c, k.info().capability.plan_covers_shorter);
  const bool same_dtypes = p.q_dtype == c.q_dtype && p.kv_dtype == c.kv_dtype;
  KernelCall again = call;
  again.plan = prev.plan;
  const KernelOutput out = k.run(again, dev);
  const std::string made = "a plan made for " + std::string(covered ? "a batch that covers this one" : "another batch") +
                           " (contexts " + ctx_list(p.context_lens) + ", " + dtypes_of(p) + ")";
  const std::string flags = " --plan-from '" + to_json(p).dump() + "'";
  if (refused(out)) {
    if (covered) fail(r, "plan", made + " was refused although the declaration covers this batch: " + out.reason, flags);
    return;
  }
  if (out.status != Status::Ok) return fail(r, "plan", made + " failed: " + to_string(out.status) + " " + out.metric + ": " + out.reason, flags);
  if (!same_dtypes)
    return fail(r, "plan", made + " ran this batch of " + dtypes_of(c) + " without refusing: a plan is made for its dtypes",
                flags);
  if (auto wrong = judged_wrong(k, out, c, ref); !wrong.empty()) fail(r, "plan", made + " ran this batch and gave: " + wrong, flags);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Captured at the longer batch, replayed on c in the same buffers.
void check_graph(const Kernel& k, const Case& c, const KernelCall& call, const KernelOutput& eager,
                 const ReferenceResult& ref, const RunOptions& o, PathRecord& r) {
  const Capability& cap = k.info().capability;
  if (c.kv_scale == ScaleMode::per_token_head_major) return;  // its scale layout moves with the pool size
  const Case g = capture_batch(c);
  if (!validate(g).empty() || k.decline_reason(g, o.device)) return;
  std::optional<Inputs> in;
  std::optional<PhysicalKv> kv;
  std::optional<DeviceInputs> din;
  KernelCall capture;
  if (o.inputs == Memory::device) {
    din = make_device_inputs(g);
    capture = make_call(*din);
  } else {
    in = make_inputs(g);
    kv = pack(*in);
    capture = make_call(*in, *kv);
  }
  if (cap.plan) {
    KernelOutput why;
    capture.plan = k.plan(capture, o.device, &why);
    if (!capture.plan) return fail(r, "plan", "the plan step refused the capture batch " + ctx_list(g.context_lens) + ": " + why.reason);
  }
  std::vector<float> twice;
  const KernelOutput out = k.run_graph(capture, call, o.device, cap.deterministic ? &twice : nullptr);
  if (out.status == Status::Skipped) return;
  const std::string at = "a graph captured at contexts " + ctx_list(g.context_lens) + " and replayed on contexts " +
                         ctx_list(c.context_lens);
  if (out.status != Status::Ok) return fail(r, "graph", at + ": " + to_string(out.status) + " " + out.metric + ": " + out.reason);
  if (auto wrong = judged_wrong(k, out, c, ref); !wrong.empty()) return fail(r, "graph", at + " gave: " + wrong);
  if (!cap.deterministic) return;
  if (!same_bits(out.out, eager.out) || !same_bits(out.lse, eager.lse))
    return fail(r, "graph", at + " differs in bits from the eager launch (the kernel declares DETERMINISTIC; the "
                "capture's sizes, max_context " + std::to_string(g.max_context()) + " against " +
                std::to_string(c.max_context()) + ", changed the output)");
  if (!same_bits(twice, out.out)) return fail(r, "graph", at + ": a second replay differs in bits from the first (DETERMINISTIC)");
}

}  // namespace

bool plan_covers(const Case& planned, const Case& c, bool covers_shorter) {
  Case b = batch_only(c, planned);
  if (covers_shorter && b.context_lens.size() == planned.context_lens.size()) {
    for (size_t s = 0; s < b.context_lens.size(); ++s)
      if (b.context_lens[s] > planned.context_lens[s]) return false;
    b.context_lens = planned.context_lens;
  }
  return to_json(b) == to_json(planned);
}

void check_call_contract(const Kernel& k, const Case& c, const KernelCall& call, const KernelOutput& eager,
                         const ReferenceResult& ref, const RunOptions& o, PathRecord& r) {
  const Capability& cap = k.info().capability;
  if (r.status != Status::Ok) return;
  // The graph first: a graph-safe kernel's plan for the longer batch is met there as an engine
  // meets it, so what a replay reads past is named a graph finding.
  if (cap.graph_safe && k.info().memory == Memory::device) check_graph(k, c, call, eager, ref, o, r);
  if (r.status == Status::Ok && cap.plan && cap.plan_covers_shorter) check_covered_shorter(k, c, call, ref, o.device, r);
  if (r.status == Status::Ok && cap.plan && (o.reuse_plans || o.plan_from)) check_reuse(k, c, call, ref, o.plan_from, o.device, r);
}

void blame_plan(const Kernel& k, const Case& c, const KernelCall& call, const ReferenceResult& ref, const Device& dev,
                PathRecord& r) {
  if (!k.info().capability.plan || r.status != Status::Fail || call.plan) return;
  const KernelOutput plain = k.run_unplanned(call, dev);
  if (plain.status != Status::Ok || judge(k, plain, c, ref).status != Status::Ok) return;
  fail(r, "plan", "launched through a plan made for this batch it fails (" + r.metric + ": " + r.message +
                      "); its plain launch passes: the plan step built wrong metadata for this batch (" + dtypes_of(c) + ")");
}

}  // namespace pa
