// Attaching, saving, loading and merging LoRA adapters; see the header.
#include "longalign/model/lora.hpp"

#include <torch/torch.h>

#include <set>

#include "longalign/core/error.hpp"

namespace longalign::model {
namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

std::vector<LoraLinearImpl*> adapters(LlamaForCausalLMImpl& m) {
  std::vector<LoraLinearImpl*> out;
  for (const auto& mod : m.modules(/*include_self=*/false))
    if (auto* l = mod->as<LoraLinearImpl>(); l && l->has_adapter()) out.push_back(l);
  return out;
}

}  // namespace

std::shared_ptr<LoraDropoutState> attach_lora(LlamaForCausalLMImpl& m, const LoraConfig& c, uint64_t seed,
                                              const std::string& where) {
  if (c.dropout < 0 || c.dropout >= 1) throw UsageError(where + ".dropout must be in [0, 1)");
  const LoraTargets t = resolve_lora_targets(m.config(), c, where);
  auto state = std::make_shared<LoraDropoutState>();
  state->seed = seed;
  at::Generator gen = at::detail::createCPUGenerator(seed ^ 0x4C6F5241ull);  // "LoRA": not init_weights' stream
  auto modules = m.named_modules("", false);
  for (auto& p : m.parameters()) p.requires_grad_(false);
  int64_t ordinal = 0;
  for (const auto& name : t.adapted) {
    auto* l = modules[name]->as<LoraLinearImpl>();
    l->attach(c.rank, c.scaling(), c.dropout, state, ordinal++, gen);
  }
  for (const auto& name : t.saved)
    for (auto& p : modules[name]->parameters(/*recurse=*/false)) p.requires_grad_(true);
  return state;
}

bool has_lora(LlamaForCausalLMImpl& m) { return !adapters(m).empty(); }

std::shared_ptr<LoraDropoutState> lora_dropout_state(LlamaForCausalLMImpl& m) {
  auto a = adapters(m);
  return a.empty() ? nullptr : a.front()->dropout_state();
}

std::string peft_name(const std::string& ours) { return kPeftPrefix + ours; }

NamedTensors adapter_state(LlamaForCausalLMImpl& m, at::ScalarType dtype) {
  NamedTensors out;
  for (const auto& p : m.named_parameters())
    if (p.value().requires_grad() && p.value().numel() > 0)
      out.emplace_back(peft_name(p.key()), p.value().detach().to(at::kCPU, dtype).contiguous());
  return out;
}

void load_adapter_state(LlamaForCausalLMImpl& m, const SafetensorsFile& f, const std::string& where) {
  std::set<std::string> expected;
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    const std::string name = peft_name(p.key());
    expected.insert(name);
    if (!f.contains(name))
      throw RuntimeError(where + ": tensor " + name + " is missing (the adapter was made for other target_modules, "
                         "modules_to_save or another model)");
    at::Tensor src = f.view(name);
    if (src.sizes() != p.value().sizes())
      throw RuntimeError(where + ": tensor " + name + " has shape " + c10::str(src.sizes()) + ", the model needs " +
                         c10::str(p.value().sizes()) + " (another rank or model?)");
    p.value().copy_(src);
  }
  for (const auto& n : f.names())
    if (!expected.count(n))
      throw RuntimeError(where + ": tensor " + n + " belongs to no adapter or saved module of this config (a "
                         "PEFT feature not supported here, such as biases, DoRA or LoRA on embeddings?)");
}

void merge_lora(LlamaForCausalLMImpl& m) {
  for (auto* l : adapters(m)) l->merge();
}

}  // namespace longalign::model
