// AdamW against LibTorch's own torch::optim::AdamW (an independent implementation), gradient
// clipping against torch::nn::utils::clip_grad_norm_, and the LR schedule at hand-computed points.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "longalign/train/adamw.hpp"
#include "longalign/train/lr_schedule.hpp"

using namespace longalign;

// Five steps of ours and torch's on the same gradients; returns the largest weight difference
// and the largest weight magnitude.
std::pair<double, double> adamw_vs_torch(torch::Dtype dtype) {
  torch::manual_seed(0);
  auto w = torch::randn({5, 4}, dtype), b = torch::randn({4}, dtype);  // decay applies to w only (2-D)
  auto w2 = w.clone().requires_grad_(), b2 = b.clone().requires_grad_();
  auto w1 = w.clone().requires_grad_(), b1 = b.clone().requires_grad_();
  train::AdamW ours({{"w", w1}, {"b", b1}}, {0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW ref_w({w2}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  torch::optim::AdamW ref_b({b2}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0));
  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({3, 5}, dtype);
    for (auto [ww, bb] : {std::pair{w1, b1}, std::pair{w2, b2}}) (torch::matmul(x, ww) + bb).pow(2).sum().backward();
    ours.accumulate_grads();
    ours.step(0.01);
    ref_w.step();
    ref_b.step();
    ref_w.zero_grad();
    ref_b.zero_grad();
  }
  const double diff = std::max((w1 - w2).abs().max().item<double>(), (b1 - b2).abs().max().item<double>());
  return {diff, std::max(w1.abs().max().item<double>(), b1.abs().max().item<double>())};
}

// The two implementations order a step's operations differently (decay fused, 1/sqrt(bc2) as a
// multiplier), so each step may round a weight differently by a few ulps of |w|: the gradients
// here are O(1), far above eps, where AdamW's update is insensitive to rounding. Five steps:
// at most 5 x 2 ulps = 10 u max|w| (u = 2^-53 in fp64, 2^-24 in fp32), whatever the CPU.
TEST(AdamW, MatchesTorchOptimAdamWIncludingDecayRules) {
  for (auto [dtype, u] : {std::pair{torch::kDouble, std::ldexp(1.0, -53)}, std::pair{torch::kFloat, std::ldexp(1.0, -24)}}) {
    auto [diff, wmax] = adamw_vs_torch(dtype);
    EXPECT_LE(diff, 10 * u * wmax) << c10::toString(dtype);
  }
}

TEST(AdamW, ClipMatchesTorchAndAccumulatesMicroSteps) {
  auto p = torch::zeros({3}, torch::requires_grad()), q = torch::zeros({3}, torch::requires_grad());
  train::AdamW opt({{"p", p}}, {});
  (p * torch::tensor({1.0f, 2.0f, 2.0f})).sum().backward();  // two micro-steps: grad (2, 4, 4), norm 6
  opt.accumulate_grads();
  (p * torch::tensor({1.0f, 2.0f, 2.0f})).sum().backward();
  opt.accumulate_grads();
  (q * torch::tensor({2.0f, 4.0f, 4.0f})).sum().backward();
  double ref = torch::nn::utils::clip_grad_norm_({q}, 3.0);
  EXPECT_NEAR(opt.clip_grad_norm(3.0), 6.0, 1e-9);
  EXPECT_NEAR(ref, 6.0, 1e-6);
  auto st = opt.state();
  EXPECT_EQ(st.back().first, "step");
}

// State saved whole loads into pieces (ZeRO-3 shards) and state saved in pieces loads whole: the
// moments of a piece are exactly the matching elements of the whole parameter's, and a missing
// piece is an error naming the tensor, not a silent zero.
TEST(AdamW, StateMovesBetweenWholeParametersAndPieces) {
  namespace fs = std::filesystem;
  torch::manual_seed(1);
  auto w = torch::randn({4, 3}, torch::requires_grad());
  train::AdamW whole({{"w", w}}, {0.9, 0.95, 1e-8, 0.1});
  (w * torch::randn({4, 3})).sum().backward();
  whole.accumulate_grads();
  whole.step(0.01);
  const fs::path dir = fs::temp_directory_path() / ("adamw_pieces_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  model::write_safetensors(dir / "whole.safetensors", whole.state());
  model::SafetensorsFile wf(dir / "whole.safetensors");

  // Two ranks' shards of the flattened w: [0, 5) and [5, 12).
  at::Tensor flat = w.detach().reshape({-1}).clone();
  auto piece = [&](int64_t off, int64_t n) {
    return train::ParamPiece{"w", flat.narrow(0, off, n), off, 12, true, at::Tensor()};
  };
  train::AdamW r0 = train::AdamW::over_pieces({piece(0, 5)}, {}), r1 = train::AdamW::over_pieces({piece(5, 7)}, {});
  r0.load_state({&wf});
  r1.load_state({&wf});
  auto find = [](const model::NamedTensors& st, const std::string& k) {
    for (const auto& [n, t] : st)
      if (n == k) return t;
    return at::Tensor();
  };
  at::Tensor m = find(whole.state(), "exp_avg.w").reshape({-1});
  EXPECT_TRUE(find(r1.state(), "exp_avg.w@5").equal(m.narrow(0, 5, 7)));
  EXPECT_EQ(r0.steps_taken(), 1);

  // Pieces saved by the two ranks load back into a whole parameter; one rank's file alone does not.
  model::write_safetensors(dir / "r0.safetensors", r0.state());
  model::write_safetensors(dir / "r1.safetensors", r1.state());
  model::SafetensorsFile f0(dir / "r0.safetensors"), f1(dir / "r1.safetensors");
  auto w2 = w.detach().clone();
  train::AdamW back({{"w", w2}}, {});
  back.load_state({&f0, &f1});
  EXPECT_TRUE(find(back.state(), "exp_avg_sq.w").equal(find(whole.state(), "exp_avg_sq.w")));
  train::AdamW partial({{"w", w.detach().clone()}}, {});
  try {
    partial.load_state({&f0});
    ADD_FAILURE() << "a missing piece was not reported";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("exp_avg.w: its pieces cover 5 of the parameter's 12 elements"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// Saved state is checked before any of it is loaded: pieces that overlap and leave a gap of the
// same size (a renamed ZeRO-3 piece), a negative or fractional step, non-finite moments and
// negative second moments are errors naming the file and piece, not NaN or stale weights.
TEST(AdamW, DamagedStateIsRefusedNamingThePiece) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("adamw_damaged_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto state = [](int64_t off0, int64_t off1, at::Tensor v0, at::Tensor step) {
    return model::NamedTensors{{"exp_avg.w@" + std::to_string(off0), torch::zeros({6})},
                               {"exp_avg_sq.w@" + std::to_string(off0), v0},
                               {"exp_avg.w@" + std::to_string(off1), torch::zeros({6})},
                               {"exp_avg_sq.w@" + std::to_string(off1), torch::zeros({6})},
                               {"step", step}};
  };
  auto expect_refused = [&](const std::string& name, const model::NamedTensors& st, const std::vector<std::string>& parts) {
    model::write_safetensors(dir / name, st);
    model::SafetensorsFile f(dir / name);
    train::AdamW opt({{"w", torch::zeros({12})}}, {});
    try {
      opt.load_state({&f});
      ADD_FAILURE() << name << " loaded";
    } catch (const std::exception& e) {
      for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\nlacks " << p;
    }
  };
  const auto ok_step = torch::tensor(int64_t{3});
  expect_refused("overlap.safetensors", state(0, 3, torch::zeros({6}), ok_step),
                 {"overlap.safetensors", "exp_avg.w@3", "inside the piece before it"});
  expect_refused("gap.safetensors", state(0, 7, torch::zeros({6}), ok_step), {"gap.safetensors", "elements 6 to 7 are in no piece"});
  expect_refused("negstep.safetensors", state(0, 6, torch::zeros({6}), torch::tensor(int64_t{-2})),
                 {"negstep.safetensors", "step must be one non-negative integer"});
  expect_refused("floatstep.safetensors", state(0, 6, torch::zeros({6}), torch::tensor(2.5)), {"step must be one non-negative integer"});
  expect_refused("negv.safetensors", state(0, 6, torch::full({6}, -1.0f), ok_step), {"negv.safetensors", "exp_avg_sq.w@0", "negative"});
  expect_refused("nan.safetensors", state(0, 6, torch::full({6}, NAN), ok_step), {"nan.safetensors", "NaN or infinite"});
  model::write_safetensors(dir / "good.safetensors", state(0, 6, torch::ones({6}), ok_step));
  model::SafetensorsFile good(dir / "good.safetensors");
  train::AdamW opt({{"w", torch::zeros({12})}}, {});
  opt.load_state({&good});
  EXPECT_EQ(opt.steps_taken(), 3);
  fs::remove_all(dir);
}

TEST(LrSchedule, WarmupThenCosineLinearConstant) {
  train::LrSchedule s{"cosine", 1.0, 0.1, 2, 12};
  EXPECT_DOUBLE_EQ(s.at(0), 0.5);
  EXPECT_DOUBLE_EQ(s.at(1), 1.0);
  EXPECT_DOUBLE_EQ(s.at(2), 1.0);   // decay starts at the peak
  EXPECT_NEAR(s.at(11), 0.1, 1e-12);  // and ends at the floor on the last step
  EXPECT_NEAR(s.at(6), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 4 / 9.0)), 1e-12);
  train::LrSchedule l{"linear", 1.0, 0.0, 0, 11};
  EXPECT_DOUBLE_EQ(l.at(0), 1.0);
  EXPECT_DOUBLE_EQ(l.at(5), 0.5);
  EXPECT_DOUBLE_EQ(l.at(10), 0.0);
  train::LrSchedule c{"constant", 0.3, 0.0, 3, 10};
  EXPECT_DOUBLE_EQ(c.at(0), 0.1);
  EXPECT_DOUBLE_EQ(c.at(9), 0.3);
}
