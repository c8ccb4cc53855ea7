// Parity with HF transformers: our logits on a packed batch of several sequences equal HF's
// logits computed one sequence at a time (fp32, within 1e-4), for GQA/MQA, tied and untied
// heads, linear and llama3 rope scaling, Llama with attention and MLP biases, Qwen2 (q/k/v
// biases), GLM (fused gate_up_proj, partial interleaved rope, also with rope scaling) and GLM in
// ChatGLM3's own checkpoint layout (its names, fused query_key_value, its config keys), also from
// PyTorch .bin weights. The models are random ones built by tests/model/hf_reference.py, offline,
// with nonzero biases.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <tuple>

#include "longalign/core/error.hpp"
#include "longalign/model/safetensors.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "test_paths.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {

const fs::path& reference_dir() { return fixture::python_made_dir("model/hf_reference.py"); }

// The largest difference between our logits for the reference batch from the model in `dir`
// and HF's in `ref_dir`.
double max_logit_diff(const fs::path& dir, const fs::path& ref_dir) {
  auto cfg = model::load_hf_config(dir / "config.json");
  model::check_weight_shapes(dir, cfg);
  model::LlamaForCausalLM m(cfg);
  model::load_hf_weights(*m, dir);
  model::SafetensorsFile ref(ref_dir / "reference.safetensors");
  at::Tensor ids = ref.view("input_ids").clone(), cu = ref.view("cu_seqlens").clone(), expect = ref.view("logits");
  std::vector<int64_t> pos;
  int64_t max_len = 0;
  for (int64_t b = 0; b + 1 < cu.size(0); ++b) {
    int64_t len = cu[b + 1].item<int>() - cu[b].item<int>();
    max_len = std::max(max_len, len);
    for (int64_t t = 0; t < len; ++t) pos.push_back(t);
  }
  model::PackedInput in{ids, torch::tensor(pos, torch::kLong), cu, max_len};
  torch::NoGradGuard ng;
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  at::Tensor logits = m->logits(m->hidden_states(in, attention));
  if (logits.sizes() != expect.sizes()) throw std::runtime_error("logits of another shape than HF's");
  EXPECT_GT(expect.abs().max().item<double>(), 0.1);  // the oracle is not trivially zero
  return (logits - expect).abs().max().item<double>();
}

// Our logits from the model in `dir` equal HF's in `ref_dir`. Both run in fp32 (HF cannot run
// this in fp64: it computes RMSNorm and RoPE in fp32 whatever the weights), so they differ by
// summation order: each inner product of length n (n <= intermediate = 128 here) rounds by
// ~sqrt(n) u relative (u = 6e-8), ~7e-7, grown a few-fold through two layers and the head:
// ~1e-5 of logits of size ~5 (measured 4e-6..6e-6, also at ATEN_CPU_CAPABILITY=default and
// avx2). 1e-4 leaves 10x room, while a wrong rope, bias or layout errs by > 1e-2 (the controls).
void check_dir(const fs::path& dir, const fs::path& ref_dir, const std::string& name) {
  const double diff = max_logit_diff(dir, ref_dir);
  std::printf("%s: max |ours - HF| = %.3g\n", name.c_str(), diff);
  EXPECT_LT(diff, 1e-4) << name << ": max |ours - HF| = " << diff;
}

void check_variant(const std::string& name) { check_dir(reference_dir() / name, reference_dir() / name, name); }

// Saved the way checkpoints are (config.json + hf_state) and loaded back, the model still
// matches HF: biases and GLM's fused gate_up_proj survive the round trip.
void check_round_trip(const std::string& name) {
  fs::path src = reference_dir() / name;
  fixture::TempDir out;
  auto cfg = model::load_hf_config(src / "config.json");
  model::LlamaForCausalLM m(cfg);
  model::load_hf_weights(*m, src);
  std::ofstream(out.path / "config.json") << model::to_hf_config_json(cfg, "float32");
  model::write_sharded_safetensors(out.path, model::hf_state(*m, torch::kFloat), uint64_t{1} << 30);
  check_dir(out.path, src, name + " (round trip)");
}

// A copy of variant `name` whose config.json has `from` replaced by `to`.
fs::path edited_copy(const std::string& name, const std::string& from, const std::string& to, const fs::path& out) {
  fs::path src = reference_dir() / name;
  fs::copy(src / "model.safetensors", out / "model.safetensors");
  std::ifstream in(src / "config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error(from + " not in " + (src / "config.json").string());
  std::ofstream(out / "config.json") << text.replace(at, from.size(), to);
  return out;
}

}  // namespace

TEST(HfParity, GqaUntied) { check_variant("gqa_untied"); }
TEST(HfParity, TiedLinearRope) { check_variant("tied_linear"); }
TEST(HfParity, MqaLlama3RopeExplicitHeadDim) { check_variant("llama3_mqa"); }
TEST(HfParity, LlamaAttentionAndMlpBias) { check_variant("llama_bias"); }
TEST(HfParity, Qwen2QkvBias) { check_variant("qwen2"); }
TEST(HfParity, GlmPartialInterleavedRopeFusedMlp) { check_variant("glm"); }
TEST(HfParity, ChatGlm3LayoutFusedQkvAndRopeRatio) {
  check_variant("glm_rope2");
  check_variant("chatglm");
}
TEST(HfParity, BiasesAndFusedMlpSurviveSaveAndLoad) {
  check_round_trip("qwen2");
  check_round_trip("llama_bias");
  check_round_trip("glm");
  check_round_trip("chatglm");
}

// A ChatGLM3 checkpoint is written back as one: the same tensor names (fused), the same keys.
TEST(HfParity, ChatGlm3CheckpointIsWrittenBackInItsOwnLayout) {
  fs::path src = reference_dir() / "chatglm";
  auto cfg = model::load_hf_config(src / "config.json");
  model::LlamaForCausalLM m(cfg);
  model::load_hf_weights(*m, src);
  std::set<std::string> written, stored;
  for (const auto& [name, t] : model::hf_state(*m, torch::kFloat)) written.insert(name);
  for (const auto& name : model::CheckpointTensors(src).names())
    if (name != "transformer.rotary_pos_emb.inv_freq") stored.insert(name);
  EXPECT_EQ(written, stored);
  auto keys = [](const std::string& text) {
    std::set<std::string> k;
    const auto j = nlohmann::json::parse(text);
    for (const auto& [key, v] : j.items()) k.insert(key);
    return k;
  };
  std::ifstream in(src / "config.json");
  std::set<std::string> before = keys(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
  std::set<std::string> after = keys(model::to_hf_config_json(cfg, "float32"));
  for (const auto& k : before) EXPECT_TRUE(after.count(k)) << "config.json lost " << k;
  auto back = model::parse_hf_config(model::to_hf_config_json(cfg, "float32"), "written");
  EXPECT_EQ(back.model_type, "chatglm");
  EXPECT_EQ(back.rope_theta, 20000.0);
  EXPECT_EQ(back.num_key_value_heads, 2);
  EXPECT_EQ(back.num_parameters(), cfg.num_parameters());
}

// Variants modeling_chatglm.py builds that this GLM model does not compute are refused by name.
TEST(HfParity, UnsupportedChatGlmVariantsAreRefused) {
  for (auto [from, to, key] : {std::tuple{"\"rmsnorm\": true", "\"rmsnorm\": false", "rmsnorm"},
                               std::tuple{"\"apply_residual_connection_post_layernorm\": false",
                                          "\"apply_residual_connection_post_layernorm\": true",
                                          "apply_residual_connection_post_layernorm"}}) {
    fixture::TempDir tmp;
    fs::path dir = edited_copy("chatglm", from, to, tmp.path);
    try {
      model::load_hf_config(dir / "config.json");
      ADD_FAILURE() << key << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
}

// GLM with rope scaling (transformers scales the frequencies of the rotary half of each head).
// Read without its scaling the same model is far from HF's logits, so the scaling is exercised.
TEST(HfParity, GlmLinearAndLlama3RopeScaling) {
  for (const std::string type : {"linear", "llama3"}) {
    const std::string name = "glm_" + type;
    check_variant(name);
    fixture::TempDir tmp;
    fs::path plain = edited_copy(name, "\"rope_type\": \"" + type + "\"", "\"rope_type\": \"default\"", tmp.path);
    EXPECT_GT(max_logit_diff(plain, reference_dir() / name), 1e-2) << name << " without its scaling still matches";
  }
  check_round_trip("glm_llama3");
}

// PyTorch .bin weights are read natively: one file (Llama with biases) and ChatGLM3's layout in
// three shards named by pytorch_model.bin.index.json give HF's logits like their safetensors twins.
TEST(HfParity, BinWeightsOneFileAndShardedChatGlm) {
  check_variant("llama_bias_bin");
  check_variant("chatglm_bin");
}

// What LibTorch's unpickler cannot read is a RuntimeError naming the file and the way out.
TEST(HfParity, UnreadableBinWeightsAreClearErrors) {
  auto expect_error = [](const fs::path& dir, const std::vector<std::string>& parts) {
    try {
      model::CheckpointTensors ckpt(dir);
      ADD_FAILURE() << "the .bin weights in " << dir << " were accepted";
    } catch (const RuntimeError& e) {
      for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  };
  fixture::TempDir tmp;
  fs::create_directories(tmp.path / "garbage");
  std::ofstream(tmp.path / "garbage" / "pytorch_model.bin") << "not a zip archive";
  expect_error(tmp.path / "garbage", {"garbage/pytorch_model.bin", "zip", "safetensors"});
  // torch.save(model.state_dict()) pickles an OrderedDict, which the unpickler turns into None.
  expect_error(reference_dir() / "ordered_dict_bin", {"ordered_dict_bin/pytorch_model.bin", "OrderedDict", "safetensors"});
  // An index that places a tensor in a shard lacking it.
  fs::path sharded = tmp.path / "sharded";
  fs::copy(reference_dir() / "chatglm_bin", sharded);
  std::ifstream in(sharded / "pytorch_model.bin.index.json");
  auto index = nlohmann::json::parse(in);
  index["weight_map"]["transformer.extra.weight"] = "pytorch_model-00001-of-00003.bin";
  std::ofstream(sharded / "pytorch_model.bin.index.json") << index.dump();
  expect_error(sharded, {"pytorch_model.bin.index.json", "transformer.extra.weight", "pytorch_model-00001-of-00003.bin"});
}

// Biases a config does not enable are refused by name, never dropped: a Qwen2 checkpoint read
// as Llama would otherwise compute a different model without a word.
TEST(HfParity, UnusedCheckpointTensorIsAnErrorNamingIt) {
  fixture::TempDir tmp;
  fs::path dir = edited_copy("qwen2", "\"model_type\": \"qwen2\"", "\"model_type\": \"llama\"", tmp.path);
  auto cfg = model::load_hf_config(dir / "config.json");
  model::LlamaForCausalLM m(cfg);
  for (auto check : {std::function<void()>([&] { model::check_weight_shapes(dir, cfg); }),
                     std::function<void()>([&] { model::load_hf_weights(*m, dir); })}) {
    try {
      check();
      ADD_FAILURE() << "an unused bias was accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("_proj.bias"), std::string::npos) << e.what();
    }
  }
}

TEST(HfParity, MissingBiasIsAnErrorNamingIt) {
  fixture::TempDir tmp;
  fs::path dir = edited_copy("gqa_untied", "\"model_type\": \"llama\"", "\"model_type\": \"qwen2\"", tmp.path);
  try {
    model::check_weight_shapes(dir, model::load_hf_config(dir / "config.json"));
    ADD_FAILURE() << "a missing bias was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("q_proj.bias"), std::string::npos) << e.what();
  }
}

TEST(HfParity, ConfigRoundTripKeepsFamilyAndBiases) {
  for (const std::string name : {"llama_bias", "qwen2", "glm", "chatglm"}) {
    auto c = model::load_hf_config(reference_dir() / name / "config.json");
    auto back = model::parse_hf_config(model::to_hf_config_json(c, "float32"), name);
    EXPECT_EQ(back.model_type, c.model_type) << name;
    EXPECT_EQ(back.qkv_bias, c.qkv_bias) << name;
    EXPECT_EQ(back.o_bias, c.o_bias) << name;
    EXPECT_EQ(back.mlp_bias, c.mlp_bias) << name;
    EXPECT_EQ(back.partial_rotary_factor, c.partial_rotary_factor) << name;
    EXPECT_EQ(back.num_parameters(), c.num_parameters()) << name;
  }
  EXPECT_TRUE(model::load_hf_config(reference_dir() / "qwen2" / "config.json").qkv_bias);
  EXPECT_FALSE(model::load_hf_config(reference_dir() / "qwen2" / "config.json").o_bias);
  EXPECT_EQ(model::load_hf_config(reference_dir() / "glm" / "config.json").rotary_dim(), 8);
}
