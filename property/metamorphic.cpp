// The properties that run the kernel on cases inside its capability: the reference comparison
// and the metamorphic relations (two runs on transformed inputs that must agree). Relations are
// judged within the kernel's own tolerance (its declared numerics), so a kernel whose reduction
// order depends on where pages lie is not punished for rounding, only for real differences.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/capability.hpp"
#include "inputs/inputs.hpp"
#include "core/prng.hpp"
#include "property/properties.hpp"
#include "testbed/testbed.hpp"

namespace pa::prop {

namespace {

std::string tag(const Kernel& k) { return "kernel=" + k.name(); }

KernelOutput run(const Kernel& k, const Inputs& in, const PhysicalKv& kv, const Device& dev) {
  return k.run(make_call(in, kv), dev);
}

// Pools above this many elements per cache are not doubled into an MHA twin (memory on CI).
constexpr int64_t kMaxTwinPoolElements = int64_t(1) << 26;

}  // namespace

PropertySpec reference_property(const PropertyContext& ctx) {
  return inside_spec(ctx, "reference", [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    const PathRecord r = run_and_judge(k, c, make_call(in, kv), reference(in), ctx.device_for(c));
    if (r.status == Status::Ok) return std::nullopt;
    return tag(k) + " status=" + to_string(r.status) + (r.metric.empty() ? "" : " metric=" + r.metric) + ": " +
           r.message;
  });
}

// Moving pages to other physical ids (and the block table with them) changes nothing: a kernel
// that indexes anything per page by the logical page, or assumes pages in order, fails.
PropertySpec relocation_property(const PropertyContext& ctx) {
  return inside_spec(ctx, "relocation", [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    const Inputs in = make_inputs(c);
    Inputs moved = in;
    // One permutation of the whole pool applied to every table entry (the garbage columns
    // included): used pages stay distinct and free pages stay free.
    std::vector<int32_t> perm(size_t(in.num_blocks));
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = int32_t(i);
    Rng rng(c.seed ^ 0x5eedull, Stream::kPlacement);
    shuffle(perm, rng);
    // Pads that name no page (-1) stay as they are; the CSR form moves with the same map.
    for (auto& id : moved.block_tables) id = id < 0 ? id : perm[size_t(id)];
    for (auto& id : moved.kv_indices) id = id < 0 ? id : perm[size_t(id)];
    const KernelOutput a = run(k, in, pack(in), dev), b = run(k, moved, pack(moved), dev);
    if (auto e = did_not_run(k, a, b)) return e;
    return agree(k, in, b, a, "pages relocated");
  });
}

// K*s with k_scale/s is the same logical K. s is a power of two, so for 16-bit KV the codes stay
// exact and nothing may change bit for bit. For 8-bit KV (s = 1/2, codes re-encoded) halving a
// small code is not exact -- per-head and per-token scales spread codes over 1/32 of the range --
// so the output must match the oracle on the re-encoded K within the kernel's own tolerance: a
// kernel that ignores or misplaces k_scale sees the same codes halved and fails.
PropertySpec kv_scale_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "kv_scale";
  const Capability& cap = ctx.kernel->info().capability;
  if (!(cap.scales & ~bit(ScaleMode::none)))
    p.not_applicable = "the kernel declares no KV scale mode besides none: there is no scale to move a factor into";
  p.cases = ctx.inside();
  p.holds = [ctx](const Case& c) -> std::optional<std::string> {
    RC_PRE(c.kv_scale != ScaleMode::none);  // needs a scale to move the factor into (else discarded)
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    const Inputs in = make_inputs(c);
    Inputs scaled = in;
    const bool eight = is_8bit(c.kv_dtype);
    const double s = eight ? 0.5 : 2.0;
    for (size_t i = 0; i < scaled.k.codes.size(); ++i)
      scaled.k.codes[i] = uint16_t(codec::encode(c.kv_dtype, float(codec::decode(c.kv_dtype, in.k.codes[i]) * s)));
    for (auto& v : scaled.k.scales) v = float(v / s);
    if (is_mla(c.kv_layout)) {  // a latent cache is one tensor: V is K's prefix, under K's scale
      const int32_t D = c.head_size, Dv = c.dv();
      for (size_t r = 0; r < scaled.v.scales.size(); ++r)
        std::copy_n(scaled.k.codes.begin() + ptrdiff_t(r) * D, Dv, scaled.v.codes.begin() + ptrdiff_t(r) * Dv);
      scaled.v.scales = scaled.k.scales;
    }
    const KernelOutput a = run(k, in, pack(in), dev), b = run(k, scaled, pack(scaled), dev);
    if (auto e = did_not_run(k, a, b)) return e;
    if (!eight) {
      for (size_t i = 0; i < a.out.size() && i < b.out.size(); ++i)
        if (std::memcmp(&a.out[i], &b.out[i], sizeof(float)) != 0)
          return tag(k) + " metric=exact (K*2 with k_scale/2): element " + coordinates(int64_t(i), output_shape(c)) +
                 " changed " + std::to_string(a.out[i]) + " -> " + std::to_string(b.out[i]);
      if (a.out.size() != b.out.size()) return tag(k) + " metric=shape (K*2 with k_scale/2): output sizes differ";
      return std::nullopt;
    }
    return judged(k, c, b, reference(scaled), "K/2 with k_scale*2");
  };
  return p;
}

// The split-K partition size changes nothing beyond rounding: the same inputs, another whole-page
// partition.
PropertySpec split_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "split";
  if (!ctx.kernel->info().capability.partition_multiple_of_block)
    p.not_applicable = "the kernel declares no split-K partition (PARTITION_OF_PAGES): it ignores partition_size";
  p.cases = ctx.inside();
  p.holds = [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    Case oc = c;
    oc.partition_size = *gen::partition_size(c.block_size);
    RC_PRE(oc.partition_size != c.partition_size);
    RC_PRE(!k.decline_reason(oc, dev));  // the other split must be one the kernel takes too
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    Inputs other = in;
    other.c = oc;
    const KernelOutput a = run(k, in, kv, dev), b = run(k, other, kv, dev);
    if (auto e = did_not_run(k, a, b)) return e;
    return agree(k, in, b, a,
                 "partition " + std::to_string(oc.partition_size) + " vs " + std::to_string(c.partition_size));
  };
  return p;
}

// GQA equals MHA with every KV head repeated G times.
PropertySpec gqa_property(const PropertyContext& ctx) {
  PropertySpec p;
  p.name = "gqa";
  const Capability& cap = ctx.kernel->info().capability;
  if (cap.max_gqa < 2 || ctx.limits.max_q_heads < 2)
    p.not_applicable = "the kernel declares max_gqa=" + std::to_string(cap.max_gqa) + ": no GQA to compare with MHA";
  if (latent_only(cap))
    p.not_applicable = "the kernel reads latent (MLA) caches only: one KV head by definition, no MHA twin";
  p.cases = ctx.inside();
  p.holds = [ctx](const Case& c) -> std::optional<std::string> {
    RC_PRE(c.gqa() > 1);  // MHA cases have nothing to repeat (discarded)
    RC_PRE(!is_mla(c.kv_layout));  // a latent cache has one KV head (discarded)
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    Case mc = c;
    mc.num_kv_heads = c.num_q_heads;
    RC_PRE(!k.decline_reason(mc, dev));  // the MHA twin must be inside the capability too
    RC_PRE(mc.pool_blocks() * mc.page_stride() <= kMaxTwinPoolElements);
    const Inputs in = make_inputs(c);
    Inputs mi = in;
    mi.c = mc;
    const int32_t G = c.gqa(), Hq = c.num_q_heads;
    for (LogicalKv* kv : {&mi.k, &mi.v}) {
      const LogicalKv& src = kv == &mi.k ? in.k : in.v;
      const int32_t D = src.head_size;  // V's is Dv
      const int64_t T = src.token_base.back();
      kv->heads = Hq;
      kv->codes.assign(size_t(T * Hq * D), 0);
      kv->scales.assign(size_t(T * Hq), 0.f);
      for (int64_t t = 0; t < T; ++t)
        for (int32_t h = 0; h < Hq; ++h) {
          kv->scales[size_t(t * Hq + h)] = src.scales[size_t(t * src.heads + h / G)];
          for (int32_t d = 0; d < D; ++d)
            kv->codes[size_t((t * Hq + h) * D + d)] = src.codes[size_t((t * src.heads + h / G) * D + d)];
        }
    }
    const KernelOutput a = run(k, in, pack(in), dev), b = run(k, mi, pack(mi), dev);
    if (auto e = did_not_run(k, a, b)) return e;
    return agree(k, in, b, a, "MHA with repeated KV heads vs GQA=" + std::to_string(G));
  };
  return p;
}

// Launches leave no state behind: the kernel runs on the case, then on the same shapes with other
// values (in the same buffers: host launches reuse their thread's span, device launches the pool,
// as an engine reuses its own), then on the case again. Each run is judged against its own
// reference and the two runs on the same inputs must agree, so a kernel that caches results by
// pointer, computes only on its first call, or drifts from call to call fails.
PropertySpec repeat_property(const PropertyContext& ctx) {
  return inside_spec(ctx, "repeat", [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    Case other = c;
    other.seed = c.seed + 1;  // other values, the same shapes and sizes
    const Inputs a = make_inputs(c), b = make_inputs(other);
    const PhysicalKv ka = pack(a), kb = pack(b);
    const KernelOutput first = run(k, a, ka, dev), second = run(k, b, kb, dev), again = run(k, a, ka, dev);
    if (auto e = did_not_run(k, first, second)) return e;
    if (auto e = did_not_run(k, first, again)) return e;
    if (auto e = judged(k, c, first, reference(a), "repeat: the first launch")) return e;
    if (auto e = judged(k, other, second, reference(b), "repeat: other values (seed " + std::to_string(other.seed) +
                                                          ") in the same buffers"))
      return e;
    return agree(k, a, again, first, "repeat: the first launch's inputs again, after another launch");
  });
}

// Poison is never read: no NaN reaches the output (free pages, unused slots, page padding and
// unused per-token scales hold NaN), and replacing the poison by finite junk changes nothing
// (a kernel may read poison and lose it in a fmax; the junk then shows).
PropertySpec poison_property(const PropertyContext& ctx) {
  return inside_spec(ctx, "poison", [ctx](const Case& c) -> std::optional<std::string> {
    const Kernel& k = *ctx.kernel;
    const Device dev = ctx.device_for(c);
    const Inputs in = make_inputs(c);
    const PhysicalKv kv = pack(in);
    PhysicalKv junk = kv;
    const int32_t eb = dtype_bytes(c.kv_dtype);
    const uint16_t poison = uint16_t(codec::poison_code(c.kv_dtype));
    Rng rng(c.seed, Stream::kGarbage);
    for (auto* buf : {&junk.k_cache, &junk.v_cache}) {
      const int64_t n = int64_t(buf->size()) / eb;
      for (int64_t i = 0; i < n; ++i)
        if (load_code(*buf, eb, i) == poison)
          store_code(*buf, eb, i, uint16_t(codec::encode(c.kv_dtype, float(rng.uniform(-4, 4)))));
    }
    for (auto* s : {&junk.k_scales, &junk.v_scales})
      for (auto& v : *s)
        if (std::isnan(v)) v = float(rng.uniform(100, 1000));
    const KernelOutput a = run(k, in, kv, dev), b = run(k, in, junk, dev);
    if (auto e = did_not_run(k, a, b)) return e;
    for (size_t i = 0; i < a.out.size(); ++i)
      if (std::isnan(a.out[i]))
        return tag(k) + " metric=nan: NaN at " + coordinates(int64_t(i), output_shape(c)) +
               " (poison leaked into the output)";
    return agree(k, in, b, a, "finite junk in place of poison");
  });
}

}  // namespace pa::prop
