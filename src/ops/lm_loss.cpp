// Chunked LM-head + weighted CE as a custom autograd Function. Backward recomputes each chunk's
// logits (one extra matmul) instead of keeping them: memory O(chunk x vocab). The target rows are
// gathered a chunk at a time too, so nothing of size tokens x hidden exists beyond the gradient.
#include "longalign/ops/lm_loss.hpp"

#include <torch/torch.h>

namespace longalign::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct WeightedLmLoss : torch::autograd::Function<WeightedLmLoss> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& w,
                            const at::Tensor& labels, const at::Tensor& weights, int64_t chunk) {
    const auto acc = at::promote_types(hidden.scalar_type(), torch::kFloat);  // fp32, or fp64 in tests
    at::Tensor idx = (labels != -100).nonzero().squeeze(1);
    at::Tensor y = labels.index_select(0, idx);
    at::Tensor tw = weights.index_select(0, idx).to(acc);
    at::Tensor total = torch::zeros({}, hidden.options().dtype(acc));
    for (int64_t s = 0; s < idx.size(0); s += chunk) {
      const int64_t n = std::min(chunk, idx.size(0) - s);
      at::Tensor logits = torch::matmul(hidden.index_select(0, idx.narrow(0, s, n)), w.t()).to(acc);
      at::Tensor nll = torch::logsumexp(logits, -1) - logits.gather(1, y.narrow(0, s, n).unsqueeze(1)).squeeze(1);
      total += (nll * tw.narrow(0, s, n)).sum();
    }
    ctx->save_for_backward({hidden, w, idx, y, tw});
    ctx->saved_data["chunk"] = chunk;
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &hidden = saved[0], &w = saved[1], &idx = saved[2], &y = saved[3], &tw = saved[4];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto acc = tw.scalar_type();
    at::Tensor scale = tw * grad_out[0].to(acc);
    at::Tensor grad_hidden = torch::zeros_like(hidden);
    at::Tensor grad_w = torch::zeros(w.sizes(), w.options().dtype(acc));
    for (int64_t s = 0; s < idx.size(0); s += chunk) {
      const int64_t n = std::min(chunk, idx.size(0) - s);
      const at::Tensor rows = idx.narrow(0, s, n);
      at::Tensor hc = hidden.index_select(0, rows);
      at::Tensor g = torch::softmax(torch::matmul(hc, w.t()).to(acc), -1);  // d nll / d logits
      g.scatter_add_(1, y.narrow(0, s, n).unsqueeze(1), -torch::ones({n, 1}, g.options()));
      g.mul_(scale.narrow(0, s, n).unsqueeze(1));
      at::Tensor gc = g.to(w.scalar_type());
      grad_hidden.index_copy_(0, rows, torch::matmul(gc, w));  // each target row once
      grad_w.add_(torch::matmul(gc.t(), hc).to(acc));
    }
    return {grad_hidden, grad_w.to(w.scalar_type()), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor weighted_lm_loss(const at::Tensor& hidden, const at::Tensor& lm_weight, const at::Tensor& labels,
                            const at::Tensor& weights, int64_t chunk_tokens) {
  TORCH_CHECK(hidden.dim() == 2 && lm_weight.dim() == 2 && hidden.size(1) == lm_weight.size(1),
              "weighted_lm_loss: hidden [T, H] and lm_weight [V, H] expected");
  TORCH_CHECK(labels.size(0) == hidden.size(0) && weights.size(0) == hidden.size(0),
              "weighted_lm_loss: labels and weights must have one entry per token");
  TORCH_CHECK(chunk_tokens > 0, "weighted_lm_loss: chunk_tokens must be positive");
  return WeightedLmLoss::apply(hidden, lm_weight, labels, weights, chunk_tokens);
}

at::Tensor per_token_nll(const at::Tensor& hidden, const at::Tensor& lm_weight, const at::Tensor& labels,
                         int64_t chunk_tokens) {
  torch::NoGradGuard ng;
  at::Tensor out = torch::zeros({hidden.size(0)}, hidden.options().dtype(torch::kFloat));
  at::Tensor idx = (labels != -100).nonzero().squeeze(1);
  for (int64_t s = 0; s < idx.size(0); s += chunk_tokens) {
    at::Tensor rows = idx.narrow(0, s, std::min(chunk_tokens, idx.size(0) - s));
    at::Tensor logits = torch::matmul(hidden.index_select(0, rows), lm_weight.t()).to(torch::kFloat);
    at::Tensor y = labels.index_select(0, rows).unsqueeze(1);
    out.index_copy_(0, rows, torch::logsumexp(logits, -1) - logits.gather(1, y).squeeze(1));
  }
  return out;
}

}  // namespace longalign::ops
