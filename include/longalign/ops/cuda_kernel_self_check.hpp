// The guard behind `attention.backend: auto`: before the project's CUDA kernel serves a
// (device, dtype, head_dim) for the first time, it runs forward and backward once on a small
// ragged GQA problem and must match the reference op. A kernel that fails (wrong results, a
// launch error) is never used by `auto`, which falls back to FlashAttention-2 with a warning.
#pragma once
#include <ATen/core/Tensor.h>

namespace longalign::ops {

// Runs the check once per (device, dtype, head_dim) of `q` and remembers the verdict.
bool cuda_kernel_passes_self_check(const at::Tensor& q);

}  // namespace longalign::ops
