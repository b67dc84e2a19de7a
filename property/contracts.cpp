// The properties of pacheck's flow around a kernel rather than of its numbers: the cache writer
// fills the layouts the kernel reads; outside its
// capability the kernel is refused cleanly (never launched, the refusal names the reason), and
// the dispatcher never routes a case to a kernel that declines it. A built-in host twin computes
// whatever it is handed, so "refused" is a property of the testbed and the dispatcher consulting
// the declaration, which is exactly what a plug-in relies on.
#include <algorithm>

#include <cmath>

#include "inputs/inputs.hpp"
#include "core/prng.hpp"
#include "kernels/cache_writer.hpp"
#include "dispatch/select.hpp"
#include "property/properties.hpp"
#include "testbed/testbed.hpp"

namespace pa::prop {

namespace {

std::string tag(const Kernel& k) { return "kernel=" + k.name(); }

/// Stands in for the kernel under check and records whether anything launched it; a launch is
/// answered with a failure instead of running the real kernel on a case it declines.
class LaunchSpy : public Kernel {
 public:
  explicit LaunchSpy(KernelPtr k) : Kernel(k->info()), k_(std::move(k)) {}
  std::optional<std::string> decline_reason(const Case& c, const Device& dev) const override {
    return k_->decline_reason(c, dev);
  }
  int64_t workspace_bytes(const Case& c) const override { return k_->workspace_bytes(c); }
  KernelOutput run(const KernelCall&, const Device&) const override {
    launched = true;
    KernelOutput o;
    o.status = Status::Fail;
    o.metric = "launched";
    o.reason = "launched on a declined case";
    return o;
  }
  mutable bool launched = false;

 private:
  KernelPtr k_;
};

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// reshape_and_cache (the host writer; the GPU writer has the same contract) writes the case's
// layout, then gather reproduces every written value within one quantisation step of the KV
// format, and skipped tokens' slots stay poisoned.
std::optional<std::string> writer_then_gather(const Case& c) {
  RC_PRE(c.kv_scale != ScaleMode::per_head);  // the writer does not produce per-head scales
  const Inputs in = make_inputs(c);
  const int64_t T = in.k.token_base.back();
  std::vector<bool> skip(static_cast<size_t>(T));
  Rng rng(c.seed, Stream::kGarbage);
  for (int64_t t = 0; t < T; ++t) skip[size_t(t)] = rng.uniform() < 0.2;
  PhysicalKv written;
  if (auto err = host_write_cache(in, skip, written); !err.empty()) return "metric=refused: the writer refused: " + err;
  // One rounding of x / scale in the format: relative u, plus half the smallest step (the
  // subnormal / integer spacing), times the scale.
  const DType t = c.kv_dtype;
  const double u = t == DType::int8 ? 0.0 : codec::unit_roundoff(t);
  const double step = t == DType::bf16 ? 0x1.0p-133 : t == DType::fp16 ? 0x1.0p-24
                      : t == DType::fp8_e4m3fn ? 0x1.0p-9 : t == DType::fp8_e4m3fnuz ? 0x1.0p-10
                      : t == DType::fp8_e5m2 ? 0x1.0p-16 : 1.0;
  const int32_t eb = dtype_bytes(t);
  const uint16_t poison = uint16_t(codec::poison_code(t));
  for (KvTensor which : {KvTensor::key, KvTensor::value}) {
    const LogicalKv got = gather(in, written, which);
    const LogicalKv& want = which == KvTensor::key ? in.k : in.v;
    const PageLayout& L = which == KvTensor::key ? written.k_layout : written.v_layout;
    const auto& cache = which == KvTensor::key ? written.k_cache : written.v_cache;
    const char* name = which == KvTensor::key ? "K" : "V";
    const int32_t D = want.head_size;  // V's is Dv
    for (int32_t s = 0; s < c.num_seqs; ++s)
      for (int32_t tk = 0; tk < in.context_lens[size_t(s)]; ++tk)
        for (int32_t h = 0; h < c.num_kv_heads; ++h) {
          const int32_t blk = in.page_of(s, tk), tok = tk % c.block_size;
          if (skip[size_t(want.row(s, tk))]) {
            for (int32_t d = 0; d < D; ++d)
              if (load_code(cache, eb, L(blk, h, tok, d)) != poison)
                return std::string("writer wrote ") + name + " of skipped token s=" + std::to_string(s) +
                       " t=" + std::to_string(tk) + " (slot < 0 must be skipped)";
            continue;
          }
          const double scale = got.scale(s, tk, h);
          for (int32_t d = 0; d < D; ++d) {
            const double x = double(float(want.value(s, tk, h, d))), y = got.value(s, tk, h, d);
            const double bound = u * std::fabs(x) + 0.5 * step * scale + 1e-6 * std::fabs(x);
            if (!(std::fabs(y - x) <= bound))
              return std::string("metric=quantization: ") + name + "[s=" + std::to_string(s) + " t=" +
                     std::to_string(tk) + " h=" + std::to_string(h) + " d=" + std::to_string(d) + "] wrote " +
                     std::to_string(y) + " for " + std::to_string(x) + " (bound " + std::to_string(bound) + ")";
          }
        }
  }
  return std::nullopt;
}

}  // namespace

PropertySpec refusal_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "refusal";
  p.cases = gen::declined_case(*ctx.kernel, ctx.route_devices(), ctx.limits);
  p.holds = [ctx](const Case& c) -> std::optional<std::string> {
    const KernelPtr& k = ctx.kernel;
    // A routing rule naming only this kernel, so the dispatcher can be forced to it even when
    // the real rule does not route to it (plug-ins).
    Routing only;
    only.busy_order = only.idle_order = {k->name()};
    only.busy_kv.clear();
    for (const Device& dev : ctx.route_devices()) {
      const auto why = k->decline_reason(c, dev);
      if (!why) continue;
      const std::string on = " on " + dev.name;
      if (why->empty()) return tag(*k) + " metric=refusal: declined without naming a reason" + on;
      LaunchSpy spy(k);
      const PathRecord r = run_and_judge(spy, c, KernelCall{}, ReferenceResult{}, dev);
      if (spy.launched)
        return tag(*k) + " metric=refusal: the testbed launched the kernel on a case it declines (" + *why + ")" + on;
      if (r.status != Status::NotSupported)
        return tag(*k) + " metric=refusal: the testbed gave status " + to_string(r.status) + " instead of not_supported" +
               on + ": " + r.message;
      if (!contains(r.message, *why))
        return tag(*k) + " metric=refusal: the testbed's refusal does not name the reason '" + *why + "'" + on + ": " +
               r.message;
      const Decision forced = select_path(dev, c, {k}, k->name(), only);
      if (forced.path)
        return tag(*k) + " metric=refusal: the dispatcher forced to the kernel chose " + *forced.path +
               " although it declines (" + *why + ")" + on;
      if (validate(c).empty() && !contains(forced.error(), *why))
        return tag(*k) + " metric=refusal: the forced dispatcher's refusal does not name the reason '" + *why + "'" +
               on + ": " + forced.error();
      const Decision routed = select_path(dev, c, ctx.all);
      if (routed.path && *routed.path == k->name())
        return tag(*k) + " metric=refusal: the dispatcher routed a case the kernel declines to it (" + *why + ")" + on;
    }
    return std::nullopt;
  };
  return p;
}

// The cache writer fills the layouts, dtypes and scale modes this kernel reads: what it writes
// gathers back to the inputs (within one quantisation step) and it never writes skipped slots.
PropertySpec writer_property(const PropertyContext& ctx) {
  PropertySpec p = inside_spec(ctx, "writer", [ctx](const Case& c) -> std::optional<std::string> {
    RC_PRE(!is_mla(c.kv_layout));  // the writer writes the classic caches (discarded)
    if (auto why = writer_then_gather(c)) return "writer=host_cache_writer for kernel=" + ctx.kernel->name() + " " + *why;
    return std::nullopt;
  });
  if (latent_only(ctx.kernel->info().capability))
    p.not_applicable = "the kernel reads latent (MLA) caches only, which reshape_and_cache does not write";
  return p;
}

PropertySpec dispatcher_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "dispatcher";
  const Routing routing = aiter_routing();
  const std::vector<KernelPtr> candidates = routable(ctx.all, routing);
  if (std::none_of(candidates.begin(), candidates.end(), [&](const KernelPtr& q) { return q == ctx.kernel; }))
    p.not_applicable = "the routing rule (" + join(routing.busy_order, ", ") + ") does not name " +
                       ctx.kernel->name() + ": the dispatcher never routes to it";
  // Half the draws anywhere (routing across every capability), half inside this kernel's, so the
  // cases the dispatcher does route to it are common enough to be judged.
  const rc::Gen<Case> any = gen::any_case(ctx.limits), inside = ctx.inside();
  p.cases = rc::gen::exec([any, inside]() {
    return *rc::gen::resize(100, rc::gen::inRange(0, 2)) == 0 ? *any : *inside;
  });
  p.holds = [ctx, candidates](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    std::optional<Inputs> in;
    std::optional<PhysicalKv> kv;
    std::optional<ReferenceResult> ref;
    // Every device model (host kernels): the CU count moves the routing threshold and the fp8
    // flavour the refusals.
    for (const Device& dev : ctx.route_devices()) {
      const Decision d = select_path(dev, c, ctx.all);
      const std::string on = " on " + dev.name;
      if (!d.path) {
        for (const KernelPtr& q : candidates)
          if (!q->decline_reason(c, dev))
            return "metric=routing: the dispatcher refused although " + q->name() + " supports the case" + on + ": " +
                   d.error();
        continue;
      }
      const auto chosen = std::find_if(candidates.begin(), candidates.end(),
                                       [&](const KernelPtr& q) { return q->name() == *d.path; });
      if (chosen == candidates.end())
        return "metric=routing: the dispatcher chose " + *d.path + on + ", which is not a routable kernel";
      if (auto why = (*chosen)->decline_reason(c, dev))
        return "metric=routing: the dispatcher chose " + *d.path + on + " which declines: " + *why;
      if (*d.path != k.name()) continue;
      if (!in) {
        in = make_inputs(c);
        kv = pack(*in);
        ref = reference(*in);
      }
      const PathRecord r = run_and_judge(k, c, make_call(*in, *kv), *ref, dev);
      if (r.status != Status::Ok)
        return tag(k) + " status=" + to_string(r.status) + (r.metric.empty() ? "" : " metric=" + r.metric) +
               " (routed by the dispatcher" + on + ": " + d.why + "): " + r.message;
    }
    return std::nullopt;
  };
  return p;
}

}  // namespace pa::prop
