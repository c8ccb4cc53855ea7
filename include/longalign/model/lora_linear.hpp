// A projection of the decoder (q/k/v/o, gate/up/down) that may carry a LoRA adapter:
//   y = W x + b + (alpha / r) * B(A(dropout(x)))
// computed in that order, as PEFT's lora.Linear does, so that an adapter gives the same logits
// here and in transformers + peft. Without an adapter it is a plain Linear with HF's parameter
// names (weight, bias). The adapter's parameters are the submodules lora_A and lora_B, so they
// are named ...q_proj.lora_A.weight: PEFT's names once its "base_model.model." prefix is added.
//
// A projection the HF checkpoint stores fused (GLM's gate_up_proj, ChatGLM3's query_key_value and
// dense_h_to_4h) runs here as its parts, each a LoraLinear of its own, but PEFT adapts the fused
// module: one A and one dropout mask for the shared input, B's rows covering all parts. That
// adapter is an adapter-only LoraLinear (no base weight; forward gives the adapter's term alone)
// that the parent module registers under the fused name and whose output rows it adds to its
// parts' outputs.
//
// Dropout draws its mask from a generator seeded by (run seed, optimizer step, rank, micro-step,
// module), not from torch's global one: a layer recomputed in backward (activation
// checkpointing, ZeRO-3) then sees the mask of its forward, and a resumed run the masks of an
// uninterrupted one, with no generator state in the checkpoint. A tiled MLP (ops/tiled_mlp.hpp)
// also keys in its chunk, so that its chunks get different masks (a fresh generator with one key
// would give every chunk the same prefix pattern) and its backward recompute the forward's.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <string>

namespace longalign::model {

// Shared by every adapter of a model; the parallelism pass advances step and micro.
struct LoraDropoutState {
  uint64_t seed = 0;
  int64_t step = 0, micro = 0;
  int64_t rank = 0;
  int64_t chunk = 0;  // tiled MLP: 1 + the chunk running now; 0 untiled (the key is then unchanged)
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in, int64_t out, bool bias);
  // An adapter-only module (see above) whose adapter will take `base`'s dtype and device.
  LoraLinearImpl(int64_t in, int64_t out, const at::TensorOptions& base);
  at::Tensor forward(const at::Tensor& x);

  // Registers lora_A [rank, in] (kaiming-uniform with a = sqrt(5), PEFT's init, from `gen`) and
  // lora_B [out, rank] (zeros), in the base weight's dtype and device.
  void attach(int64_t rank, double scaling, double dropout, std::shared_ptr<LoraDropoutState> state,
              int64_t ordinal, at::Generator& gen);
  // scaling * B A in fp64 [out, in]: what merging adds to the base weight.
  at::Tensor delta_weight() const;
  // W += delta_weight() (rounded once to W's dtype), then the adapter is removed. An
  // adapter-only module is merged by its parent, into the parts' weights.
  void merge();
  void remove_adapter();
  bool has_adapter() const { return !lora_A.is_empty(); }
  bool adapter_only() const { return !weight.defined(); }
  const std::shared_ptr<LoraDropoutState>& dropout_state() const { return state_; }

  at::Tensor weight, bias;  // bias undefined when the family has none
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};
  double scaling = 0, dropout = 0;

 private:
  std::shared_ptr<LoraDropoutState> state_;
  int64_t ordinal_ = 0;
  int64_t in_ = 0, out_ = 0;
  at::TensorOptions base_options_;  // adapter-only: the parts' weights' dtype and device  // this adapter's place among the model's, for its dropout masks
};
TORCH_MODULE(LoraLinear);

// True for lora_A / lora_B parameters (they are not part of a HF checkpoint).
bool is_adapter_parameter(const std::string& name);

}  // namespace longalign::model
