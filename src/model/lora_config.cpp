// LoRA target resolution on HF module names made from the config (no model needed); see the header.
#include "longalign/model/lora_config.hpp"

#include <algorithm>
#include <regex>
#include <set>
#include <tuple>

#include "longalign/core/error.hpp"

namespace longalign::model {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// PEFT's list rule: the whole name, or its last dotted components.
bool matches(const std::string& name, const std::string& entry) { return name == entry || ends_with(name, "." + entry); }

// The HF model's modules with weights of their own, and which of them are projections (which can
// carry an adapter). Each is named ours (the HF Llama/GLM scheme, ChatGLM3's fused q, k, v as
// self_attn.qkv_proj) and as the checkpoint names it, which is what PEFT's entries match.
struct Module {
  std::string ours, hf;
};
struct ModuleSets {
  std::vector<Module> projections, leaves;
};

ModuleSets module_sets(const LlamaConfig& c) {
  ModuleSets s;
  auto add = [&](const std::string& name, bool projection) {
    const Module m{name, checkpoint_name(c, name)};
    if (projection) s.projections.push_back(m);
    s.leaves.push_back(m);
  };
  add("model.embed_tokens", false);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    if (c.is_chatglm()) {
      add(l + "self_attn.qkv_proj", true);
    } else {
      for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}) add(l + p, true);
    }
    add(l + "self_attn.o_proj", true);
    if (c.is_glm()) {
      add(l + "mlp.gate_up_proj", true);
    } else {
      add(l + "mlp.gate_proj", true);
      add(l + "mlp.up_proj", true);
    }
    add(l + "mlp.down_proj", true);
    add(l + "input_layernorm", false);
    add(l + "post_attention_layernorm", false);
  }
  add("model.norm", false);
  if (!c.tie_word_embeddings) add("lm_head", false);
  return s;
}

bool is_fused(const std::string& ours) { return ends_with(ours, ".gate_up_proj") || ends_with(ours, ".qkv_proj"); }

std::string short_names(const std::vector<Module>& modules) {
  std::set<std::string> seen;
  std::string out;
  for (const auto& [ours, n] : modules) {
    const auto dot = n.rfind('.');
    const std::string last = dot == std::string::npos ? n : n.substr(dot + 1);
    if (seen.insert(last).second) out += (out.empty() ? "" : ", ") + last;
  }
  return out;
}

// Our names of the leaves `entries` select (matched on the checkpoint's names), each in `pool`;
// every entry must select something (a typo would otherwise train less than asked, silently).
std::vector<std::string> select(const ModuleSets& s, const std::vector<Module>& pool,
                                const std::vector<std::string>& entries, bool regex, const std::string& key,
                                const char* fix) {
  std::vector<const Module*> out;
  if (regex) {
    std::regex re;
    try {
      re = std::regex(entries.at(0));
    } catch (const std::regex_error& e) {
      throw UsageError(key + ": '" + entries.at(0) + "' is not a valid regular expression (" + e.what() + ")");
    }
    for (const auto& m : s.leaves)
      if (std::regex_match(m.hf, re)) out.push_back(&m);
    if (out.empty())
      throw UsageError(key + ": the pattern '" + entries.at(0) + "' matches no module of this model (its modules: " +
                       short_names(s.leaves) + ")");
  } else {
    for (const auto& entry : entries) {
      const size_t before = out.size();
      for (const auto& m : s.leaves)
        if (matches(m.hf, entry)) out.push_back(&m);
      if (out.size() == before)
        throw UsageError(key + ": '" + entry + "' names no module of this model (its modules: " + short_names(s.leaves) +
                         ")");
    }
  }
  auto in = [](const std::vector<const Module*>& v, const std::string& ours) {
    return std::any_of(v.begin(), v.end(), [&](const Module* m) { return m->ours == ours; });
  };
  for (const Module* m : out)
    if (!std::any_of(pool.begin(), pool.end(), [&](const Module& p) { return p.ours == m->ours; }))
      throw UsageError(key + ": " + m->hf + fix);
  std::vector<std::string> kept;  // in model order, once each
  for (const auto& m : pool)
    if (in(out, m.ours)) kept.push_back(m.ours);
  return kept;
}

}  // namespace

LoraTargets resolve_lora_targets(const LlamaConfig& arch, const LoraConfig& c, const std::string& where) {
  const ModuleSets s = module_sets(arch);
  LoraTargets t;
  const bool all = !c.target_regex && c.target_modules.size() == 1 && c.target_modules[0] == "all-linear";
  if (all) {
    for (const auto& m : s.projections) t.adapted.push_back(m.ours);
  } else {
    t.adapted = select(s, s.projections, c.target_modules, c.target_regex, where + ".target_modules",
                       " cannot carry a LoRA adapter (only the decoder's projections can); train it whole with "
                       "modules_to_save instead");
  }
  if (!c.modules_to_save.empty())
    t.saved = select(s, s.leaves, c.modules_to_save, false, where + ".modules_to_save", " cannot be saved");
  for (const auto& n : t.saved) {
    const std::string shown = checkpoint_name(arch, n);
    if (std::find(t.adapted.begin(), t.adapted.end(), n) != t.adapted.end())
      throw UsageError(where + ": " + shown + " is in both target_modules and modules_to_save; choose one");
    if (is_fused(n))
      throw UsageError(where + ".modules_to_save: " + shown + " is fused in the checkpoint and split here, which "
                       "saving it whole does not support; give it an adapter (target_modules) or train fully");
    if (arch.tie_word_embeddings && n == "model.embed_tokens")
      throw UsageError(where + ".modules_to_save: the model ties its LM head to its embeddings, and PEFT would train "
                       "an untied copy of " + shown + "; remove it, or use a model with tie_word_embeddings false");
  }
  return t;
}

LoraCounts lora_parameter_counts(const LlamaConfig& a, const LoraConfig& c) {
  const LoraTargets t = resolve_lora_targets(a, c, "train.lora");
  const int64_t h = a.hidden_size, q = a.num_attention_heads * a.resolved_head_dim(),
                kv = a.num_key_value_heads * a.resolved_head_dim(), f = a.intermediate_size;
  // (in, out, has bias) of a module by its last name component.
  auto shape = [&](const std::string& n) -> std::tuple<int64_t, int64_t, bool> {
    if (ends_with(n, "qkv_proj")) return {h, q + 2 * kv, a.qkv_bias};
    if (ends_with(n, "gate_up_proj")) return {h, 2 * f, a.mlp_bias};
    if (ends_with(n, "q_proj")) return {h, q, a.qkv_bias};
    if (ends_with(n, "k_proj") || ends_with(n, "v_proj")) return {h, kv, a.qkv_bias};
    if (ends_with(n, "o_proj")) return {q, h, a.o_bias};
    if (ends_with(n, "gate_proj") || ends_with(n, "up_proj")) return {h, f, a.mlp_bias};
    if (ends_with(n, "down_proj")) return {f, h, a.mlp_bias};
    if (n == "model.embed_tokens" || n == "lm_head") return {h, a.vocab_size, false};
    return {1, h, false};  // a norm
  };
  LoraCounts out;
  for (const auto& n : t.adapted) {
    auto [in, o, bias] = shape(n);
    out.adapter += c.rank * (in + o);
  }
  for (const auto& n : t.saved) {
    auto [in, o, bias] = shape(n);
    out.saved += in * o + (bias ? o : 0);
  }
  return out;
}

}  // namespace longalign::model
