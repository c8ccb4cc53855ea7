// RMSNorm as HF computes it (x upcast to fp32, x * rsqrt(mean(x^2) + eps), cast back, times the
// weight), as one autograd Function. Autograd on those ops would keep the fp32 copy of x and the
// normalized x for backward: 6 bytes of hidden size a token in bf16, 48 KB a token over a layer's
// two norms for an 8B model, 24 GB at 512K tokens. This keeps x (which its producer keeps anyway:
// the layer input, or the residual) and rstd, one fp32 value a token, and recomputes the rest.
// The forward runs the same ops, so its output is bitwise HF's; the backward is the analytic one.
#pragma once
#include <ATen/core/Tensor.h>

namespace longalign::model {

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

}  // namespace longalign::model
