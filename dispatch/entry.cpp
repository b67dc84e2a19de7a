#include "dispatch/entry.hpp"

namespace pa {

namespace {

std::string elems(int64_t n) { return std::to_string(n) + " elements"; }


// The cache handed to the chosen path carries the scale form the case was quantized with, taken
// from CommonScales; a missing or mis-sized form is the caller's bug and is named, not guessed.
PhysicalKv with_scales(const Case& c, const PhysicalKv& kv, const CommonScales& s) {
  PhysicalKv out = kv;
  const ScaleLayout& sl = kv.scale_layout;
  const int64_t token_size = sl.num_blocks * sl.heads * sl.block;
  const auto need_tokens = [&] {
    if (int64_t(s.k_token.size()) != token_size || int64_t(s.v_token.size()) != token_size)
      throw InputError(std::string("kv_scale=") + to_string(c.kv_scale) +
                       ": per-token scales [NB,Hkv,B] need " + elems(token_size) + ", got k " +
                       elems(int64_t(s.k_token.size())) + ", v " + elems(int64_t(s.v_token.size())));
  };
  switch (c.kv_scale) {
    case ScaleMode::none:
    case ScaleMode::per_head:  // v1's own form: the packed cache already holds it
      break;
    case ScaleMode::per_tensor:
      if (!s.k_scale || !s.v_scale)
        throw InputError("kv_scale=per_tensor: the per-tensor k/v scales were not given "
                         "(the per-token form is not substituted: the cache was written per tensor)");
      out.k_scales = {*s.k_scale};
      out.v_scales = {*s.v_scale};
      break;
    case ScaleMode::per_token_block_major:
      need_tokens();
      out.k_scales = s.k_token;
      out.v_scales = s.v_token;
      break;
    case ScaleMode::per_token_head_major:
      need_tokens();
      out.k_scales.assign(size_t(sl.size()), 0.f);
      out.v_scales.assign(size_t(sl.size()), 0.f);
      for (int64_t b = 0; b < sl.num_blocks; ++b)
        for (int32_t h = 0; h < sl.heads; ++h)
          for (int32_t t = 0; t < sl.block; ++t) {
            const size_t from = size_t((b * sl.heads + h) * sl.block + t);
            out.k_scales[size_t(sl(b, h, t))] = s.k_token[from];
            out.v_scales[size_t(sl(b, h, t))] = s.v_token[from];
          }
      break;
  }
  return out;
}

}  // namespace

CommonScales common_scales(const PhysicalKv& kv) {
  CommonScales s;
  const ScaleLayout& sl = kv.scale_layout;
  const int64_t n = sl.num_blocks * sl.heads * sl.block;
  s.k_token.resize(size_t(n));
  s.v_token.resize(size_t(n));
  for (int64_t b = 0; b < sl.num_blocks; ++b)
    for (int32_t h = 0; h < sl.heads; ++h)
      for (int32_t t = 0; t < sl.block; ++t) {
        const size_t to = size_t((b * sl.heads + h) * sl.block + t);
        s.k_token[to] = kv.k_scales[size_t(sl(b, h, t))];
        s.v_token[to] = kv.v_scales[size_t(sl(b, h, t))];
      }
  if (sl.mode == ScaleMode::none || sl.mode == ScaleMode::per_tensor) {
    s.k_scale = kv.k_scales.at(0);
    s.v_scale = kv.v_scales.at(0);
  }
  return s;
}

KernelOutput paged_attention_common(const Device& dev, const Inputs& in, const PhysicalKv& shuffled_kv,
                                    const CommonScales& scales, const std::vector<KernelPtr>& kernels,
                                    std::optional<std::string> forced, const int64_t* provided_ws_bytes,
                                    Decision* decision_out) {
  const Case& c = in.c;
  if (!forced) forced = forced_path_from_env(routable(kernels, aiter_routing()));
  Decision d = select_path(dev, c, kernels, forced);
  if (decision_out) *decision_out = d;
  KernelOutput refused;
  if (!d.path) {
    refused.status = Status::NotSupported;
    refused.reason = d.error();
    return refused;
  }
  // The kernels own their scratch; a caller-provided workspace (aiter's callers allocate it) must
  // still be large enough for the plan, or stage 1 would write past it on the GPU.
  if (provided_ws_bytes && *provided_ws_bytes < d.workspace_bytes)
    throw InputError("workspace too small for path " + *d.path + ": " + std::to_string(*provided_ws_bytes) +
                     " bytes, needs " + std::to_string(d.workspace_bytes) + " (S=" + std::to_string(c.num_seqs) +
                     ", q_len=" + std::to_string(c.q_len) + ", Hq=" + std::to_string(c.num_q_heads) +
                     ", D=" + std::to_string(c.head_size) + ", partition_size=" + std::to_string(c.partition_size) +
                     ", max_context=" + std::to_string(c.max_context()) + ")");
  const PhysicalKv kv = with_scales(c, shuffled_kv, scales);
  for (const KernelPtr& k : kernels)
    if (k->name() == *d.path) return k->run(make_call(in, kv), dev);
  refused.status = Status::NotSupported;
  refused.reason = "chosen kernel " + *d.path + " is not registered";
  return refused;
}

}  // namespace pa
