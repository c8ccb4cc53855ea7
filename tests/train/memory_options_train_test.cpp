// The memory options through the parallelism pass, as the trainer sets them: the tiled MLP
// (train.tiled_mlp_tokens) and activation offload (train.offload_activations), at ZeRO-0 with
// checkpointing and in ZeRO-3's own layer loop (sharded_model.cpp: each layer gathered, run
// without a graph, recomputed with grad in backward), for full SFT and LoRA, in fp64 on one
// process. Tiling only reorders sums (~T ulps; tests/ops/tiled_mlp_test.cpp): 1e-12 relative.
// Offload moves the saved inputs through an exact copy: bitwise equal, and nothing stays held.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/model/lora.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "longalign/train/parallelize.hpp"

using namespace longalign;

namespace {

struct StepResult {
  double loss;
  std::vector<at::Tensor> grads;
};

StepResult micro_step(int zero, bool lora, int64_t tiled, bool offload = false) {
  model::LlamaConfig c;
  c.vocab_size = 64, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 2;
  c.num_attention_heads = 4, c.num_key_value_heads = 2;
  model::LlamaForCausalLM m(c);
  model::init_weights(*m, 0.1, 3);
  if (lora) {
    model::LoraConfig lc;
    lc.rank = 4;
    model::attach_lora(*m, lc, 7, "test");
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(99);
    for (auto& p : m->parameters())
      if (p.requires_grad()) p.add_(at::normal(0.0, 0.1, p.sizes(), gen));  // B off zero: every adapter gradient nonzero
  }
  train::ParallelOptions o;
  o.zero = zero;
  o.dtype = torch::kDouble;
  o.tiled_mlp_tokens = tiled;
  o.offload_activations = offload;
  o.attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  auto pm = train::parallelize(m, nullptr, o);
  const int64_t T = 20;
  torch::manual_seed(1);
  at::Tensor ids = torch::randint(0, 64, {T}, torch::kLong);
  train::MicroBatch b{{ids, torch::cat({torch::arange(12), torch::arange(8)}), torch::tensor({0, 12, 20}, torch::kInt), 12},
                      torch::roll(ids, -1), torch::full({T}, 0.05)};
  StepResult r;
  r.loss = pm->micro_step(b, true);
  pm->finish_gradients(true);
  for (size_t i = 0; i < pm->optimizer().num_params(); ++i) r.grads.push_back(pm->optimizer().grad_accumulator(i).clone());
  return r;
}

}  // namespace

TEST(TiledMlpTraining, GradientsEqualUntiledAtZero0AndZero3) {
  for (int zero : {0, 3}) {
    for (bool lora : {false, true}) {
      const StepResult ref = micro_step(zero, lora, 0);
      for (int64_t n : {5, 7}) {
        const StepResult got = micro_step(zero, lora, n);
        const std::string what =
            "ZeRO-" + std::to_string(zero) + (lora ? ", LoRA" : ", full") + ", chunk " + std::to_string(n);
        EXPECT_NEAR(got.loss, ref.loss, 1e-12 * std::abs(ref.loss)) << what;
        ASSERT_EQ(ref.grads.size(), got.grads.size());
        for (size_t i = 0; i < ref.grads.size(); ++i) {
          const double scale = ref.grads[i].abs().max().item<double>();
          EXPECT_GT(scale, 0) << what << ", parameter " << i;
          EXPECT_LE((ref.grads[i] - got.grads[i]).abs().max().item<double>(), 1e-12 * scale) << what << ", parameter " << i;
        }
      }
    }
  }
}

TEST(ActivationOffloadTraining, BitwiseEqualAtZero0AndZero3) {
  for (int zero : {0, 3}) {
    for (bool lora : {false, true}) {
      const StepResult ref = micro_step(zero, lora, 0);
      const StepResult got = micro_step(zero, lora, 7, true);  // with the tiled MLP, as at 512K
      const StepResult tiled = micro_step(zero, lora, 7);
      const std::string what = "ZeRO-" + std::to_string(zero) + (lora ? ", LoRA" : ", full");
      EXPECT_NEAR(got.loss, ref.loss, 1e-12 * std::abs(ref.loss)) << what;
      EXPECT_EQ(got.loss, tiled.loss) << what;
      ASSERT_EQ(tiled.grads.size(), got.grads.size());
      for (size_t i = 0; i < tiled.grads.size(); ++i) {
        EXPECT_GT(tiled.grads[i].abs().max().item<double>(), 0) << what << ", parameter " << i;
        EXPECT_TRUE(torch::equal(tiled.grads[i], got.grads[i])) << what << ", parameter " << i;
      }
    }
  }
}
