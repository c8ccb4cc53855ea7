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

// A projection the checkpoint stores fused: where its adapter-only module goes, and its parts.
struct Fused {
  std::string name;  // HF module name (ours for ChatGLM3's q, k, v)
  torch::nn::Module* parent;
  LoraLinear* slot;
  std::vector<LoraLinearImpl*> parts;
};

std::vector<Fused> fused_projections(LlamaForCausalLMImpl& m) {
  std::vector<Fused> out;
  const auto& c = m.config();
  for (size_t i = 0; i < m.model->layers->size(); ++i) {
    auto& layer = *m.model->layers->ptr(i)->as<LlamaDecoderLayerImpl>();
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    auto& a = *layer.self_attn;
    auto& f = *layer.mlp;
    if (c.is_chatglm())
      out.push_back({prefix + "self_attn.qkv_proj", &a, &a.qkv_proj, {a.q_proj.get(), a.k_proj.get(), a.v_proj.get()}});
    if (c.is_glm()) out.push_back({prefix + "mlp.gate_up_proj", &f, &f.gate_up_proj, {f.gate_proj.get(), f.up_proj.get()}});
  }
  return out;
}

const char* last_name(const std::string& name) { return name.c_str() + name.rfind('.') + 1; }

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
  const auto fused = fused_projections(m);
  int64_t ordinal = 0;
  for (const auto& name : t.adapted) {
    LoraLinearImpl* l = modules.contains(name) ? modules[name]->as<LoraLinearImpl>() : nullptr;
    for (const auto& f : fused) {
      if (l || f.name != name) continue;
      int64_t rows = 0;
      for (const auto* p : f.parts) rows += p->weight.size(0);
      *f.slot = f.parent->register_module(last_name(f.name), LoraLinear(f.parts[0]->weight.size(1), rows,
                                                                         f.parts[0]->weight.options()));
      l = f.slot->get();
    }
    if (!l) throw std::logic_error("attach_lora: no module " + name);
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

std::string peft_name(const LlamaConfig& c, const std::string& ours) { return kPeftPrefix + checkpoint_name(c, ours); }

NamedTensors adapter_state(LlamaForCausalLMImpl& m, at::ScalarType dtype) {
  NamedTensors out;
  for (const auto& p : m.named_parameters())
    if (p.value().requires_grad() && p.value().numel() > 0)
      out.emplace_back(peft_name(m.config(), p.key()), p.value().detach().to(at::kCPU, dtype).contiguous());
  return out;
}

void load_adapter_state(LlamaForCausalLMImpl& m, const SafetensorsFile& f, const std::string& where) {
  std::set<std::string> expected;
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    const std::string name = peft_name(m.config(), p.key());
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
  torch::NoGradGuard ng;
  for (const auto& f : fused_projections(m)) {
    if (!*f.slot) continue;
    const at::Tensor delta = (*f.slot)->delta_weight();
    int64_t row = 0;
    for (auto* p : f.parts) {
      const int64_t rows = p->weight.size(0);
      p->weight.copy_((p->weight.to(at::kDouble) + delta.narrow(0, row, rows).to(p->weight.device()))
                          .to(p->weight.scalar_type()));
      row += rows;
    }
    f.parent->unregister_module(last_name(f.name));
    *f.slot = nullptr;
  }
  for (auto* l : adapters(m)) l->merge();
}

}  // namespace longalign::model
