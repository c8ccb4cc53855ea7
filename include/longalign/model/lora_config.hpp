// What a LoRA run adapts, with PEFT's semantics (torch-free: the train config checks it when it
// loads). Module names are HF's (model.layers.0.self_attn.q_proj); an entry of target_modules or
// modules_to_save matches a module whose name equals it or ends in "." + it, as in PEFT ("norm"
// is the final norm only, not input_layernorm). With target_regex the one entry is a regular
// expression the whole name must match, as PEFT treats a string; "all-linear" is every
// projection of the decoder (PEFT's all-linear: never the LM head). Entries match the names the
// checkpoint uses: GLM's fused gate_up_proj, ChatGLM3's query_key_value, dense, dense_h_to_4h and
// dense_4h_to_h; a fused projection gets one adapter, as in PEFT (lora_linear.hpp).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "longalign/model/llama_config.hpp"

namespace longalign::model {

struct LoraConfig {
  int64_t rank = 0;  // 0: no LoRA (full fine-tuning)
  double alpha = 0;  // 0: 2 x rank
  double dropout = 0;
  bool use_rslora = false;  // scaling alpha / sqrt(rank) (read from PEFT adapters that use it)
  std::vector<std::string> target_modules = {"all-linear"};
  bool target_regex = false;
  std::vector<std::string> modules_to_save;  // trained whole (LongLoRA's "+": embed_tokens, norms)

  bool enabled() const { return rank > 0; }
  double resolved_alpha() const { return alpha > 0 ? alpha : 2.0 * double(rank); }
  double scaling() const {
    return use_rslora ? resolved_alpha() / std::sqrt(double(rank)) : resolved_alpha() / double(rank);
  }
};

// The modules a config selects, by our name (the HF Llama/GLM scheme; ChatGLM3's fused q, k, v is
// self_attn.qkv_proj), in model order. UsageError naming `where` (a config key or file) and the
// entry when an entry matches nothing, names a module that cannot carry an adapter (embeddings,
// LM head, norms: modules_to_save trains them), a fused projection is in modules_to_save, a
// module is in both lists, or a tied embedding is in modules_to_save (PEFT would train an
// untied copy).
struct LoraTargets {
  std::vector<std::string> adapted;  // projections that get lora_A / lora_B
  std::vector<std::string> saved;    // modules trained whole
};
LoraTargets resolve_lora_targets(const LlamaConfig& arch, const LoraConfig& c, const std::string& where);

// What LoRA trains, in parameters: the adapters (rank x (in + out) each) and the saved modules.
struct LoraCounts {
  int64_t adapter = 0, saved = 0;
  int64_t total() const { return adapter + saved; }
};
LoraCounts lora_parameter_counts(const LlamaConfig& arch, const LoraConfig& c);

}  // namespace longalign::model
