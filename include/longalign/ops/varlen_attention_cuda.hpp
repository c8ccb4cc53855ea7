// The project's CUDA varlen attention as a differentiable torch op (see src/ops/varlen_attention_cuda.cpp).
#pragma once
#include <ATen/core/Tensor.h>

namespace longalign::ops {

bool cuda_kernel_supports(const at::Tensor& q);  // CUDA bf16 or fp16, head_dim 64 or 128
// deterministic: the backward computes dQ in its own pass instead of with fp32 atomics (bitwise
// reproducible, slower).
at::Tensor varlen_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale,
                                 bool deterministic = false);

}  // namespace longalign::ops
