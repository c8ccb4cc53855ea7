// LoRA on the Llama model (lora_config.hpp says what is adapted): attaching adapters to the same
// model class, freezing the base, the trained tensors under PEFT's names, and merging. After
// attach_lora only the adapters and the modules_to_save parameters require gradients, which is
// how the optimizer and the parallelism pass tell what to train.
#pragma once
#include <memory>
#include <string>

#include "longalign/model/llama.hpp"
#include "longalign/model/lora_config.hpp"
#include "longalign/model/safetensors.hpp"

namespace longalign::model {

// Attaches adapters (A from a generator seeded with `seed`, B zeros) to the modules the config
// selects and freezes everything else. UsageErrors name `where` (a config key or file).
std::shared_ptr<LoraDropoutState> attach_lora(LlamaForCausalLMImpl& m, const LoraConfig& c, uint64_t seed,
                                              const std::string& where);
bool has_lora(LlamaForCausalLMImpl& m);
std::shared_ptr<LoraDropoutState> lora_dropout_state(LlamaForCausalLMImpl& m);

// PEFT's name for one of our parameters: "base_model.model." + the checkpoint's name for it.
std::string peft_name(const LlamaConfig& c, const std::string& ours);
// The trained tensors (every parameter that requires gradients) under PEFT's names, in `dtype`
// on the CPU; empty parameters (ZeRO-3: another group's, released) are left out.
NamedTensors adapter_state(LlamaForCausalLMImpl& m, at::ScalarType dtype);
// Copies an adapter state (PEFT names) into the attached adapters and saved modules; a missing,
// extra or mis-shaped tensor is a RuntimeError naming it and `where`.
void load_adapter_state(LlamaForCausalLMImpl& m, const SafetensorsFile& f, const std::string& where);

// Folds every adapter into its base weight (peft's merge_and_unload); the model is plain again.
void merge_lora(LlamaForCausalLMImpl& m);

}  // namespace longalign::model
