// The chunked, LM-head-folded weighted loss equals the plain unchunked computation (full
// logits, log_softmax, weighted NLL, torch autograd) in value and in both gradients.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/ops/lm_loss.hpp"

using namespace longalign;

TEST(LmLoss, ChunkedEqualsUnchunkedValueAndGradients) {
  torch::manual_seed(0);
  const int64_t T = 37, H = 16, V = 50;
  auto labels = torch::randint(0, V, {T}, torch::kLong);
  labels.index_put_({torch::randperm(T).narrow(0, 0, 12)}, -100);
  auto weights = torch::rand({T}) * (labels != -100).to(torch::kFloat);
  auto h0 = torch::randn({T, H}, torch::kDouble), w0 = torch::randn({V, H}, torch::kDouble);

  auto h1 = h0.clone().requires_grad_(), w1 = w0.clone().requires_grad_();
  auto logp = torch::log_softmax(torch::matmul(h1, w1.t()), -1);
  auto valid = labels != -100;
  auto nll = -logp.gather(1, labels.clamp_min(0).unsqueeze(1)).squeeze(1);
  auto expect = (nll * weights.to(torch::kDouble) * valid.to(torch::kDouble)).sum();
  expect.backward();

  for (int64_t chunk : {1, 4, 1000}) {
    auto h2 = h0.clone().requires_grad_(), w2 = w0.clone().requires_grad_();
    auto got = ops::weighted_lm_loss(h2, w2, labels, weights, chunk);
    (got * 2.0).backward();  // a non-unit upstream gradient must be honoured
    EXPECT_NEAR(got.item<double>(), expect.item<double>(), 1e-5) << "chunk " << chunk;
    EXPECT_LT((h2.grad() - 2 * h1.grad()).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
    EXPECT_LT((w2.grad() - 2 * w1.grad()).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
  }
}
