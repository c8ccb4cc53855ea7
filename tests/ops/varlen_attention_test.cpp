// Reference varlen attention against an independent dense oracle in fp64: one total x total
// block-diagonal causal mask (fine at test sizes), GQA by explicit head mapping.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/core/error.hpp"
#include "longalign/ops/varlen_attention.hpp"

using namespace longalign;

namespace {

at::Tensor dense_oracle(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const std::vector<int>& cu,
                        double scale) {
  const int64_t total = q.size(0), hq = q.size(1), hkv = k.size(1);
  std::vector<int> seq(total);
  for (size_t b = 0; b + 1 < cu.size(); ++b)
    for (int t = cu[b]; t < cu[b + 1]; ++t) seq[t] = int(b);
  auto allowed = torch::zeros({total, total}, torch::kBool);
  for (int i = 0; i < total; ++i)
    for (int j = 0; j <= i; ++j) allowed[i][j] = seq[i] == seq[j];
  auto out = torch::empty({total, hq, q.size(2)}, torch::kDouble);
  for (int64_t h = 0; h < hq; ++h) {
    int64_t kvh = h / (hq / hkv);
    auto s = torch::matmul(q.select(1, h).to(torch::kDouble), k.select(1, kvh).to(torch::kDouble).t()) * scale;
    s = s.masked_fill(~allowed, -INFINITY);
    out.select(1, h).copy_(torch::matmul(torch::softmax(s, -1), v.select(1, kvh).to(torch::kDouble)));
  }
  return out;
}

}  // namespace

TEST(VarlenAttention, ReferenceMatchesDenseOracleWithGqaAndRaggedLengths) {
  torch::manual_seed(0);
  std::vector<int> cu = {0, 1, 8, 25, 26, 40};  // includes length-1 sequences
  const int64_t total = cu.back();
  // The op computes in its inputs' precision (fp32, or fp64 for fp64 inputs). Its rounding
  // differs from the oracle's by at most ~(head_dim + keys) u per score and output sum, relative
  // to max|v| (softmax weights sum to 1): 4 (D + L) u max|v| allows that with room, while a wrong
  // mask or head mapping errs by O(max|v|).
  for (auto [dtype, u] : {std::pair{torch::kDouble, std::ldexp(1.0, -53)}, std::pair{torch::kFloat, std::ldexp(1.0, -24)}})
    for (auto [hq, hkv] : {std::pair{4, 4}, std::pair{4, 1}, std::pair{8, 2}}) {
      auto q = torch::randn({total, hq, 16}, dtype), k = torch::randn({total, hkv, 16}, dtype),
           v = torch::randn({total, hkv, 16}, dtype);
      auto cu_t = torch::tensor(cu, torch::kInt);
      auto expect = dense_oracle(q, k, v, cu, 0.25);
      const double tol = 4 * (16 + 17) * u * v.abs().max().item<double>();
      for (int64_t block : {3, 1024}) {  // query blocking must not change the result
        auto got = ops::varlen_attention_reference(q, k, v, cu_t, 17, 0.25, block);
        EXPECT_EQ(got.scalar_type(), dtype);
        EXPECT_LT((got.to(torch::kDouble) - expect).abs().max().item<double>(), tol)
            << c10::toString(dtype) << " " << hq << ":" << hkv << " block " << block;
      }
    }
}

TEST(VarlenAttention, GradientsFlowAndMatchTheOracle) {
  torch::manual_seed(1);
  std::vector<int> cu = {0, 5, 12};
  auto q = torch::randn({12, 2, 8}, torch::kDouble).requires_grad_(), k = torch::randn({12, 1, 8}, torch::kDouble).requires_grad_(),
       v = torch::randn({12, 1, 8}, torch::kDouble).requires_grad_();
  auto w = torch::randn({12, 2, 8}, torch::kDouble);
  (ops::varlen_attention_reference(q, k, v, torch::tensor(cu, torch::kInt), 7, 0.3, 4).to(torch::kDouble) * w).sum().backward();
  auto gq = q.grad().clone(), gk = k.grad().clone(), gv = v.grad().clone();
  q.grad().zero_(), k.grad().zero_(), v.grad().zero_();
  (dense_oracle(q, k, v, cu, 0.3) * w).sum().backward();
  // fp64 throughout: the two differ by summation order only, ~(D + L) u times the gradients'
  // scale (O(10) here): 1e-12 is 50x that, and any wrong term is O(1).
  EXPECT_LT((gq - q.grad()).abs().max().item<double>(), 1e-12);
  EXPECT_LT((gk - k.grad()).abs().max().item<double>(), 1e-12);
  EXPECT_LT((gv - v.grad()).abs().max().item<double>(), 1e-12);
}

TEST(VarlenAttention, BadInputsAreClearErrors) {
  auto q = torch::randn({4, 3, 8}), k = torch::randn({4, 2, 8});
  EXPECT_THROW(ops::varlen_attention(q, k, k, torch::tensor({0, 4}, torch::kInt), 4, 1.0), RuntimeError);  // 3 % 2
  EXPECT_THROW(ops::varlen_attention(q, q, q, torch::tensor({0, 4}, torch::kLong), 4, 1.0), RuntimeError);  // int64 cu
  EXPECT_THROW(ops::varlen_attention(q, q, q, torch::tensor({0, 3}, torch::kInt), 4, 1.0), RuntimeError);  // cu end
  EXPECT_THROW(ops::varlen_attention(q, q, q, torch::tensor({0, 4}, torch::kInt), 4, 1.0, ops::AttentionBackend::cuda),
               UsageError);
}
