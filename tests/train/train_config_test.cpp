// Config validation: every error names the key (and the nearest valid one, or the value), and
// --set overrides apply before validation.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/train/train_config.hpp"
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
  EXPECT_NE(e.find("train.lr must lie in"), std::string::npos) << e;
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
