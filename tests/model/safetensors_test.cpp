// safetensors: round trip of every float dtype, sharding with an index, and damaged files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "longalign/core/error.hpp"
#include "longalign/model/safetensors.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::model;

TEST(Safetensors, RoundTripDtypesShapesAndMetadata) {
  fixture::TempDir tmp;
  torch::manual_seed(0);
  NamedTensors t = {{"a.f32", torch::randn({3, 5})},
                    {"b.bf16", torch::randn({7}).to(torch::kBFloat16)},
                    {"c.f16", torch::randn({2, 2, 2}).to(torch::kHalf)},
                    {"d.i64", torch::arange(10)},
                    {"e.scalar", torch::tensor(3.5)}};
  write_safetensors(tmp / "x.safetensors", t, {{"format", "pt"}});
  SafetensorsFile f(tmp / "x.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& [name, tensor] : t) {
    at::Tensor v = f.view(name);
    EXPECT_EQ(v.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(v, tensor)) << name;
  }
  // Layout check by hand: header length is a multiple of 8 and data starts right after it.
  std::ifstream in(tmp / "x.safetensors", std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, ShardedWithIndex) {
  fixture::TempDir tmp;
  NamedTensors t;
  for (int i = 0; i < 5; ++i) t.emplace_back("w" + std::to_string(i), torch::full({256}, float(i)));
  write_sharded_safetensors(tmp.path, t, 2048);  // 1 KiB each: two per shard
  EXPECT_TRUE(std::filesystem::exists(tmp / "model.safetensors.index.json"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "model-00003-of-00003.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "model-part-0.safetensors"));  // renamed once the count was known
  CheckpointTensors c(tmp.path);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.view("w" + std::to_string(i))[7].item<float>(), float(i));
  EXPECT_THROW(c.view("missing"), RuntimeError);
}

TEST(Safetensors, DamagedFilesAreErrorsNamingTheFile) {
  fixture::TempDir tmp;
  write_safetensors(tmp / "ok.safetensors", {{"w", torch::ones({64})}});
  std::filesystem::resize_file(tmp / "ok.safetensors", std::filesystem::file_size(tmp / "ok.safetensors") - 8);
  try {
    SafetensorsFile f(tmp / "ok.safetensors");
    FAIL();
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("ok.safetensors"), std::string::npos);
  }
  fixture::write_text(tmp / "junk.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}");
  EXPECT_THROW(SafetensorsFile(tmp / "junk.safetensors"), RuntimeError);
}
