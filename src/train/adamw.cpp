// AdamW with master weights and fp32 gradient accumulation; see the header.
#include "longalign/train/adamw.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "longalign/core/error.hpp"

namespace longalign::train {

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWConfig cfg) : cfg_(cfg) {
  torch::NoGradGuard ng;
  for (auto& [name, p] : params) {
    Slot s;
    s.name = name;
    s.param = p;
    s.master = p.scalar_type() == torch::kFloat ? p : p.detach().to(torch::kFloat).clone();
    s.grad = torch::zeros_like(s.master);
    s.m = torch::zeros_like(s.master);
    s.v = torch::zeros_like(s.master);
    s.decay = p.dim() >= 2;
    slots_.push_back(std::move(s));
  }
}

void AdamW::accumulate_grads() {
  torch::NoGradGuard ng;
  for (auto& s : slots_) {
    if (!s.param.grad().defined()) continue;
    s.grad.add_(s.param.grad().to(torch::kFloat));
    s.param.mutable_grad().reset();
  }
}

double AdamW::clip_grad_norm(double max_norm, train::Collectives* comm) {
  torch::NoGradGuard ng;
  at::Tensor sq = torch::zeros({1}, torch::kDouble);
  for (auto& s : slots_)
    if (s.grad.defined()) sq += s.grad.to(torch::kDouble).pow(2).sum().cpu();
  if (grads_sharded() && comm) comm->all_reduce_sum(sq);
  const double norm = std::sqrt(sq.item<double>());
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm)
    for (auto& s : slots_)
      if (s.grad.defined()) s.grad.mul_(max_norm / (norm + 1e-6));
  return norm;
}

void AdamW::step(double lr) {
  torch::NoGradGuard ng;
  ++t_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, double(t_)), bc2 = 1.0 - std::pow(cfg_.beta2, double(t_));
  for (auto& s : slots_) {
    if (!owns(s)) continue;
    if (s.decay && cfg_.weight_decay > 0) s.master.mul_(1.0 - lr * cfg_.weight_decay);
    s.m.mul_(cfg_.beta1).add_(s.grad, 1.0 - cfg_.beta1);
    s.v.mul_(cfg_.beta2).addcmul_(s.grad, s.grad, 1.0 - cfg_.beta2);
    at::Tensor denom = (s.v.sqrt() / std::sqrt(bc2)).add_(cfg_.eps);
    s.master.addcdiv_(s.m, denom, -lr / bc1);
    if (!s.master.is_same(s.param)) s.param.copy_(s.master);
  }
  zero_grad();
}

void AdamW::zero_grad() {
  torch::NoGradGuard ng;
  for (auto& s : slots_) {
    if (s.grad.defined()) s.grad.zero_();
    if (s.param.grad().defined()) s.param.mutable_grad().reset();
  }
}

void AdamW::shard(int world, int rank, int stage) {
  world_ = world;
  rank_ = rank;
  stage_ = stage;
  std::vector<size_t> order(slots_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return slots_[a].param.numel() > slots_[b].param.numel(); });
  std::vector<int64_t> load(world, 0);
  for (size_t i : order) {
    int r = int(std::min_element(load.begin(), load.end()) - load.begin());
    slots_[i].owner = r;
    load[r] += slots_[i].param.numel();
  }
  for (auto& s : slots_)
    if (!owns(s)) {  // the memory ZeRO-1 saves: no moments or master copy for others' parameters
      s.m = at::Tensor();
      s.v = at::Tensor();
      if (!s.master.is_same(s.param)) s.master = at::Tensor();
      if (stage_ >= 2) s.grad = at::Tensor();
    }
}

void AdamW::reduce_grads_to_owners(train::Collectives& comm) {
  torch::NoGradGuard ng;
  for (int r = 0; r < world_; ++r) {
    std::vector<at::Tensor> parts;
    for (auto& s : slots_)
      if (s.owner == r)  // a rank without a unit this micro-step contributes zeros
        parts.push_back(s.param.grad().defined() ? s.param.grad().flatten().to(torch::kDouble)
                                                 : torch::zeros({s.param.numel()}, s.param.options().dtype(torch::kDouble)));
    if (parts.empty()) continue;
    at::Tensor flat = torch::cat(parts);
    comm.reduce_sum(flat, r);
    if (r != rank_) continue;
    int64_t off = 0;
    for (auto& s : slots_)
      if (s.owner == r) {
        s.grad.add_(flat.narrow(0, off, s.param.numel()).view_as(s.grad).to(torch::kFloat));
        off += s.param.numel();
      }
  }
  for (auto& s : slots_)
    if (s.param.grad().defined()) s.param.mutable_grad().reset();
}

void AdamW::sync_params(train::Collectives& comm) {
  torch::NoGradGuard ng;
  for (int r = 0; r < world_; ++r) {
    std::vector<at::Tensor> parts;
    for (auto& s : slots_)
      if (s.owner == r) parts.push_back(s.param.detach().flatten());
    if (parts.empty()) continue;
    at::Tensor flat = torch::cat(parts);
    comm.broadcast(flat, r);
    int64_t off = 0;
    for (auto& s : slots_)
      if (s.owner == r) {
        s.param.copy_(flat.narrow(0, off, s.param.numel()).view_as(s.param));
        off += s.param.numel();
      }
  }
}

model::NamedTensors AdamW::state() const {
  model::NamedTensors out;
  for (const auto& s : slots_) {
    if (!owns(s)) continue;
    out.emplace_back("exp_avg." + s.name, s.m);
    out.emplace_back("exp_avg_sq." + s.name, s.v);
    if (!s.master.is_same(s.param)) out.emplace_back("master." + s.name, s.master);
  }
  out.emplace_back("step", torch::tensor(t_, torch::kLong));
  return out;
}

void AdamW::load_state(const std::vector<const model::SafetensorsFile*>& files) {
  torch::NoGradGuard ng;
  auto find = [&](const std::string& key) -> const model::SafetensorsFile* {
    for (const auto* f : files)
      if (f->contains(key)) return f;
    return nullptr;
  };
  auto load = [&](const std::string& key, at::Tensor& dst) {
    const auto* f = find(key);
    if (!f) throw RuntimeError("optimizer state lacks " + key);
    at::Tensor src = f->view(key);
    if (src.sizes() != dst.sizes()) throw RuntimeError("optimizer state " + key + " does not match the model's shape");
    dst.copy_(src);
  };
  for (auto& s : slots_) {
    if (!owns(s)) continue;
    load("exp_avg." + s.name, s.m);
    load("exp_avg_sq." + s.name, s.v);
    if (!s.master.is_same(s.param)) {
      if (find("master." + s.name)) load("master." + s.name, s.master);
      else s.master.copy_(s.param);  // saved from fp32 params: the model weights are the master
      s.param.copy_(s.master);
    }
  }
  const auto* f = find("step");
  if (!f) throw RuntimeError("optimizer state lacks its step counter");
  t_ = f->view("step").item<int64_t>();
}

}  // namespace longalign::train
