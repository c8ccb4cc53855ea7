// The project's CUDA varlen attention as a differentiable torch op (see src/ops/varlen_attention_cuda.cpp).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace longalign::ops {

// Empty when the kernel serves q (CUDA bf16 or fp16, head_dim 64 or 128, on a device of compute
// capability >= 8.0 that grants the kernels' shared memory); otherwise why not.
std::string cuda_kernel_support_problem(const at::Tensor& q);
inline bool cuda_kernel_supports(const at::Tensor& q) { return cuda_kernel_support_problem(q).empty(); }

// deterministic: the backward computes dQ in its own pass instead of with fp32 atomics (bitwise
// reproducible, slower). cu_seqlens must already be valid (checked on the host before upload).
// Throws UsageError, with the reason, where the kernel does not serve q.
at::Tensor varlen_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale,
                                 bool deterministic = false);

}  // namespace longalign::ops
