// The model's own autograd Functions (model/rms_norm.hpp, model/rope.hpp) against autograd on the
// plain ops they replace (HF's formulas): the forward bitwise equal (same ops, same order) in fp32
// and bf16, the gradients in fp64 equal to summation order: ~H u relative for RMSNorm's sums over
// 64 features, exact moves and sign flips for RoPE; 1e-12 of the largest gradient leaves room on
// any CPU while a wrong term is O(1).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/model/rms_norm.hpp"
#include "longalign/model/rope.hpp"

using namespace longalign;

namespace {

at::Tensor plain_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor xf = x.to(at::promote_types(x.scalar_type(), torch::kFloat));
  xf = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return w * xf.to(x.scalar_type());
}

at::Tensor rotate_plain(const at::Tensor& x, bool interleaved) {
  if (interleaved) {
    at::Tensor pairs = x.unflatten(-1, {-1, 2});
    return torch::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);
  }
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor plain_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved) {
  const int64_t rot = cos.size(-1);
  at::Tensor head = x.narrow(-1, 0, rot);
  at::Tensor turned = head * cos.unsqueeze(1) + rotate_plain(head, interleaved) * sin.unsqueeze(1);
  return rot == x.size(-1) ? turned : torch::cat({turned, x.narrow(-1, rot, x.size(-1) - rot)}, -1);
}

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  const double scale = want.abs().max().item<double>();
  ASSERT_GT(scale, 0) << what;
  EXPECT_LE((got - want).abs().max().item<double>(), 1e-12 * scale) << what;
}

}  // namespace

TEST(LeanAutograd, RmsNormForwardBitwiseGradientsAsAutograd) {
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    at::Tensor x = torch::randn({9, 64}).to(dtype), w = torch::randn({64}).to(dtype);
    EXPECT_TRUE(torch::equal(model::rms_norm(x, w, 1e-5), plain_rms_norm(x, w, 1e-5))) << c10::toString(dtype);
  }
  at::Tensor x0 = torch::randn({9, 64}, torch::kDouble) * 3, w0 = torch::randn({64}, torch::kDouble);
  at::Tensor gy = torch::randn({9, 64}, torch::kDouble);
  auto grads = [&](bool lean, bool weight_grad) {
    at::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(weight_grad);
    (lean ? model::rms_norm(x, w, 1e-5) : plain_rms_norm(x, w, 1e-5)).backward(gy);
    return std::make_pair(x.grad(), w.grad());
  };
  const auto [gx, gw] = grads(true, true);
  const auto [px, pw] = grads(false, true);
  expect_close(gx, px, "rms_norm dx");
  expect_close(gw, pw, "rms_norm dweight");
  const auto [fx, fw] = grads(true, false);  // a frozen weight (LoRA's base)
  expect_close(fx, px, "rms_norm dx, frozen weight");
  EXPECT_FALSE(fw.defined());
}

TEST(LeanAutograd, RopeForwardBitwiseGradientsAsAutograd) {
  torch::manual_seed(4);
  for (bool interleaved : {false, true})
    for (int64_t rot : {16, 8}) {  // whole head, and GLM's partial rotation
      const std::string what = std::string(interleaved ? "interleaved" : "halves") + ", rotary " + std::to_string(rot);
      at::Tensor pos = torch::arange(7, torch::kDouble).unsqueeze(1) * torch::rand({rot / 2}, torch::kDouble);
      at::Tensor emb = interleaved ? pos.repeat_interleave(2, -1) : torch::cat({pos, pos}, -1);
      at::Tensor cos = emb.cos(), sin = emb.sin();
      at::Tensor xf = torch::randn({7, 3, 16});
      EXPECT_TRUE(torch::equal(model::apply_rope(xf, cos.to(torch::kFloat), sin.to(torch::kFloat), interleaved),
                               plain_rope(xf, cos.to(torch::kFloat), sin.to(torch::kFloat), interleaved)))
          << what;
      at::Tensor x0 = torch::randn({7, 3, 16}, torch::kDouble), gy = torch::randn({7, 3, 16}, torch::kDouble);
      at::Tensor a = x0.clone().requires_grad_(true), b = x0.clone().requires_grad_(true);
      model::apply_rope(a, cos, sin, interleaved).backward(gy);
      plain_rope(b, cos, sin, interleaved).backward(gy);
      expect_close(a.grad(), b.grad(), what);
    }
}
