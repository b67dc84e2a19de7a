#pragma once
// Planted bugs from outside: a MutantKernel wraps any kernel (built-in or plug-in) and corrupts
// what it receives or returns the way a real kernel or dispatcher got the contract wrong. The
// wrapped kernel itself is never edited, so the same catalogue measures the corpus against
// pacheck's own paths on the host and on the GPU and against a user's plug-in.
//
// Each mutant is the input (or output) transformation under which a *correct* kernel computes
// exactly what the buggy kernel of one incident class computed: a kernel that reads V in the
// wrong layout family sees V' with V'[layout(x)] = V[wrong_layout(x)], and so on. The wrapper
// keeps the inner kernel's name, so the dispatcher and the corpus expectations still address it.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/capability.hpp"
#include "kernels/kernel.hpp"

namespace pa {

enum class ContractMutant : uint8_t {
  v_layout_index,                 // V read with another layout family's index
  dense_page_stride,              // pages assumed dense (page_stride = H*B*D) on a strided view
  token_scale_logical_index,      // per-token scale taken from the logical page t / B
  per_token_scale_as_per_tensor,  // every per-token scale read as scales[0]
  per_tensor_scale_ignored,       // per-tensor scale replaced by 1.0
  fp8_wrong_flavour,              // e4m3fnuz bytes decoded as e4m3fn and vice versa
  drop_custom_scale,              // 1/sqrt(D) instead of the case's softmax scale
  drop_softcap,                   // logit soft-cap ignored
  drop_window,                    // sliding window ignored
  drop_sinks,                     // attention sinks ignored
  gqa_h_mod_hkv,                  // query head h reads KV head h % Hkv instead of h / G
  unused_slot_read,               // one key past the query's position is read
  head_size_routing,              // the table claims a head size the kernel lacks
  block_size_routing,             // the table claims a block size the kernel lacks
  output_scaled_1_03,             // output 3 % too large
  output_truncated,               // output rounded toward zero instead of to nearest
  lse_plus_log2,                  // LSE off by log 2 (a sum over two copies of the keys)
};

struct ContractMutantInfo {
  ContractMutant id;
  const char* name;
  const char* incident_class;  // the incident class it plants, in one line
  /// True for the mutants only aggregate checks of the verdict (rms excess, bias, scale, LSE)
  /// can see: each element stays within the elementwise bound.
  bool aggregate;
  /// Whether the mutant can change anything a kernel of this declaration computes.
  bool applies(const Capability& cap) const;
};

/// Every contract mutant, in declaration order.
std::vector<ContractMutantInfo> contract_mutants();
const ContractMutantInfo& info(ContractMutant m);
const char* to_string(ContractMutant m);
std::optional<ContractMutant> parse_contract_mutant(std::string_view name);
inline std::ostream& operator<<(std::ostream& os, ContractMutant m) { return os << to_string(m); }
inline std::ostream& operator<<(std::ostream& os, const ContractMutantInfo& m) { return os << m.name; }
bool applies(ContractMutant m, const Capability& cap);

/// The layout family v_layout_index reads V with instead of the cache's own.
KvLayout wrong_v_layout(KvLayout actual);

/// A kernel with one planted contract bug. It declares what the inner kernel declares (the
/// routing mutants declare more), keeps its name and numerics, and runs the inner kernel on a
/// corrupted copy of the call (the caller's buffers are never written) or corrupts its output.
/// On a case the bug cannot touch (no sinks for drop_sinks, G = 1 for gqa_h_mod_hkv, ...) it
/// is the inner kernel.
class MutantKernel : public Kernel {
 public:
  MutantKernel(KernelPtr inner, ContractMutant m);
  ContractMutant mutant() const { return mutant_; }
  const KernelPtr& inner() const { return inner_; }

  std::optional<std::string> decline_reason(const Case& c, const Device& dev) const override;
  int64_t workspace_bytes(const Case& c) const override { return inner_->workspace_bytes(c); }
  KernelOutput run(const KernelCall& call, const Device& dev) const override;
  PlanPtr plan(const KernelCall& call, const Device& dev, KernelOutput* refused) const override {
    return inner_->plan(call, dev, refused);
  }

 private:
  KernelPtr inner_;
  ContractMutant mutant_;
};

/// Wraps `inner` with mutant `m`.
KernelPtr mutate(KernelPtr inner, ContractMutant m);
/// A dispatcher mutant: a wrong routing-table entry rather than a wrong kernel.
bool is_routing(ContractMutant m);

/// The call a mutant hands the inner kernel, with the buffers it owns. `planted` is false when
/// the bug cannot touch this call (then `call` is the original). Exposed so tests can check a
/// transformation byte by byte without running a kernel.
struct MutatedCall {
  MutatedCall() = default;
  MutatedCall(MutatedCall&&) = default;  // vector moves keep their buffers: the views stay valid
  MutatedCall(const MutatedCall&) = delete;  // a copy's views would point into the original
  MutatedCall& operator=(const MutatedCall&) = delete;
  bool planted = false;
  KernelCall call;
  std::vector<uint8_t> k_cache, v_cache;
  std::vector<float> k_scales, v_scales;
  std::vector<int32_t> block_tables, context_lens;
};
/// Applies the input side of `m` to `call` (output and routing mutants: planted = false). `inner`
/// answers whether it takes a transformed problem (gqa_h_mod_hkv hands it an MHA problem).
MutatedCall mutate_call(ContractMutant m, const KernelCall& call, const Kernel& inner, const Device& dev);
/// Applies the output side of `m` to what the kernel returned for `problem` (input mutants: no-op).
void mutate_output(ContractMutant m, const pacheck_problem& problem, KernelOutput& out);

/// The case a call describes, for decline_reason questions about a transformed problem.
Case case_of(const KernelCall& call);

}  // namespace pa
