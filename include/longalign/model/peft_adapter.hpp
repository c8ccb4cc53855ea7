// The PEFT adapter directory, as PeftModel.from_pretrained reads it and save_pretrained writes it:
// adapter_config.json (peft_type LORA, r, lora_alpha, target_modules, modules_to_save, ...) and
// adapter_model.safetensors under PEFT's names (base_model.model.<module>.lora_A.weight, and the
// saved modules' own weights, base_model.model.model.embed_tokens.weight). Features of PEFT that
// would compute something else here (DoRA, biases, fan_in_fan_out, per-module rank or alpha
// patterns, layer subsets, LoRA on embeddings) are refused naming the key, never ignored.
#pragma once
#include <filesystem>
#include <string>

#include "longalign/model/lora.hpp"

namespace longalign::model {

// adapter_config.json of `dir`; UsageError/RuntimeError naming the file and the key.
LoraConfig read_adapter_config(const std::filesystem::path& dir);
std::string adapter_config_json(const LoraConfig& c, const std::string& base_model);

// Attaches the adapter in `dir` to `m` (base weights already loaded) and loads its tensors.
void load_adapter(LlamaForCausalLMImpl& m, const std::filesystem::path& dir);

// Writes adapter_config.json and adapter_model.safetensors (the tensors of adapter_state) into
// the existing directory `dir` (a staging directory: callers rename it when complete).
void write_adapter_files(const std::filesystem::path& dir, const LoraConfig& c, const std::string& base_model,
                         const NamedTensors& state);

}  // namespace longalign::model
