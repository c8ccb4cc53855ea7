// Weighted cross-entropy with the LM head folded in, computed in chunks of target tokens
// with its own backward, so a [tokens x vocab] logits tensor never exists in full (at 64k x
// 32k that would be 8 GB in fp32). Only positions with a label are projected at all.
//
//   loss = sum_t weights[t] * (logsumexp(h_t W^T) - (h_t W^T)[labels[t]])   over labels[t] != -100
#pragma once
#include <ATen/core/Tensor.h>

namespace longalign::ops {

// hidden [T, H], lm_weight [V, H] (same dtype), labels int64 [T] (-100 = ignore), weights f32 [T].
// Returns a 0-dim fp32 tensor; differentiable w.r.t. hidden and lm_weight.
at::Tensor weighted_lm_loss(const at::Tensor& hidden, const at::Tensor& lm_weight, const at::Tensor& labels,
                            const at::Tensor& weights, int64_t chunk_tokens = 4096);

// Per-token NLL [T] in fp32 (0 where labels == -100), chunked, without autograd: evaluation.
at::Tensor per_token_nll(const at::Tensor& hidden, const at::Tensor& lm_weight, const at::Tensor& labels,
                         int64_t chunk_tokens = 4096);

}  // namespace longalign::ops
