// The CUDA path (bf16 weights and activations) against the CPU fp32 path on the same weights:
// logits, the weighted loss and its gradients agree to bf16 accuracy. Skips without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/model/weights.hpp"
#include "longalign/ops/activation_checkpoint.hpp"
#include "longalign/ops/lm_loss.hpp"
#include "longalign/ops/varlen_attention.hpp"

using namespace longalign;

TEST(CudaParity, Bf16ModelLossAndGradsMatchCpuFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU here; scripts/gpu_check.sh runs this on the GPU machine";
  model::LlamaConfig c;
  c.vocab_size = 128, c.hidden_size = 64, c.intermediate_size = 128, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2;
  model::LlamaForCausalLM cpu(c), gpu(c);
  model::init_weights(*cpu, 0.05, 7);
  {
    torch::NoGradGuard ng;
    auto src = cpu->named_parameters();
    for (auto& p : gpu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  gpu->to(torch::kCUDA, torch::kBFloat16);
  auto ids = torch::randint(0, 128, {40}, torch::kLong);
  auto pos = torch::cat({torch::arange(25), torch::arange(15)});
  auto cu = torch::tensor({0, 25, 40}, torch::kInt);
  auto labels = torch::roll(ids, -1), weights = torch::full({40}, 1.0f / 40);
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  auto run = [&](model::LlamaForCausalLMImpl& m, torch::Device d) {
    model::PackedInput in{ids.to(d), pos.to(d), cu.to(d), 25};
    auto h = m.hidden_states(in, attention, ops::checkpointed_layers());
    auto loss = ops::weighted_lm_loss(h, m.lm_head_weight(), labels.to(d), weights.to(d));
    loss.backward();
    return std::make_pair(m.logits(h.detach()).cpu(), loss.item<double>());
  };
  auto [l_cpu, loss_cpu] = run(*cpu, torch::kCPU);
  auto [l_gpu, loss_gpu] = run(*gpu, torch::kCUDA);
  EXPECT_LT((l_cpu - l_gpu).abs().max().item<double>(), 0.05 * l_cpu.abs().max().item<double>());
  EXPECT_NEAR(loss_cpu, loss_gpu, 0.02 * loss_cpu);
  auto gc = cpu->named_parameters();
  for (auto& p : gpu->named_parameters()) {
    auto g = p.value().grad().to(torch::kCPU, torch::kFloat), ref = gc[p.key()].grad();
    EXPECT_LT((g - ref).norm().item<double>(), 0.1 * ref.norm().item<double>() + 1e-6) << p.key();
  }
}
