// One-time on-device check of the project's CUDA attention kernel (see the header for why).
#include "longalign/ops/cuda_kernel_self_check.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "longalign/core/log.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "longalign/ops/varlen_attention_cuda.hpp"

namespace longalign::ops {
namespace {

// Worst relative error (max |kernel - reference| / max |reference|) over o, dq, dk and dv, on
// lengths 1, 77, 64, 150 (off-tile, one full tile, three tiles) with GQA 2:1, with the atomic and
// the deterministic dQ.
double self_check_error(const at::Tensor& like) {
  at::AutoGradMode grad_mode(true);
  const int64_t hq = 4, hkv = 2, d = like.size(2), total = 292, max_len = 150;
  auto gen = at::detail::createCPUGenerator(20240101);
  auto opts = torch::TensorOptions().device(like.device()).dtype(like.scalar_type());
  auto rnd = [&](int64_t h) { return at::randn({total, h, d}, gen, torch::kFloat).to(opts); };
  at::Tensor q = rnd(hq).requires_grad_(), k = rnd(hkv).requires_grad_(), v = rnd(hkv).requires_grad_(), go = rnd(hq);
  at::Tensor cu = torch::tensor({0, 1, 78, 142, 292}, torch::kInt).to(like.device());
  const double scale = 1.0 / std::sqrt(double(d));
  at::Tensor qf = q.detach().to(torch::kFloat).requires_grad_(), kf = k.detach().to(torch::kFloat).requires_grad_(),
             vf = v.detach().to(torch::kFloat).requires_grad_();
  at::Tensor ref = varlen_attention_reference(qf, kf, vf, cu, max_len, scale);
  auto gr = torch::autograd::grad({ref}, {qf, kf, vf}, {go.to(torch::kFloat)});
  double worst = 0;
  auto rel = [&](const at::Tensor& got, const at::Tensor& want) {
    const double e = ((got.to(torch::kFloat) - want).abs().max() / want.abs().max()).item<double>();
    worst = std::isfinite(e) ? std::max(worst, e) : INFINITY;
  };
  for (bool deterministic : {false, true}) {
    at::Tensor o = varlen_attention_cuda(q, k, v, cu, max_len, scale, deterministic);
    auto g = torch::autograd::grad({o}, {q, k, v}, {go});
    rel(o.detach(), ref.detach());
    for (int i = 0; i < 3; ++i) rel(g[i], gr[i]);
  }
  return worst;
}

}  // namespace

bool cuda_kernel_passes_self_check(const at::Tensor& q) {
  static std::mutex mu;
  static std::map<std::tuple<int, int, int64_t>, bool> verdicts;
  const std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_tuple(int(q.device().index()), int(q.scalar_type()), q.size(2));
  if (auto it = verdicts.find(key); it != verdicts.end()) return it->second;
  const bool fp16 = q.scalar_type() == at::kHalf;
  // Loose enough for rounding (P and dS are rounded to 16 bits, as in FlashAttention), far below
  // what a wrong row, tile or fragment gives (order 1).
  const double tol = fp16 ? 1e-2 : 5e-2;
  std::ostringstream what;
  what << "attention kernel self-check (" << (fp16 ? "fp16" : "bf16") << ", head_dim " << q.size(2) << ", "
       << q.device() << "): ";
  bool ok = false;
  try {
    const double err = self_check_error(q);
    ok = err < tol;
    what << "relative error " << err << (ok ? " < " : " >= ") << tol;
  } catch (const std::exception& e) {
    what << "failed to run: " << e.what();
  }
  if (ok) log::info(what.str() + "; attention.backend auto uses the project's kernel");
  else log::warn(what.str() + "; attention.backend auto falls back to FlashAttention-2. Please report this.");
  verdicts[key] = ok;
  return ok;
}

}  // namespace longalign::ops
