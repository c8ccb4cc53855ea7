// The LoRA-capable projection; see the header.
#include "longalign/model/lora_linear.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace longalign::model {
namespace {

// splitmix64: decorrelates the seeds of neighbouring (step, micro, module) keys.
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

LoraLinearImpl::LoraLinearImpl(int64_t in, int64_t out, bool has_bias) : in_(in), out_(out) {
  // torch::nn::Linear's default init, drawn in its order from the global generator, so that a
  // model built after torch::manual_seed is the one it always was.
  weight = register_parameter("weight", torch::empty({out, in}));
  torch::NoGradGuard ng;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (has_bias) {
    const double bound = 1.0 / std::sqrt(double(in));
    bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound));
  }
}

LoraLinearImpl::LoraLinearImpl(int64_t in, int64_t out, const at::TensorOptions& base)
    : in_(in), out_(out), base_options_(base) {}

at::Tensor LoraLinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = adapter_only() ? at::Tensor() : torch::linear(x, weight, bias);
  if (lora_A.is_empty()) return y;
  at::Tensor h = x;
  if (dropout > 0 && is_training()) {
    uint64_t key = mix(mix(mix(mix(state_->seed) ^ uint64_t(state_->step)) ^ uint64_t(state_->rank)) ^
                       uint64_t(state_->micro)) ^ uint64_t(ordinal_);
    if (state_->chunk != 0) key = mix(key ^ uint64_t(state_->chunk));  // untiled runs keep their masks
    at::Generator gen = x.is_cuda() ? at::cuda::detail::createCUDAGenerator(x.device().index())
                                    : at::detail::createCPUGenerator(key);
    if (x.is_cuda()) gen.set_current_seed(key);
    at::Tensor keep = at::empty_like(x).bernoulli_(1.0 - dropout, gen);
    h = x * keep / (1.0 - dropout);
  }
  at::Tensor term = lora_B(lora_A(h)) * scaling;
  return y.defined() ? y + term : term;
}

void LoraLinearImpl::attach(int64_t rank, double scale, double p, std::shared_ptr<LoraDropoutState> state,
                            int64_t ordinal, at::Generator& gen) {
  const int64_t in = in_, out = out_;
  const at::TensorOptions base = adapter_only() ? base_options_ : weight.options();
  auto opts = torch::TensorOptions().dtype(base.dtype()).device(base.device());
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in, rank).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(rank, out).bias(false)));
  torch::NoGradGuard ng;
  // kaiming_uniform_(a = sqrt(5)) on [rank, in]: bound = sqrt(6 / ((1 + a^2) * fan_in)) = 1 / sqrt(in).
  const double bound = 1.0 / std::sqrt(double(in));
  lora_A->weight.set_data(at::empty({rank, in}, at::kFloat).uniform_(-bound, bound, gen).to(opts));
  lora_B->weight.set_data(torch::zeros({out, rank}, opts));
  scaling = scale;
  dropout = p;
  state_ = std::move(state);
  ordinal_ = ordinal;
}

at::Tensor LoraLinearImpl::delta_weight() const {
  torch::NoGradGuard ng;
  return torch::matmul(lora_B->weight.to(at::kDouble), lora_A->weight.to(at::kDouble)) * scaling;
}

void LoraLinearImpl::merge() {
  if (lora_A.is_empty()) return;
  if (adapter_only()) throw std::logic_error("LoraLinear::merge: an adapter-only module merges through its parent");
  torch::NoGradGuard ng;
  weight.copy_((weight.to(at::kDouble) + delta_weight().to(weight.device())).to(weight.scalar_type()));
  remove_adapter();
}

void LoraLinearImpl::remove_adapter() {
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = nullptr;
  lora_B = nullptr;
  state_.reset();
}

bool is_adapter_parameter(const std::string& name) {
  return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

}  // namespace longalign::model
