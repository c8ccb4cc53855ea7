// LoRA in the trainer: train.lora's keys and their errors (each names the key and the entry),
// what it trains in parameters against PEFT's own count for Llama-3-8B, and the frozen base:
// after the parallelism pass only adapters and saved modules have optimizer state, a step moves
// only them, and a fresh adapter (B = 0) leaves the model's output exactly the base's.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "longalign/core/error.hpp"
#include "longalign/model/lora.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "longalign/train/parallelize.hpp"
#include "longalign/train/train_config.hpp"
#include "test_paths.hpp"
#include "test_util.hpp"

using namespace longalign;

namespace {

const char* kBase = "model:\n  hidden_size: 64\n  intermediate_size: 96\n  num_hidden_layers: 2\n"
                    "  num_attention_heads: 4\n  num_key_value_heads: 2\n  tie_word_embeddings: false\n"
                    "data:\n  inputs: [d.jsonl]\ntrain:\n  lr: 1.0e-3\n";

train::TrainConfig load(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "c.yaml", yaml);
  return train::load_train_config(tmp / "c.yaml", sets);
}

std::string error_for(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  try {
    load(yaml, sets);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

model::LlamaConfig llama(int64_t vocab, int64_t hidden, int64_t inter, int64_t layers, int64_t heads, int64_t kv) {
  model::LlamaConfig a;
  a.vocab_size = vocab;
  a.hidden_size = hidden;
  a.intermediate_size = inter;
  a.num_hidden_layers = layers;
  a.num_attention_heads = heads;
  a.num_key_value_heads = kv;
  return a;
}

}  // namespace

TEST(LoraConfig, KeysDefaultsAndOverrides) {
  auto c = load(std::string(kBase) + "  lora: {rank: 8, alpha: 16, modules_to_save: [embed_tokens, norm]}\n");
  EXPECT_EQ(c.optim.lora.rank, 8);
  EXPECT_DOUBLE_EQ(c.optim.lora.scaling(), 2.0);
  EXPECT_EQ(c.optim.lora.target_modules, std::vector<std::string>{"all-linear"});
  // --set reaches into train.lora, and creates it.
  auto d = load(kBase, {"train.lora.rank=4", "train.lora.target_modules=[q_proj, v_proj]"});
  EXPECT_EQ(d.optim.lora.rank, 4);
  EXPECT_DOUBLE_EQ(d.optim.lora.resolved_alpha(), 8.0);  // 2 x rank unless given
  EXPECT_EQ(d.optim.lora.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_FALSE(load(kBase).optim.lora.enabled());
  // The resolved YAML keeps the section.
  fixture::TempDir tmp;
  fixture::write_text(tmp / "r.yaml", train::to_yaml(c));
  fixture::write_text(tmp / "d.jsonl", "");
  auto r = train::load_train_config(tmp / "r.yaml", {});
  EXPECT_EQ(r.optim.lora.rank, 8);
  EXPECT_EQ(r.optim.lora.modules_to_save, (std::vector<std::string>{"embed_tokens", "norm"}));
}

TEST(LoraConfig, ErrorsNameTheKeyAndTheEntry) {
  const std::string b = kBase;
  EXPECT_NE(error_for(b + "  lora: {rnak: 8}\n").find("train.lora.rnak (did you mean train.lora.rank?)"), std::string::npos);
  EXPECT_NE(error_for(b + "  lora: {rank: 0}\n").find("train.lora.rank"), std::string::npos);
  EXPECT_NE(error_for(b + "  lora: {dropout: 1.5}\n").find("train.lora.dropout"), std::string::npos);
  const std::string typo = error_for(b + "  lora: {target_modules: [qproj]}\n");
  EXPECT_NE(typo.find("train.lora.target_modules: 'qproj' names no module"), std::string::npos) << typo;
  EXPECT_NE(typo.find("q_proj"), std::string::npos) << "lists the valid names: " << typo;
  const std::string emb = error_for(b + "  lora: {target_modules: [embed_tokens]}\n");
  EXPECT_NE(emb.find("cannot carry a LoRA adapter"), std::string::npos) << emb;
  EXPECT_NE(emb.find("modules_to_save"), std::string::npos) << emb;
  EXPECT_NE(error_for(b + "  lora: {target_modules: [q_proj], modules_to_save: [q_proj]}\n").find("both"), std::string::npos);
  const std::string tied = error_for(b + "  lora: {modules_to_save: [embed_tokens]}\n", {"model.tie_word_embeddings=true"});
  EXPECT_NE(tied.find("ties its LM head"), std::string::npos) << tied;
  EXPECT_NE(error_for(b + "  lora: {target_modules: '(unclosed'}\n").find("not a valid regular expression"), std::string::npos);
  model::LlamaConfig glm;
  glm.model_type = "glm";
  model::LoraConfig fused;
  fused.rank = 2;
  fused.target_modules = {"q_proj"};
  fused.modules_to_save = {"gate_up_proj"};
  try {
    model::resolve_lora_targets(glm, fused, "train.lora");
    ADD_FAILURE() << "GLM's fused gate_up_proj accepted as a saved module";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("gate_up_proj is fused"), std::string::npos) << e.what();
  }
}

// GLM and ChatGLM3 are matched on their checkpoints' names, fused projections included; what
// the config counts is what attaching trains.
TEST(LoraConfig, FusedProjectionsByTheCheckpointsNames) {
  model::LlamaConfig glm = llama(64, 32, 48, 2, 4, 2);
  glm.model_type = "glm";
  glm.qkv_bias = true;
  model::LoraConfig c;
  c.rank = 3;
  auto t = model::resolve_lora_targets(glm, c, "t");
  EXPECT_EQ(t.adapted.size(), 12u);
  EXPECT_EQ(t.adapted[4], "model.layers.0.mlp.gate_up_proj");
  c.target_modules = {"gate_up_proj"};
  EXPECT_EQ(model::resolve_lora_targets(glm, c, "t").adapted,
            (std::vector<std::string>{"model.layers.0.mlp.gate_up_proj", "model.layers.1.mlp.gate_up_proj"}));
  c.target_modules = {"gate_proj"};
  EXPECT_THROW(model::resolve_lora_targets(glm, c, "t"), UsageError);  // not a module of HF's GLM

  model::LlamaConfig chatglm = glm;
  chatglm.model_type = "chatglm";
  c.target_modules = {"query_key_value", "dense"};
  c.modules_to_save = {"final_layernorm", "word_embeddings"};
  t = model::resolve_lora_targets(chatglm, c, "t");
  EXPECT_EQ(t.adapted, (std::vector<std::string>{"model.layers.0.self_attn.qkv_proj", "model.layers.0.self_attn.o_proj",
                                                 "model.layers.1.self_attn.qkv_proj", "model.layers.1.self_attn.o_proj"}));
  EXPECT_EQ(t.saved, (std::vector<std::string>{"model.embed_tokens", "model.norm"}));
  c.target_modules = {"q_proj"};
  EXPECT_THROW(model::resolve_lora_targets(chatglm, c, "t"), UsageError);  // fused in ChatGLM3's checkpoint

  // r x (in + out) per adapter, by hand: qkv 32 + (4 + 2 + 2) x 8, o 32 + 32, gate_up 32 + 96, down 48 + 32.
  c.target_modules = {"all-linear"};
  c.modules_to_save.clear();
  const int64_t per_layer = 3 * ((32 + 64) + (32 + 32) + (32 + 96) + (48 + 32));
  EXPECT_EQ(model::lora_parameter_counts(chatglm, c).adapter, 2 * per_layer);
  for (const auto& arch : {glm, chatglm}) {
    model::LlamaForCausalLM m(arch);
    model::attach_lora(*m, c, 1, "t");
    int64_t trained = 0;
    for (const auto& p : m->parameters()) trained += p.requires_grad() ? p.numel() : 0;
    EXPECT_EQ(trained, model::lora_parameter_counts(arch, c).total()) << arch.model_type;
  }
}

// PEFT's rule: "norm" is the final norm only (its name ends in ".norm"), not input_layernorm.
TEST(LoraConfig, SuffixRuleAsPeft) {
  model::LlamaConfig a;
  a.num_hidden_layers = 3;
  model::LoraConfig c;
  c.rank = 2;
  c.target_modules = {"layers.1.self_attn.q_proj", "v_proj"};
  c.modules_to_save = {"norm"};
  auto t = model::resolve_lora_targets(a, c, "t");
  EXPECT_EQ(t.saved, std::vector<std::string>{"model.norm"});
  EXPECT_EQ(t.adapted, (std::vector<std::string>{"model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj",
                                                 "model.layers.1.self_attn.v_proj", "model.layers.2.self_attn.v_proj"}));
}

// peft's print_trainable_parameters() for Llama-3-8B with r=16 on all seven projections:
// "trainable params: 41,943,040". Embeddings and the final norm saved add 2 x 128256 x 4096 + 4096.
TEST(LoraConfig, ParameterCountMatchesPeftForLlama3_8B) {
  const model::LlamaConfig a = llama(128256, 4096, 14336, 32, 32, 8);
  model::LoraConfig c;
  c.rank = 16;
  EXPECT_EQ(model::lora_parameter_counts(a, c).adapter, 41943040);
  c.modules_to_save = {"embed_tokens", "lm_head", "norm"};
  EXPECT_EQ(model::lora_parameter_counts(a, c).saved, 2 * 128256LL * 4096 + 4096);
}

TEST(LoraTraining, OnlyAdaptersAndSavedModulesTrain) {
  model::LlamaConfig a = llama(64, 32, 48, 2, 4, 2);
  model::LlamaForCausalLM m(a);
  model::init_weights(*m, 0.2, 1);
  std::map<std::string, at::Tensor> before;
  for (auto& p : m->named_parameters()) before[p.key()] = p.value().detach().clone();
  model::LoraConfig c;
  c.rank = 4;
  c.modules_to_save = {"input_layernorm"};
  model::attach_lora(*m, c, 3, "test");
  int64_t trainable = 0;
  for (auto& p : m->named_parameters()) {
    if (!p.value().requires_grad()) continue;
    ++trainable;
    const bool adapter = model::is_adapter_parameter(p.key());
    EXPECT_TRUE(adapter || p.key().find("input_layernorm") != std::string::npos) << p.key();
    if (p.key().find("lora_B") != std::string::npos) EXPECT_EQ(p.value().abs().max().item<double>(), 0.0);
    if (p.key().find("lora_A") != std::string::npos)  // PEFT's kaiming-uniform bound 1/sqrt(fan_in)
      EXPECT_LE(p.value().abs().max().item<double>(), 1.0 / std::sqrt(double(p.value().size(1))));
  }
  EXPECT_EQ(trainable, 2 * (7 * 2 + 1));

  train::ParallelOptions o;
  o.activation_checkpointing = true;
  o.attention = [](auto&&... x) { return ops::varlen_attention(x...); };
  auto pm = train::parallelize(m, nullptr, o);
  EXPECT_EQ(int64_t(pm->optimizer().num_params()), trainable);
  std::set<std::string> state_names;
  for (const auto& [name, t] : pm->optimizer().state()) state_names.insert(name);
  for (const auto& n : state_names)
    EXPECT_TRUE(n == "step" || n.find("lora_") != std::string::npos || n.find("input_layernorm") != std::string::npos) << n;

  const int64_t T = 12;
  at::Tensor ids = torch::randint(0, 64, {T}, torch::kLong);
  train::MicroBatch b{{ids, torch::arange(T, torch::kLong), torch::tensor({0, int(T)}, torch::kInt), T},
                      torch::cat({ids.slice(0, 1), torch::full({1}, -100, torch::kLong)}), torch::full({T}, 1.0 / T)};
  pm->micro_step(b, true);
  pm->finish_gradients(true);
  pm->optimizer().step(1e-2);
  pm->after_update();
  for (auto& p : m->named_parameters()) {
    if (model::is_adapter_parameter(p.key())) continue;
    const bool moved = !torch::equal(p.value(), before[p.key()]);
    EXPECT_EQ(moved, p.key().find("input_layernorm") != std::string::npos) << p.key();
  }
}
