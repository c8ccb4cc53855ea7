// Activation checkpointing changes memory, not math: the loss and every parameter gradient
// equal those of the plain forward/backward. In fp64: the recompute repeats the forward exactly,
// and the backward may only add gradient contributions in another order (~1e-16 relative; 1e-12
// of the largest gradient leaves room on any CPU while a missed or doubled term is O(1)).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/model/weights.hpp"
#include "longalign/ops/activation_checkpoint.hpp"
#include "longalign/ops/lm_loss.hpp"
#include "longalign/ops/varlen_attention.hpp"

using namespace longalign;

TEST(ActivationCheckpoint, SameLossAndGradientsAsWithout) {
  model::LlamaConfig c;
  c.vocab_size = 64, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 3;
  c.num_attention_heads = 4, c.num_key_value_heads = 2;
  model::LlamaForCausalLM m(c);
  model::init_weights(*m, 0.1, 3);
  m->to(torch::kDouble);
  auto ids = torch::randint(0, 64, {20}, torch::kLong);
  model::PackedInput in{ids, torch::cat({torch::arange(12), torch::arange(8)}), torch::tensor({0, 12, 20}, torch::kInt), 12};
  auto labels = torch::roll(ids, -1);
  auto weights = torch::full({20}, 0.05, torch::kDouble);
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };

  auto run = [&](const model::LayerRunner& runner) {
    m->zero_grad();
    auto loss = ops::weighted_lm_loss(m->hidden_states(in, attention, runner), m->lm_head_weight(), labels, weights);
    loss.backward();
    std::vector<at::Tensor> grads;
    for (auto& p : m->parameters()) grads.push_back(p.grad().clone());
    return std::make_pair(loss.item<double>(), grads);
  };
  auto [plain_loss, plain] = run({});
  auto [ckpt_loss, ckpt] = run(ops::checkpointed_layers());
  auto offload = std::make_shared<ops::ActivationOffload>();
  auto [off_loss, off] = run(ops::checkpointed_layers(offload));
  EXPECT_EQ(off_loss, ckpt_loss);
  ASSERT_EQ(off.size(), ckpt.size());
  for (size_t i = 0; i < off.size(); ++i) EXPECT_TRUE(torch::equal(off[i], ckpt[i])) << "offload, parameter " << i;
  EXPECT_EQ(offload->held(), 0);
  {
    auto loss = ops::weighted_lm_loss(m->hidden_states(in, attention, ops::checkpointed_layers(offload)),
                                      m->lm_head_weight(), labels, weights);
    EXPECT_EQ(offload->held(), c.num_hidden_layers);  // every layer's input, until backward
    loss.backward();
    EXPECT_EQ(offload->held(), 0);
  }
  EXPECT_DOUBLE_EQ(plain_loss, ckpt_loss);
  ASSERT_EQ(plain.size(), ckpt.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_GT(plain[i].abs().sum().item<double>(), 0) << "parameter " << i << " got no gradient";
    EXPECT_LE((plain[i] - ckpt[i]).abs().max().item<double>(), 1e-12 * plain[i].abs().max().item<double>())
        << "parameter " << i;
  }
}
