// Config validation: every error names the key (and the nearest valid one, or the value), and
// --set overrides apply before validation; the model section against checkpoints and presets.
#include <gtest/gtest.h>

#include <filesystem>
#include <tuple>

#include "longalign/core/error.hpp"
#include "longalign/train/train_config.hpp"
#include "test_paths.hpp"
#include "test_util.hpp"

using namespace longalign;

namespace {

const char* kBase = "model:\n  hidden_size: 64\n  intermediate_size: 96\n  num_hidden_layers: 2\n"
                    "  num_attention_heads: 4\n  num_key_value_heads: 2\n"
                    "data:\n  inputs: [d.jsonl]\ntrain:\n  lr: 1.0e-3\n";

std::string error_for(const std::string& yaml, const std::vector<std::string>& sets = {}) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "c.yaml", yaml);
  try {
    train::load_train_config(tmp / "c.yaml", sets);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TrainConfig, LoadsAndResolvesPathsAndOverrides) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "c.yaml", kBase);
  auto c = train::load_train_config(tmp / "c.yaml", {"train.lr=0.5", "output.dir=out"});
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.5);
  EXPECT_EQ(c.output.dir, tmp / "out");
  EXPECT_EQ(c.data.tokenize.inputs.at(0), tmp / "d.jsonl");
  EXPECT_EQ(c.model.arch.num_key_value_heads, 2);
  EXPECT_EQ(c.optim.beta2, 0.95);  // LongAlign default
  EXPECT_FALSE(c.attention_deterministic);  // atomic dQ by default
  EXPECT_TRUE(train::load_train_config(tmp / "c.yaml", {"attention.deterministic=true"}).attention_deterministic);
  EXPECT_THROW(train::check_inputs_exist(c), UsageError);  // d.jsonl does not exist
}

TEST(TrainConfig, UnknownKeysNameTheNearestValidKey) {
  EXPECT_NE(error_for(std::string(kBase) + "  lerning_rate: 1\n").find("train.lerning_rate"), std::string::npos);
  EXPECT_NE(error_for(std::string(kBase) + "  warmup_ratoi: 0.1\n").find("did you mean train.warmup_ratio"), std::string::npos);
  EXPECT_NE(error_for(std::string(kBase) + "trian:\n  lr: 1\n").find("did you mean 'train'"), std::string::npos);
  EXPECT_NE(error_for(kBase, {"data.max_token=5"}).find("did you mean data.max_tokens"), std::string::npos);
}

TEST(TrainConfig, WrongTypesAndRangesNameKeyAndValue) {
  std::string e = error_for(kBase, {"train.lr=fast"});
  EXPECT_NE(e.find("train.lr"), std::string::npos) << e;
  EXPECT_NE(e.find("fast"), std::string::npos) << e;
  e = error_for(kBase, {"train.lr=5"});
  EXPECT_NE(e.find("train.lr 5 is out of range: must be > 0 and <= 1"), std::string::npos) << e;
  e = error_for(kBase, {"train.schedule=exponential"});
  EXPECT_NE(e.find("cosine"), std::string::npos) << e;
  e = error_for(kBase, {"model.num_key_value_heads=3"});
  EXPECT_NE(e.find("num_key_value_heads"), std::string::npos) << e;
  EXPECT_NE(error_for(kBase, {"nonsense"}).find("section.key=value"), std::string::npos);
  e = error_for(kBase, {"attention.deterministic=sometimes"});
  EXPECT_NE(e.find("attention.deterministic"), std::string::npos) << e;
}

TEST(TrainConfig, ResolvedYamlRoundTrips) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "c.yaml", kBase);
  auto c = train::load_train_config(tmp / "c.yaml", {"train.warmup_ratio=0.25"});
  fixture::write_text(tmp / "r.yaml", train::to_yaml(c));
  auto r = train::load_train_config(tmp / "r.yaml", {});
  EXPECT_EQ(train::to_yaml(r), train::to_yaml(c));
  EXPECT_DOUBLE_EQ(r.optim.warmup_ratio, 0.25);
}

namespace {

// A HF config.json of a Llama-2 shape: plain 7B (rope 1e4, vocab 32000, 4k) by default.
std::string hf_config(int64_t hidden, int64_t inter, int64_t layers, int64_t vocab, double rope_theta) {
  return "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":" + std::to_string(hidden) +
         ",\"intermediate_size\":" + std::to_string(inter) + ",\"num_hidden_layers\":" + std::to_string(layers) +
         ",\"num_attention_heads\":" + std::to_string(hidden / 128) + ",\"num_key_value_heads\":" +
         std::to_string(hidden / 128) + ",\"vocab_size\":" + std::to_string(vocab) +
         ",\"max_position_embeddings\":4096,\"rms_norm_eps\":1e-05,\"rope_theta\":" + std::to_string(rope_theta) +
         ",\"tie_word_embeddings\":false}";
}

const std::string kConfigs = fixture::source_dir() + "/configs/";

}  // namespace

// The paper's config pointed at plain Llama-2-7B and at a LongAlign-7B-64k-base-style checkpoint
// (rope_theta already 2e6, vocabulary padded to 32256): both end at base 2e6 and 64k positions,
// nothing scaled twice, the checkpoint's vocabulary kept.
TEST(TrainConfig, PaperConfigFitsPlainAndExtendedBases) {
  fixture::TempDir tmp;
  for (auto [name, vocab, theta] : {std::tuple{"plain", 32000, 10000.0}, std::tuple{"extended", 32256, 2000000.0}}) {
    SCOPED_TRACE(name);
    std::filesystem::create_directories(tmp / name);
    fixture::write_text(tmp / name / "config.json", hf_config(4096, 11008, 32, vocab, theta));
    auto c = train::load_train_config(kConfigs + "llama7b_64k.yaml", {"model.path=" + (tmp / name).string()});
    EXPECT_DOUBLE_EQ(c.model.arch.rope_theta, 2000000.0);
    EXPECT_EQ(c.model.arch.max_position_embeddings, 65536);
    EXPECT_EQ(c.model.arch.vocab_size, vocab);
    EXPECT_EQ(c.model.arch.hidden_size, 4096);
    EXPECT_EQ(c.data.plan.cost.hidden, 4096);
    EXPECT_EQ(c.data.plan.cost.layers, 32);
  }
  // Without the weights the preset describes the model (planning, dry runs).
  auto c = train::load_train_config(kConfigs + "llama7b_64k.yaml", {});
  EXPECT_EQ(c.model.arch.num_hidden_layers, 32);
  EXPECT_NEAR(c.data.plan.cost.params, 6.74e9, 0.01e9);
  auto c13 = train::load_train_config(kConfigs + "llama13b_64k.yaml", {});
  EXPECT_EQ(c13.model.arch.hidden_size, 5120);
  EXPECT_EQ(c13.model.arch.num_hidden_layers, 40);
  EXPECT_NEAR(double(c13.model.arch.num_parameters()), 13.0e9, 0.1e9);
  EXPECT_DOUBLE_EQ(c13.model.arch.rope_theta, 2000000.0);
  // The resolved YAML (saved with every run and checkpoint) loads back to the same model.
  {
    auto c0 = train::load_train_config(kConfigs + "llama7b_64k.yaml", {"model.path=" + (tmp / "extended").string()});
    fixture::write_text(tmp / "resolved.yaml", train::to_yaml(c0));
    auto c1 = train::load_train_config(tmp / "resolved.yaml", {});
    EXPECT_DOUBLE_EQ(c1.model.arch.rope_theta, 2000000.0);
    EXPECT_EQ(c1.model.arch.vocab_size, 32256);
    EXPECT_EQ(c1.model.arch.max_position_embeddings, 65536);
  }
  // The 13B config pointed at 7B weights names the disagreeing key.
  std::string err;
  try {
    train::load_train_config(kConfigs + "llama13b_64k.yaml", {"model.path=" + (tmp / "plain").string()});
  } catch (const UsageError& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("hidden_size"), std::string::npos) << err;
  EXPECT_NE(err.find("llama2-13b"), std::string::npos) << err;
}

TEST(TrainConfig, RopeThetaIsAbsoluteAndNotCombinedWithAScale) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "config.json", hf_config(256, 512, 2, 100, 10000.0));
  auto with_path = [&](const std::string& model_keys) {
    return "model:\n  path: " + tmp.path.string() + "\n" + model_keys + "data:\n  inputs: [d.jsonl]\n";
  };
  fixture::write_text(tmp / "scale.yaml", with_path("  rope_theta_scale: 200\n"));
  EXPECT_DOUBLE_EQ(train::load_train_config(tmp / "scale.yaml", {}).model.arch.rope_theta, 2000000.0);
  fixture::write_text(tmp / "abs.yaml", with_path("  rope_theta: 500000\n"));
  EXPECT_DOUBLE_EQ(train::load_train_config(tmp / "abs.yaml", {}).model.arch.rope_theta, 500000.0);
  EXPECT_NE(error_for(with_path("  rope_theta: 500000\n  rope_theta_scale: 200\n")).find("keep one"), std::string::npos);
  // Layer shapes restated in the YAML must agree with the checkpoint.
  EXPECT_NE(error_for(with_path("  num_hidden_layers: 3\n")).find("num_hidden_layers is 3"), std::string::npos);
  EXPECT_NE(error_for("model:\n  path: /nonexistent\ndata:\n  inputs: [d.jsonl]\n").find("model.preset"), std::string::npos);
}
