// Compiled only into the test-only mutant libraries (see mutants.hpp).
#include "core/mutants.hpp"

#include <atomic>

namespace pa {

namespace {
std::atomic<Mutant> g_active{Mutant::none};
}

Mutant active_mutant() { return g_active.load(std::memory_order_relaxed); }
void set_active_mutant(Mutant m) { g_active.store(m, std::memory_order_relaxed); }

const std::vector<MutantInfo>& mutant_catalogue() {
  static const std::vector<MutantInfo> kAll = {
      {Mutant::v_layout_index, "v_layout_index", "layout / stride"},
      {Mutant::dense_page_stride, "dense_page_stride", "layout / stride (hybrid models' strided pages)"},
      {Mutant::token_scale_logical_index, "token_scale_logical_index", "scale layout (per-token scale by logical token)"},
      {Mutant::per_token_scale_as_per_tensor, "per_token_scale_as_per_tensor", "scale (per-tensor vs per-token)"},
      {Mutant::per_tensor_scale_ignored, "per_tensor_scale_ignored", "scale (per-tensor scale vs 1.0)"},
      {Mutant::fp8_wrong_flavour, "fp8_wrong_flavour", "fp8 format (e4m3fnuz vs e4m3fn)"},
      {Mutant::head_size_routing, "head_size_routing", "head-size routing"},
      {Mutant::block_size_routing, "block_size_routing", "capability (block-size routing)"},
      {Mutant::drop_custom_scale, "drop_custom_scale", "silent drop (custom softmax scale)"},
      {Mutant::drop_softcap, "drop_softcap", "silent drop (logit soft-cap)"},
      {Mutant::drop_window, "drop_window", "silent drop (sliding window)"},
      {Mutant::drop_sinks, "drop_sinks", "silent drop (attention sinks)"},
      {Mutant::gqa_h_mod_hkv, "gqa_h_mod_hkv", "test blindness (GQA mapping h % Hkv)"},
      {Mutant::merge_without_rescale, "merge_without_rescale", "split-K merge without rescale"},
      {Mutant::unused_slot_read, "unused_slot_read", "unused slot read"},
      {Mutant::causal_mask_ignored, "causal_mask_ignored", "MTP causal mask"},
      {Mutant::padded_heads_written, "padded_heads_written", "GQA tile padding"},
  };
  return kAll;
}

const char* to_string(Mutant m) {
  if (m == Mutant::none) return "none";
  for (const auto& i : mutant_catalogue())
    if (i.id == m) return i.name;
  return "?";
}

}  // namespace pa
