// Batch -> tensors keeps every value and picks the dtypes the model and kernels expect.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "longalign/core/error.hpp"
#include "longalign/data/pack/batch_tensors.hpp"

using namespace longalign::data;

TEST(BatchTensors, ValuesAndDtypes) {
  Batch b;
  b.input_ids = {1, 10, 11, 2, 1, 20, 2};
  b.labels = {-100, 11, 2, -100, 20, 2, -100};
  b.position_ids = {0, 1, 2, 3, 0, 1, 2};
  b.cu_seqlens = {0, 4, 7};
  b.weights = {0, .25f, .25f, 0, .25f, .25f, 0};
  b.max_seqlen = 4;
  b.num_targets = 4;
  BatchTensors t = to_tensors(b);
  b = Batch{};  // tensors must own their data
  EXPECT_EQ(t.input_ids.scalar_type(), torch::kLong);
  EXPECT_EQ(t.cu_seqlens.scalar_type(), torch::kInt);
  EXPECT_EQ(t.weights.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(t.labels, torch::tensor({-100, 11, 2, -100, 20, 2, -100}, torch::kLong)));
  EXPECT_TRUE(torch::equal(t.cu_seqlens, torch::tensor({0, 4, 7}, torch::kInt)));
  EXPECT_TRUE(torch::equal(t.position_ids, torch::tensor({0, 1, 2, 3, 0, 1, 2}, torch::kLong)));
  EXPECT_FLOAT_EQ(t.weights.sum().item<float>(), 1.0f);
  EXPECT_EQ(t.max_seqlen, 4);
}

// Sequence boundaries are checked here, once per batch on the host, because the attention ops do
// not read them back from the GPU.
TEST(BatchTensors, RejectsBoundariesThatDoNotDescribeTheBatch) {
  Batch good;
  good.input_ids = {1, 2, 3, 4, 5};
  good.labels = good.position_ids = {0, 0, 0, 0, 0};
  good.weights = {0, 0, 0, 0, 0};
  good.cu_seqlens = {0, 2, 5};
  good.max_seqlen = 3;
  EXPECT_NO_THROW(to_tensors(good));
  auto expect_error = [&](auto change, const std::string& words) {
    Batch b = good;
    change(b);
    try {
      to_tensors(b);
      ADD_FAILURE() << "accepted a batch with bad cu_seqlens; expected: " << words;
    } catch (const longalign::RuntimeError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error([](Batch& b) { b.cu_seqlens = {0, 2, 4}; }, "ends at 4, not at the batch's 5 tokens");
  expect_error([](Batch& b) { b.cu_seqlens = {0, 3, 2, 5}; }, "decreases at index 2");
  expect_error([](Batch& b) { b.cu_seqlens = {1, 2, 5}; }, "must start at 0");
  expect_error([](Batch& b) { b.max_seqlen = 2; }, "sequence of 3 tokens, over max_seqlen 2");
}
