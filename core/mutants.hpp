#pragma once
// The planted-bug catalogue (issue 7): one mutant per incident class of design §1, each a small
// edit of the host twins (or of select_path) that reproduces how a real kernel or dispatcher went
// wrong. Mutation points are written `if (PA_MUTANT(name))` in the sources; they exist only in the
// test-only build compiled with PACHECK_MUTANTS (libraries pacheck_kernels_mutants and
// pacheck_dispatch_mutants). In every other build PA_MUTANT(...) is the constant false and the
// code is gone. regression/mutation_test.cpp runs the regression corpus against each mutant and
// requires every one to be caught, naming the path, the case and the metric.
#include <cstdint>
#include <ostream>

#include "core/layout.hpp"
#include <vector>

namespace pa {

enum class Mutant : uint8_t {
  none,
  v_layout_index,            // V read with another layout's index (shuffled read as vllm, ...)
  dense_page_stride,         // pages assumed dense: page_stride = H*B*D, ignoring strided views
  token_scale_logical_index, // per-token scale indexed with the logical page (t / B), not the physical one
  per_token_scale_as_per_tensor,  // per-token scales read as one per-tensor scale (scales[0])
  per_tensor_scale_ignored,  // per-tensor scale replaced by 1.0 (the writer/reader scale mismatch)
  fp8_wrong_flavour,         // e4m3fnuz bytes decoded as e4m3fn and vice versa
  head_size_routing,         // dispatcher sends head 256 to asm, whose kernel only does 128
  block_size_routing,        // dispatcher sends block 32 to asm, which only has block-16 kernels
  drop_custom_scale,         // 1/sqrt(D) instead of the case's softmax scale
  drop_softcap,              // logit soft-cap ignored
  drop_window,               // sliding window ignored
  drop_sinks,                // attention sinks ignored
  gqa_h_mod_hkv,             // query head h reads KV head h % Hkv instead of h / G
  merge_without_rescale,     // split-K stage 2 adds partitions without rescaling to a common max
  unused_slot_read,          // reads one key past the query's position (an unused, poisoned slot)
  causal_mask_ignored,       // MTP queries see the keys of later query tokens
  padded_heads_written,      // asm's padded GQA rows written over real heads (g % G)
};

struct MutantInfo {
  Mutant id;
  const char* name;
  const char* incident_class;  // the class of design §1 it plants
};

/// Every mutant (Mutant::none excluded).
const std::vector<MutantInfo>& mutant_catalogue();
const char* to_string(Mutant m);
inline std::ostream& operator<<(std::ostream& os, Mutant m) { return os << to_string(m); }
inline std::ostream& operator<<(std::ostream& os, const MutantInfo& m) { return os << m.name; }

/// The layout v_layout_index reads V with instead of the cache's own (the neighbouring family),
/// shared by the host-twin and GPU mutation points so both plant the same bug.
inline KvLayout mutant_v_layout(KvLayout actual) {
  return actual == KvLayout::shuffled ? KvLayout::vllm : actual == KvLayout::vllm ? KvLayout::nhd
         : actual == KvLayout::nhd   ? KvLayout::hnd   : KvLayout::nhd;
}

#ifdef PACHECK_MUTANTS
/// The mutant the mutant build currently plants (tests set it; Mutant::none = correct code).
Mutant active_mutant();
void set_active_mutant(Mutant m);
#define PA_MUTANT(name) (::pa::active_mutant() == ::pa::Mutant::name)
/// Plants a mutant for its scope (tests), restoring the correct code on exit.
struct PlantedMutant {
  explicit PlantedMutant(Mutant m) { set_active_mutant(m); }
  ~PlantedMutant() { set_active_mutant(Mutant::none); }
  PlantedMutant(const PlantedMutant&) = delete;
  PlantedMutant& operator=(const PlantedMutant&) = delete;
};
#else
#define PA_MUTANT(name) false
#endif

}  // namespace pa
