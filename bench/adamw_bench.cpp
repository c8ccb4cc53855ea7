// The optimizer update on the host, as optimizer offload runs it: this project's AdamW (one fused
// SSE pass per tensor, all cores) beside LibTorch's torch::optim::AdamW (tensor ops) on the same
// fp32 parameters and gradients. Prints ms per step and the memory traffic it sustains (28 bytes
// per parameter: read w, g, m, v; write w, m, v).
//   adamw_bench [--params N (millions, default 64)] [--tensors K (default 8)] [--steps S (default 5)]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "longalign/train/adamw.hpp"

using namespace longalign;

int main(int argc, char** argv) {
  int64_t millions = 64, tensors = 8, steps = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int64_t v = std::atoll(argv[i + 1]);
    if (a == "--params") millions = v;
    else if (a == "--tensors") tensors = v;
    else if (a == "--steps") steps = v;
  }
  const int64_t per = millions * 1000000 / tensors;
  torch::manual_seed(0);
  std::vector<std::pair<std::string, at::Tensor>> ours;
  std::vector<at::Tensor> theirs, grads;
  for (int64_t t = 0; t < tensors; ++t) {
    at::Tensor w = torch::randn({per / 1024, 1024});
    ours.emplace_back("w" + std::to_string(t), w.clone());
    theirs.push_back(w.clone().requires_grad_(true));
    grads.push_back(torch::randn_like(w) * 1e-3);
  }
  train::AdamW opt(ours, {0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW ref(theirs, torch::optim::AdamWOptions(1e-4).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  double best_ours = 1e30, best_ref = 1e30;
  for (int64_t s = 0; s < steps; ++s) {
    for (int64_t t = 0; t < tensors; ++t) opt.grad_accumulator(size_t(t)).copy_(grads[size_t(t)]);
    auto t0 = std::chrono::steady_clock::now();
    opt.step(1e-4);
    best_ours = std::min(best_ours, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    for (int64_t t = 0; t < tensors; ++t) theirs[size_t(t)].mutable_grad() = grads[size_t(t)].clone();
    t0 = std::chrono::steady_clock::now();
    ref.step();
    best_ref = std::min(best_ref, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  double diff = 0;
  for (int64_t t = 0; t < tensors; ++t)
    diff = std::max(diff, (opt.param(size_t(t)) - theirs[size_t(t)].detach()).abs().max().item<double>());
  const double n = double(per * tensors), bytes = 28.0 * n;
  std::printf("AdamW step on the host, %.0f M fp32 parameters in %lld tensors, %d threads (best of %lld)\n", n / 1e6,
              (long long)tensors, at::get_num_threads(), (long long)steps);
  std::printf("  longalign fused SSE : %8.1f ms  %6.2f GB/s  %7.1f M params/s\n", best_ours * 1e3, bytes / best_ours / 1e9,
              n / best_ours / 1e6);
  std::printf("  torch::optim::AdamW : %8.1f ms  %6.2f GB/s  %7.1f M params/s\n", best_ref * 1e3, bytes / best_ref / 1e9,
              n / best_ref / 1e6);
  std::printf("  speedup %.2fx; max |w_ours - w_torch| after %lld steps: %.2e\n", best_ref / best_ours, (long long)steps, diff);
  return 0;
}
