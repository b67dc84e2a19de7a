#pragma once
// The real model head configurations of docs/kernels.md (per GPU: TP1 and TP8 where the head counts
// differ), with the attention options each model uses. The one list that fixtures, suites and
// benchmarks draw from; the regression corpus (regression/cases/*.json) names the same models.
#include <cstdint>
#include <vector>

#include "core/case.hpp"

namespace pa {

struct ModelConfig {
  const char* name;
  int32_t num_q_heads, num_kv_heads, head_size;
  int32_t sliding_window = 0;   // 0 = none
  double logit_softcap = 0;     // 0 = none
  bool sinks = false;
  double softmax_scale = 0;     // 0 = 1/sqrt(head_size)

  /// Options only the general path (v1) implements: window, soft-cap, sinks.
  bool needs_v1() const { return sliding_window > 0 || logit_softcap > 0 || sinks; }
};

inline const std::vector<ModelConfig>& model_configs() {
  static const std::vector<ModelConfig> kModels = {
      {"llama33_70b_tp1", 64, 8, 128},
      {"llama31_405b_tp8", 16, 1, 128},
      {"qwen3_235b_tp1", 64, 4, 128},
      {"qwen3_235b_tp8", 8, 1, 128},
      {"qwen35_397b_tp1", 32, 2, 256},  // full-attention layers
      {"qwen35_397b_tp8", 4, 1, 256},
      {"gpt_oss_tp1", 64, 8, 64, 128, 0, true},
      {"gemma2_tp1", 16, 8, 256, 4096, 50},
      {"gemma3_27b_tp1", 32, 16, 128, 1024, 0, false, 0.0771516749810460},  // 1/sqrt(168)
      {"llama4_tp1", 40, 8, 128},
  };
  return kModels;
}

/// Sets c's heads and attention options to the model's.
inline void apply_model(const ModelConfig& m, Case& c) {
  c.num_q_heads = m.num_q_heads;
  c.num_kv_heads = m.num_kv_heads;
  c.head_size = m.head_size;
  c.sliding_window = m.sliding_window;
  c.logit_softcap = m.logit_softcap;
  c.sinks = m.sinks;
  c.softmax_scale = m.softmax_scale;
}

}  // namespace pa
