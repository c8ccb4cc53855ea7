// On a GPU: the project's CUDA varlen attention kernel (forward and backward, through the
// autograd wrapper) against the reference op in fp64 on the same bf16/fp16 inputs, with ragged
// lengths (1, off-tile), GQA 4:1 and 1:1, head_dim 64 and 128, atomic and deterministic dQ.
// Skips without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/ops/cuda_kernel_self_check.hpp"
#include "longalign/ops/varlen_attention.hpp"

using namespace longalign;

TEST(CudaKernel, MatchesReferenceForwardAndBackward) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU here; scripts/gpu_check.sh runs this on the GPU machine";
  for (bool deterministic : {false, true})
  for (auto dtype : {torch::kBFloat16, torch::kHalf})
  for (int64_t d : {64, 128})
    for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{8, 2}, std::pair<int64_t, int64_t>{4, 4}}) {
      const double tol = dtype == torch::kHalf ? 2e-3 : 2e-2;
      std::vector<int> cu = {0, 1, 130, 200, 456};
      const int64_t total = cu.back();
      auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
      auto q = torch::randn({total, hq, d}, opts).requires_grad_(), k = torch::randn({total, hkv, d}, opts).requires_grad_(),
           v = torch::randn({total, hkv, d}, opts).requires_grad_();
      auto go = torch::randn({total, hq, d}, opts);
      auto cu_t = torch::tensor(cu, torch::kInt).to(torch::kCUDA);
      const double scale = 1.0 / std::sqrt(double(d));
      auto o = ops::varlen_attention(q, k, v, cu_t, 256, scale, ops::AttentionBackend::cuda, deterministic);
      o.backward(go);
      auto q64 = q.detach().to(torch::kDouble).cpu().requires_grad_(), k64 = k.detach().to(torch::kDouble).cpu().requires_grad_(),
           v64 = v.detach().to(torch::kDouble).cpu().requires_grad_();
      auto ref = ops::varlen_attention_reference(q64, k64, v64, cu_t.cpu(), 256, scale);
      ref.backward(go.to(torch::kDouble).cpu());
      auto rel = [](const at::Tensor& a, const at::Tensor& b) {
        return ((a.to(torch::kDouble).cpu() - b).abs().max() / b.abs().max()).item<double>();
      };
      SCOPED_TRACE(std::string(deterministic ? "deterministic " : "atomic dQ ") + (dtype == torch::kHalf ? "fp16" : "bf16") +
                   " D=" + std::to_string(d) + " GQA " +
                   std::to_string(hq) + ":" + std::to_string(hkv));
      EXPECT_LT(rel(o.detach(), ref.detach()), tol);
      EXPECT_LT(rel(q.grad(), q64.grad()), tol);
      EXPECT_LT(rel(k.grad(), k64.grad()), tol);
      EXPECT_LT(rel(v.grad(), v64.grad()), tol);
    }
}

// `auto` follows its self-check's verdict: the project's kernel (output bit-identical to `cuda`'s)
// where the child found it correct and at least as fast as FlashAttention-2, else FlashAttention-2
// (bit-identical to `flash`'s). On a GPU the kernel must at least be found correct.
TEST(CudaKernel, AutoFollowsItsSelfCheck) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU here; scripts/gpu_check.sh runs this on the GPU machine";
  auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto q = torch::randn({300, 8, 128}, opts), k = torch::randn({300, 2, 128}, opts), v = torch::randn({300, 2, 128}, opts);
  auto cu = torch::tensor({0, 100, 300}, torch::kInt).to(torch::kCUDA);
  const ops::KernelVerdict verdict = ops::cuda_kernel_verdict(q, 2);
  EXPECT_TRUE(verdict.correct) << verdict.message;
  auto via_auto = ops::varlen_attention(q, k, v, cu, 200, 0.088, ops::AttentionBackend::automatic);
  const auto chosen = verdict.use_kernel ? ops::AttentionBackend::cuda : ops::AttentionBackend::flash;
  auto via_chosen = ops::varlen_attention(q, k, v, cu, 200, 0.088, chosen);
  EXPECT_TRUE(torch::equal(via_auto, via_chosen)) << "auto did not follow its verdict: " << verdict.message;
}

// No launch for an empty batch (an empty grid is a CUDA error); the outputs are empty too.
TEST(CudaKernel, EmptyBatchLaunchesNothing) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU here; scripts/gpu_check.sh runs this on the GPU machine";
  auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto q = torch::randn({0, 8, 128}, opts).requires_grad_(), k = torch::randn({0, 2, 128}, opts).requires_grad_(),
       v = torch::randn({0, 2, 128}, opts).requires_grad_();
  auto cu = torch::tensor({0, 0}, torch::kInt).to(torch::kCUDA);
  auto o = ops::varlen_attention(q, k, v, cu, 0, 0.088, ops::AttentionBackend::cuda);
  auto g = torch::autograd::grad({o}, {q, k, v}, {torch::zeros_like(o)});
  torch::cuda::synchronize();
  EXPECT_EQ(o.numel(), 0);
  EXPECT_EQ(g[0].numel(), 0);
}

// The deterministic backward is bitwise reproducible run to run.
TEST(CudaKernel, DeterministicBackwardIsReproducible) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA GPU here; scripts/gpu_check.sh runs this on the GPU machine";
  auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kBFloat16);
  auto q = torch::randn({700, 8, 128}, opts).requires_grad_(), k = torch::randn({700, 2, 128}, opts).requires_grad_(),
       v = torch::randn({700, 2, 128}, opts).requires_grad_();
  auto go = torch::randn({700, 8, 128}, opts);
  auto cu = torch::tensor({0, 500, 700}, torch::kInt).to(torch::kCUDA);
  auto grads = [&] {
    auto o = ops::varlen_attention(q, k, v, cu, 500, 0.088, ops::AttentionBackend::cuda, /*deterministic=*/true);
    return torch::autograd::grad({o}, {q, k, v}, {go});
  };
  auto a = grads(), b = grads();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "gradient " << i;
}
