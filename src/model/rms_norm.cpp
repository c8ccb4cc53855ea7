// The RMSNorm autograd Function; see the header. With n = x * r, r = (mean(x^2) + eps)^-1/2 over
// the H features of a token, and g the gradient reaching n (the output's times the weight):
//   dx = r * g - x * r^3 * sum(g * x) / H,   dweight = sum over tokens of (output gradient * n).
#include "longalign/model/rms_norm.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

namespace longalign::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::ScalarType acc_of(const at::Tensor& x) { return at::promote_types(x.scalar_type(), at::kFloat); }

struct RmsNorm : torch::autograd::Function<RmsNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, double eps) {
    const at::Tensor xf = x.to(acc_of(x));
    const at::Tensor r = at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    ctx->save_for_backward({x, weight, r});
    return weight * (xf * r).to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &weight = saved[1], &r = saved[2];
    const at::Tensor& gy = grad_out[0];
    const at::Tensor xf = x.to(acc_of(x));
    at::Tensor gw;
    if (ctx->needs_input_grad(1)) {
      const at::Tensor n = (xf * r).to(x.scalar_type());
      gw = (gy * n).reshape({-1, n.size(-1)}).sum(0).to(weight.scalar_type());
    }
    at::Tensor gx;
    if (ctx->needs_input_grad(0)) {
      const at::Tensor g = (gy * weight).to(acc_of(x));
      const at::Tensor dot = (g * xf).mean(-1, /*keepdim=*/true);
      gx = (r * g - xf * (r * r * r * dot)).to(x.scalar_type());
    }
    return {gx, gw, at::Tensor()};
  }
};

}  // namespace

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  return RmsNorm::apply(x, weight, eps);
}

}  // namespace longalign::model
