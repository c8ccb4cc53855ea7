// Batch -> tensors keeps every value and picks the dtypes the model and kernels expect.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "longalign/data/batch_tensors.hpp"

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
