// AdamW with master weights and fp32 gradient accumulation (fp64 for fp64 parameters); see the
// header. Masters in host memory are updated by one fused loop over each piece (one pass over
// memory instead of the several of the tensor-op formulation, SSE for fp32), split across all cores.
#include "longalign/train/adamw.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "longalign/core/error.hpp"

namespace longalign::train {
namespace {

template <typename T>
struct AdamWScalars {
  T decay, b1, b2, step_size, inv_sqrt_bc2, eps;
};

// The update of torch.optim.AdamW, element by element in T, in the same order of operations.
// SSE explicitly for fp32: GCC does not vectorize the plain loop at the project's -O2 (nor sqrtf
// while it may set errno), and the x86-64 baseline guarantees SSE2. fp64 (exactness checks) runs
// the plain loop.
template <typename T>
void adamw_range(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t b, int64_t e,
                 AdamWScalars<T> k) {
  int64_t i = b;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
  const __m128 b1 = _mm_set1_ps(k.b1), nb1 = _mm_set1_ps(1.0f - k.b1), b2 = _mm_set1_ps(k.b2),
               nb2 = _mm_set1_ps(1.0f - k.b2), decay = _mm_set1_ps(k.decay), step = _mm_set1_ps(k.step_size),
               isb = _mm_set1_ps(k.inv_sqrt_bc2), eps = _mm_set1_ps(k.eps);
  for (; i + 4 <= e; i += 4) {
    const __m128 gi = _mm_loadu_ps(g + i);
    const __m128 mi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(m + i), b1), _mm_mul_ps(gi, nb1));
    const __m128 vi = _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(v + i), b2), _mm_mul_ps(_mm_mul_ps(nb2, gi), gi));
    _mm_storeu_ps(m + i, mi);
    _mm_storeu_ps(v + i, vi);
    const __m128 denom = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vi), isb), eps);
    _mm_storeu_ps(w + i, _mm_sub_ps(_mm_mul_ps(_mm_loadu_ps(w + i), decay), _mm_mul_ps(step, _mm_div_ps(mi, denom))));
  }
  }
#endif
  for (; i < e; ++i) {
    const T gi = g[i];
    const T mi = m[i] * k.b1 + gi * (T(1) - k.b1);
    const T vi = v[i] * k.b2 + (T(1) - k.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * k.decay - k.step_size * (mi / (std::sqrt(vi) * k.inv_sqrt_bc2 + k.eps));
  }
}

template <typename T>
void fused_adamw_cpu(at::Tensor& w, const at::Tensor& g, at::Tensor& m, at::Tensor& v, double decay,
                     const AdamWConfig& c, double lr, double bc1, double bc2) {
  const AdamWScalars<T> k{T(decay), T(c.beta1), T(c.beta2), T(lr / bc1), T(1.0 / std::sqrt(bc2)), T(c.eps)};
  T *pw = w.data_ptr<T>(), *pm = m.data_ptr<T>(), *pv = v.data_ptr<T>();
  const T* pg = g.data_ptr<T>();
  at::parallel_for(0, w.numel(), 1 << 15, [&](int64_t b, int64_t e) { adamw_range<T>(pw, pg, pm, pv, b, e, k); });
}

// fp32 accumulation for 16-bit and fp32 parameters, fp64 for fp64 ones.
at::ScalarType master_dtype(const at::Tensor& p) { return at::promote_types(p.scalar_type(), torch::kFloat); }

at::Tensor host_like(const at::Tensor& p) {
  return torch::zeros({p.numel()}, torch::TensorOptions().dtype(master_dtype(p)).pinned_memory(p.is_cuda())).view(p.sizes());
}

}  // namespace

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWConfig cfg) : cfg_(cfg) {
  for (auto& [name, p] : params) add_slot({name, p, 0, 0, p.dim() >= 2, at::Tensor()});
}

AdamW AdamW::over_pieces(std::vector<ParamPiece> pieces, AdamWConfig cfg) {
  AdamW a({}, cfg);
  for (auto& p : pieces) a.add_slot(std::move(p));
  return a;
}

void AdamW::add_slot(ParamPiece p) {
  torch::NoGradGuard ng;
  Slot s;
  s.name = std::move(p.name);
  s.param = p.param;
  s.offset = p.offset;
  s.full_numel = p.full_numel ? p.full_numel : p.param.numel();
  s.decay = p.decay;
  const bool on_host = cfg_.offload || !p.param.is_cuda();
  if (on_host) {
    s.master = p.param.scalar_type() == master_dtype(p.param) && !p.param.is_cuda() ? p.param : host_like(p.param).copy_(p.param);
    s.grad = p.grad.defined() ? p.grad : host_like(p.param);
    s.m = host_like(p.param);
    s.v = host_like(p.param);
  } else {
    s.master = p.param.scalar_type() == master_dtype(p.param) ? p.param : p.param.detach().to(master_dtype(p.param)).clone();
    s.grad = p.grad.defined() ? p.grad : torch::zeros_like(s.master);
    s.m = torch::zeros_like(s.master);
    s.v = torch::zeros_like(s.master);
  }
  slots_.push_back(std::move(s));
}

void AdamW::accumulate_grads() {
  torch::NoGradGuard ng;
  for (auto& s : slots_) {
    if (!s.param.grad().defined()) continue;
    s.grad.add_(s.param.grad().to(s.grad.device(), s.grad.scalar_type()));
    s.param.mutable_grad().reset();
  }
}

double AdamW::clip_grad_norm(double max_norm, train::Collectives* comm) {
  torch::NoGradGuard ng;
  // Summed where the gradients live and read once: a copy to the host per parameter would stall
  // the GPU ~150 times a step.
  at::Tensor sq;
  for (auto& s : slots_) {
    if (!s.grad.defined()) continue;
    at::Tensor part = s.grad.to(torch::kDouble).pow(2).sum();
    sq = sq.defined() ? sq + part.to(sq.device()) : part;
  }
  sq = sq.defined() ? sq.reshape({1}).cpu() : torch::zeros({1}, torch::kDouble);
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
    const double decay = s.decay && cfg_.weight_decay > 0 ? 1.0 - lr * cfg_.weight_decay : 1.0;
    if (!s.master.is_cuda() && s.master.is_contiguous() && s.grad.is_contiguous()) {
      if (s.master.scalar_type() == torch::kDouble) fused_adamw_cpu<double>(s.master, s.grad, s.m, s.v, decay, cfg_, lr, bc1, bc2);
      else fused_adamw_cpu<float>(s.master, s.grad, s.m, s.v, decay, cfg_, lr, bc1, bc2);
    } else {
      if (decay != 1.0) s.master.mul_(decay);
      s.m.mul_(cfg_.beta1).add_(s.grad, 1.0 - cfg_.beta1);
      s.v.mul_(cfg_.beta2).addcmul_(s.grad, s.grad, 1.0 - cfg_.beta2);
      at::Tensor denom = (s.v.sqrt() / std::sqrt(bc2)).add_(cfg_.eps);
      s.master.addcdiv_(s.m, denom, -lr / bc1);
    }
    if (!s.master.is_same(s.param)) s.param.copy_(s.master, /*non_blocking=*/s.master.is_pinned());
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
  if (stage >= 3) {  // the pieces are this rank's shard already
    for (auto& s : slots_) s.owner = rank;
    return;
  }
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
        s.grad.add_(flat.narrow(0, off, s.param.numel()).view_as(s.grad).to(s.grad.device(), s.grad.scalar_type()));
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

std::string AdamW::key(const std::string& kind, const Slot& s) const {
  const bool whole = s.offset == 0 && s.param.numel() == s.full_numel;
  return kind + "." + s.name + (whole ? "" : "@" + std::to_string(s.offset));
}

model::NamedTensors AdamW::state() const {
  model::NamedTensors out;
  for (const auto& s : slots_) {
    if (!owns(s)) continue;
    const bool whole = s.offset == 0 && s.param.numel() == s.full_numel;
    auto saved = [&](const at::Tensor& t) { return whole ? t : t.reshape({-1}); };
    out.emplace_back(key("exp_avg", s), saved(s.m));
    out.emplace_back(key("exp_avg_sq", s), saved(s.v));
    if (!s.master.is_same(s.param)) out.emplace_back(key("master", s), saved(s.master));
  }
  out.emplace_back("step", torch::tensor(t_, torch::kLong));
  return out;
}

void AdamW::load_state(const std::vector<const model::SafetensorsFile*>& files) {
  torch::NoGradGuard ng;
  // Every saved piece, by "kind.name": where it starts in the flattened parameter.
  struct Saved {
    const model::SafetensorsFile* file;
    std::string key;
    int64_t offset;
  };
  std::map<std::string, std::vector<Saved>> index;
  for (const auto* f : files)
    for (const auto& k : f->names()) {
      const auto at = k.rfind('@');
      if (at == std::string::npos) {
        index[k].push_back({f, k, 0});
        continue;
      }
      char* end = nullptr;
      const long long off = std::strtoll(k.c_str() + at + 1, &end, 10);
      if (*end != '\0' || off < 0) throw RuntimeError("optimizer state has a malformed piece name: " + k);
      index[k.substr(0, at)].push_back({f, k, off});
    }
  // The pieces of one tensor must cover it exactly once: an overlap and a gap of the same size
  // would otherwise pass a count of covered elements and leave part of the state stale.
  auto where = [](const Saved& p) { return p.file->path().string() + " (tensor " + p.key + ")"; };
  auto check_tiling = [&](const std::string& base, std::vector<Saved>& pieces, int64_t full) {
    std::sort(pieces.begin(), pieces.end(), [](const Saved& a, const Saved& b) { return a.offset < b.offset; });
    int64_t end = 0;
    for (const auto& p : pieces) {
      const int64_t n = p.file->view(p.key).numel();
      if (p.offset < end)
        throw RuntimeError("optimizer state " + base + ": piece " + where(p) + " starts at element " + std::to_string(p.offset) +
                           ", inside the piece before it (which ends at " + std::to_string(end) +
                           "); the checkpoint's optimizer files were renamed or mixed from different runs");
      if (p.offset > end)
        throw RuntimeError("optimizer state " + base + ": elements " + std::to_string(end) + " to " + std::to_string(p.offset) +
                           " are in no piece (the next is " + where(p) + "); an optimizer file of the checkpoint is missing");
      end = p.offset + n;
    }
    if (end != full)
      throw RuntimeError("optimizer state " + base + ": its pieces cover " + std::to_string(end) + " of the parameter's " +
                         std::to_string(full) + " elements" + (end < full ? "; an optimizer file of the checkpoint is missing"
                                                                         : "; it does not match the model's shape"));
  };
  // Moments that are not finite, or negative second moments, give NaN weights at the first step.
  auto check_values = [&](const std::string& kind, const Saved& p) {
    const at::Tensor t = p.file->view(p.key);
    if (!t.is_floating_point()) throw RuntimeError("optimizer state " + where(p) + " is not a floating-point tensor");
    if (!at::isfinite(t).all().item<bool>())
      throw RuntimeError("optimizer state " + where(p) + " holds NaN or infinite values; the checkpoint is damaged: resume "
                         "from an earlier one");
    if (kind == "exp_avg_sq" && (t < 0).any().item<bool>())
      throw RuntimeError("optimizer state " + where(p) + " holds negative second moments, which AdamW never writes; the "
                         "checkpoint is damaged: resume from an earlier one");
  };
  std::map<std::string, bool> checked;
  // Copies [s.offset, s.offset + numel) of the parameter from the saved pieces that overlap it.
  auto load = [&](const std::string& kind, Slot& s, at::Tensor& dst) {
    const std::string base = kind + "." + s.name;
    auto it = index.find(base);
    if (it == index.end()) throw RuntimeError("optimizer state lacks " + base);
    if (!checked[base]) {
      check_tiling(base, it->second, s.full_numel);
      checked[base] = true;
    }
    at::Tensor flat_dst = dst.view({-1});
    const int64_t lo = s.offset, hi = s.offset + dst.numel();
    for (const auto& p : it->second) {
      at::Tensor src = p.file->view(p.key).reshape({-1});
      const int64_t b = std::max(lo, p.offset), e = std::min(hi, p.offset + src.numel());
      if (b >= e) continue;
      check_values(kind, p);
      flat_dst.narrow(0, b - lo, e - b).copy_(src.narrow(0, b - p.offset, e - b));
    }
  };
  auto st = index.find("step");
  if (st == index.end()) throw RuntimeError("optimizer state lacks its step counter");
  {
    const Saved& p = st->second.front();
    const at::Tensor step = p.file->view("step");
    const bool integral = !step.is_floating_point() && !step.is_complex() && step.scalar_type() != at::kBool;
    if (step.numel() != 1 || !integral || step.item<int64_t>() < 0)
      throw RuntimeError("optimizer state " + p.file->path().string() + ": step must be one non-negative integer, not a " +
                         std::string(c10::toString(step.scalar_type())) + " tensor of " + std::to_string(step.numel()) +
                         " element(s)" + (step.numel() == 1 ? " holding " + std::to_string(step.item<double>()) : std::string()) +
                         "; the checkpoint is damaged");
  }
  for (auto& s : slots_) {
    if (!owns(s)) continue;
    load("exp_avg", s, s.m);
    load("exp_avg_sq", s, s.v);
    if (!s.master.is_same(s.param)) {
      if (index.count("master." + s.name)) load("master", s, s.master);
      else s.master.copy_(s.param);  // saved from fp32 params: the model weights are the master
      s.param.copy_(s.master);
    }
  }
  t_ = st->second.front().file->view("step").item<int64_t>();
}

}  // namespace longalign::train
