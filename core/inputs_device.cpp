// upload_inputs: host-made inputs into DeviceInputs, through DeviceBuffer alone (no device code),
// so it is the same in every build; without a GPU toolchain DeviceBuffer says why it cannot.
#include "core/inputs_device.hpp"

namespace pa {

DeviceInputs upload_inputs(const Inputs& in) {
  DeviceInputs d;
  const PhysicalKv kv = pack(in);
  d.k_layout = kv.k_layout;
  d.v_layout = kv.v_layout;
  d.scale_layout = kv.scale_layout;
  d.k_codes = to_device(in.k.codes);
  d.k_scales = to_device(in.k.scales);
  d.v_codes = to_device(in.v.codes);
  d.v_scales = to_device(in.v.scales);
  d.k_cache = to_device(kv.k_cache);
  d.v_cache = to_device(kv.v_cache);
  d.k_cache_scales = to_device(kv.k_scales);
  d.v_cache_scales = to_device(kv.v_scales);
  d.q_codes = to_device(in.q_codes);
  d.q = to_device(in.q);
  d.block_tables = to_device(in.block_tables);
  d.context_lens = to_device(in.context_lens);
  d.token_base = to_device(in.k.token_base);
  d.alibi_slopes = to_device(in.alibi_slopes);
  d.sinks = to_device(in.sinks);
  d.host = in;
  d.host.k.codes.clear();
  d.host.k.scales.clear();
  d.host.v.codes.clear();
  d.host.v.scales.clear();
  return d;
}

}  // namespace pa
