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

// The HF model's modules with weights of their own, and which of them our projections are.
// GLM's HF model has gate_up_proj fused; the trainer splits it, so it is a module there but not
// one an adapter can wrap here.
struct ModuleSets {
  std::vector<std::string> projections, leaves;
};

ModuleSets module_sets(const LlamaConfig& c) {
  ModuleSets s;
  s.leaves.push_back("model.embed_tokens");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"})
      s.projections.push_back(l + p);
    if (c.is_glm()) {
      s.projections.push_back(l + "mlp.down_proj");
    } else {
      for (const char* p : {"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) s.projections.push_back(l + p);
    }
    for (size_t k = s.projections.size() - (c.is_glm() ? 5 : 7); k < s.projections.size(); ++k)
      s.leaves.push_back(s.projections[k]);
    if (c.is_glm()) s.leaves.push_back(l + "mlp.gate_up_proj");
    s.leaves.push_back(l + "input_layernorm");
    s.leaves.push_back(l + "post_attention_layernorm");
  }
  s.leaves.push_back("model.norm");
  if (!c.tie_word_embeddings) s.leaves.push_back("lm_head");
  return s;
}

std::string short_names(const std::vector<std::string>& names) {
  std::set<std::string> seen;
  std::string out;
  for (const auto& n : names) {
    const auto dot = n.rfind('.');
    const std::string last = dot == std::string::npos ? n : n.substr(dot + 1);
    if (seen.insert(last).second) out += (out.empty() ? "" : ", ") + last;
  }
  return out;
}

// The leaves `entries` select, each in `pool`; every entry must select something (a typo would
// otherwise train less than asked, silently).
std::vector<std::string> select(const ModuleSets& s, const std::vector<std::string>& pool,
                                const std::vector<std::string>& entries, bool regex, const std::string& key,
                                const char* fix) {
  std::vector<std::string> out;
  if (regex) {
    std::regex re;
    try {
      re = std::regex(entries.at(0));
    } catch (const std::regex_error& e) {
      throw UsageError(key + ": '" + entries.at(0) + "' is not a valid regular expression (" + e.what() + ")");
    }
    for (const auto& n : s.leaves)
      if (std::regex_match(n, re)) out.push_back(n);
    if (out.empty())
      throw UsageError(key + ": the pattern '" + entries.at(0) + "' matches no module of this model (its modules: " +
                       short_names(s.leaves) + ")");
  } else {
    for (const auto& entry : entries) {
      const size_t before = out.size();
      for (const auto& n : s.leaves)
        if (matches(n, entry)) out.push_back(n);
      if (out.size() == before)
        throw UsageError(key + ": '" + entry + "' names no module of this model (its modules: " + short_names(s.leaves) +
                         ")");
    }
  }
  for (const auto& n : out)
    if (std::find(pool.begin(), pool.end(), n) == pool.end()) throw UsageError(key + ": " + n + fix);
  std::vector<std::string> kept;  // in model order, once each
  for (const auto& n : pool)
    if (std::find(out.begin(), out.end(), n) != out.end()) kept.push_back(n);
  return kept;
}

}  // namespace

LoraTargets resolve_lora_targets(const LlamaConfig& arch, const LoraConfig& c, const std::string& where) {
  if (arch.is_chatglm())
    throw UsageError(where + ": LoRA on a checkpoint in ChatGLM3's own layout is not supported; convert it to HF's GLM "
                     "layout (model_type glm) or train it fully");
  const ModuleSets s = module_sets(arch);
  LoraTargets t;
  const bool all = !c.target_regex && c.target_modules.size() == 1 && c.target_modules[0] == "all-linear";
  if (all && arch.is_glm())
    throw UsageError(where + ".target_modules: all-linear would include GLM's fused gate_up_proj, which LoRA here does not "
                     "support; list the modules (q_proj, k_proj, v_proj, o_proj, down_proj)");
  t.adapted = all ? s.projections
                  : select(s, s.projections, c.target_modules, c.target_regex, where + ".target_modules",
                           " cannot carry a LoRA adapter here (only the decoder's unfused projections can); train it "
                           "whole with modules_to_save instead");
  if (!c.modules_to_save.empty())
    t.saved = select(s, s.leaves, c.modules_to_save, false, where + ".modules_to_save", " cannot be saved");
  for (const auto& n : t.saved) {
    if (std::find(t.adapted.begin(), t.adapted.end(), n) != t.adapted.end())
      throw UsageError(where + ": " + n + " is in both target_modules and modules_to_save; choose one");
    if (ends_with(n, "gate_up_proj"))
      throw UsageError(where + ".modules_to_save: GLM's fused gate_up_proj is not supported; train it fully");
    if (arch.tie_word_embeddings && n == "model.embed_tokens")
      throw UsageError(where + ".modules_to_save: the model ties its LM head to its embeddings, and PEFT would train "
                       "an untied copy of embed_tokens; remove it, or use a model with tie_word_embeddings false");
  }
  return t;
}

LoraCounts lora_parameter_counts(const LlamaConfig& a, const LoraConfig& c) {
  const LoraTargets t = resolve_lora_targets(a, c, "train.lora");
  const int64_t h = a.hidden_size, q = a.num_attention_heads * a.resolved_head_dim(),
                kv = a.num_key_value_heads * a.resolved_head_dim(), f = a.intermediate_size;
  // (in, out, has bias) of a module by its last name component.
  auto shape = [&](const std::string& n) -> std::tuple<int64_t, int64_t, bool> {
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
