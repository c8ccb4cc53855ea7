// The tiled MLP changes memory, not math. In fp64 on a small random model, tiled equals untiled
// for the output/loss, the input gradient and every parameter gradient (full SFT, and LoRA with
// B moved off zero), with chunks that do and do not divide the token count, with and without
// activation checkpointing. Tolerance: a row of a matmul does not depend on the other rows, so
// chunking changes the forward only through BLAS blocking (a few ulps); parameter gradients sum
// per chunk and then over chunks, a reordering of at most T terms (T x 1.1e-16 ~ 1e-14 relative
// for these T). 1e-12 of the largest value leaves room on any CPU, while a dropped, doubled or
// misplaced chunk is an O(1) error. With LoRA dropout the tiled masks are keyed on the chunk: the
// reference is then the same chunks computed with an ordinary autograd graph.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/model/lora.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/activation_checkpoint.hpp"
#include "longalign/ops/lm_loss.hpp"
#include "longalign/ops/tiled_mlp.hpp"
#include "longalign/ops/varlen_attention.hpp"

using namespace longalign;

namespace {

constexpr double kRel = 1e-12;

double max_abs(const at::Tensor& t) { return t.abs().max().item<double>(); }

void expect_close(const at::Tensor& ref, const at::Tensor& got, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": no gradient";
  EXPECT_GT(max_abs(ref), 0) << what << " is zero: the check would be empty";
  EXPECT_LE(max_abs(ref - got), kRel * max_abs(ref)) << what;
}

// glm: the fused gate_up_proj carries one adapter for both halves of the MLP's input projection.
model::LlamaConfig small(const std::string& type = "llama") {
  model::LlamaConfig c;
  c.vocab_size = 64, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 3;
  c.num_attention_heads = 4, c.num_key_value_heads = 2;
  c.model_type = type;
  if (c.is_glm()) c.partial_rotary_factor = 0.5, c.qkv_bias = true;
  return c;
}

// LoRA on every projection, B and A moved off their init so that every adapter gradient is nonzero.
void attach(model::LlamaForCausalLMImpl& m, double dropout) {
  model::LoraConfig lc;
  lc.rank = 4;
  lc.dropout = dropout;
  model::attach_lora(m, lc, 7, "test");
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(99);
  for (auto& p : m.parameters())
    if (p.requires_grad()) p.add_(at::normal(0.0, 0.1, p.sizes(), gen).to(p.scalar_type()));
}

model::LlamaForCausalLM make_model(bool lora, double dropout = 0, const std::string& type = "llama") {
  model::LlamaForCausalLM m(small(type));
  model::init_weights(*m, 0.1, 3);
  if (lora) attach(*m, dropout);
  m->to(torch::kDouble);
  return m;
}

struct Result {
  double loss;
  std::vector<std::pair<std::string, at::Tensor>> grads;  // trained parameters only
};

// Two packed sequences, 12 + 8 = 20 tokens.
Result run(model::LlamaForCausalLMImpl& m, const model::LayerRunner& runner, const model::MlpFn& mlp) {
  torch::manual_seed(1);
  auto ids = torch::randint(0, 64, {20}, torch::kLong);
  model::PackedInput in{ids, torch::cat({torch::arange(12), torch::arange(8)}), torch::tensor({0, 12, 20}, torch::kInt), 12};
  auto labels = torch::roll(ids, -1);
  auto weights = torch::full({20}, 0.05, torch::kDouble);
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  m.zero_grad();
  auto loss = ops::weighted_lm_loss(m.hidden_states(in, attention, runner, mlp), m.lm_head_weight(), labels, weights);
  loss.backward();
  Result r{loss.item<double>(), {}};
  for (auto& p : m.named_parameters())
    if (p.value().requires_grad()) r.grads.emplace_back(p.key(), p.value().grad().defined() ? p.value().grad().clone() : at::Tensor());
  return r;
}

void expect_same(const Result& ref, const Result& got, const std::string& what) {
  EXPECT_NEAR(got.loss, ref.loss, kRel * std::abs(ref.loss)) << what;
  ASSERT_EQ(ref.grads.size(), got.grads.size());
  for (size_t i = 0; i < ref.grads.size(); ++i) expect_close(ref.grads[i].second, got.grads[i].second, what + " " + ref.grads[i].first);
}

}  // namespace

// The op alone: output, input gradient and parameter gradients, chunk sizes that divide 36
// tokens (4, 12), do not (5, 7, 1 is every token alone) and cover it (36, 100: the plain call).
TEST(TiledMlp, OpEqualsUntiled) {
  for (bool lora : {false, true}) {
    auto m = make_model(lora);
    auto& mlp = *m->model->layers[1]->as<model::LlamaDecoderLayerImpl>()->mlp;
    auto gen = at::detail::createCPUGenerator(5);
    const at::Tensor x0 = at::normal(0.0, 1.0, {36, 32}, gen).to(torch::kDouble);
    const at::Tensor gy = at::normal(0.0, 1.0, {36, 32}, gen).to(torch::kDouble);
    auto once = [&](const model::MlpFn& fn) {
      m->zero_grad();
      at::Tensor x = x0.clone().requires_grad_(true);
      at::Tensor y = fn ? fn(mlp, x) : mlp.forward(x);
      y.backward(gy);
      std::vector<at::Tensor> out = {y.detach(), x.grad()};
      for (auto& p : mlp.parameters())
        if (p.requires_grad()) out.push_back(p.grad().clone());
      return out;
    };
    const auto ref = once({});
    ASSERT_EQ(ref.size(), lora ? 2u + 6u : 2u + 3u);  // LoRA: A and B of gate, up, down; base frozen
    for (int64_t n : {1, 4, 5, 7, 12, 36, 100}) {
      const auto got = once(ops::tiled_mlp(n));
      const std::string what = std::string(lora ? "LoRA" : "full") + ", chunk " + std::to_string(n);
      expect_close(ref[0], got[0], what + ": output");
      expect_close(ref[1], got[1], what + ": input gradient");
      for (size_t i = 2; i < ref.size(); ++i) expect_close(ref[i], got[i], what + ": parameter " + std::to_string(i - 2));
    }
  }
}

// The whole model: loss and every trained parameter's gradient (embedding included under full
// SFT: the input gradient of the first layer lands there), with and without checkpointing.
TEST(TiledMlp, ModelEqualsUntiledWithAndWithoutCheckpointing) {
  for (const auto& [lora, type] : {std::pair{false, "llama"}, {true, "llama"}, {true, "glm"}}) {
    auto m = make_model(lora, 0, type);
    const Result ref = run(*m, {}, {});
    for (int64_t n : {3, 5, 7}) {  // 20 tokens: 5 divides, 3 and 7 do not
      for (bool ckpt : {false, true}) {
        const Result got = run(*m, ckpt ? ops::checkpointed_layers() : model::LayerRunner{}, ops::tiled_mlp(n));
        expect_same(ref, got, std::string(lora ? "LoRA " : "full ") + type + ", chunk " + std::to_string(n) +
                                  (ckpt ? ", checkpointed" : ""));
      }
    }
  }
}

// LoRA dropout: the chunks' masks are keyed on the chunk, so the op's backward (and the layer's
// recompute under checkpointing) must draw the forward's masks: its gradients equal those of the
// same chunks run with a plain autograd graph. Untiled masks are a different draw.
TEST(TiledMlp, LoraDropoutMasksRepeatInBackward) {
  for (const char* type : {"llama", "glm"}) {
    SCOPED_TRACE(type);
    auto m = make_model(true, 0.3, type);
    m->train();
    const auto state = model::lora_dropout_state(*m);
    ASSERT_TRUE(state);
    const int64_t n = 6;
    // The reference: what the op computes, recorded whole by autograd.
    model::MlpFn graph = [&](model::LlamaMLPImpl& mlp, const at::Tensor& x) {
      std::vector<at::Tensor> ys;
      for (int64_t s = 0, c = 0; s < x.size(0); s += n, ++c) {
        state->chunk = c + 1;
        ys.push_back(mlp.forward(x.narrow(0, s, std::min(n, x.size(0) - s))));
      }
      state->chunk = 0;
      return torch::cat(ys);
    };
    const Result ref = run(*m, {}, graph);
    expect_same(ref, run(*m, {}, ops::tiled_mlp(n)), "dropout, tiled");
    expect_same(ref, run(*m, ops::checkpointed_layers(), ops::tiled_mlp(n)), "dropout, tiled, checkpointed");
    const Result untiled = run(*m, {}, {});
    EXPECT_GT(std::abs(untiled.loss - ref.loss), 1e-9) << "tiled masks should be a different draw";
    // One chunk (the micro-step fits): the untiled masks exactly.
    expect_same(untiled, run(*m, {}, ops::tiled_mlp(1000)), "dropout, one chunk");
  }
}

// Chunks draw different masks: identical input chunks give different outputs under dropout.
TEST(TiledMlp, LoraDropoutChunksGetDifferentMasks) {
  auto m = make_model(true, 0.5);
  m->train();
  auto& mlp = *m->model->layers[0]->as<model::LlamaDecoderLayerImpl>()->mlp;
  auto gen = at::detail::createCPUGenerator(5);
  const at::Tensor block = at::normal(0.0, 1.0, {8, 32}, gen).to(torch::kDouble);
  torch::NoGradGuard ng;
  const at::Tensor y = ops::tiled_mlp(8)(mlp, torch::cat({block, block, block}));
  EXPECT_GT(max_abs(y.narrow(0, 0, 8) - y.narrow(0, 8, 8)), 1e-6);
  EXPECT_GT(max_abs(y.narrow(0, 8, 8) - y.narrow(0, 16, 8)), 1e-6);
  EXPECT_EQ(model::lora_dropout_state(*m)->chunk, 0);  // the key is restored after the op
}
