// The Llama decoder as plain single-device LibTorch code. Parameter names equal HF's
// (model.layers.{i}.self_attn.q_proj.weight, ...), so checkpoints map one to one, except GLM's
// fused mlp.gate_up_proj (and ChatGLM3's fused q, k, v), which weights.cpp splits into their
// parts. A LoRA adapter on such a fused projection is the adapter-only LoraLinear gate_up_proj
// (or qkv_proj) beside the parts (lora_linear.hpp), null until attach_lora registers it.
//
// The model works on packed input: one flat token stream with cu_seqlens. Attention is reached
// only through an injected AttentionFn (the varlen op, see ops/varlen_attention.hpp), and each
// decoder layer runs through an optional LayerRunner, which is how activation checkpointing
// wraps the model without being woven into it. The MLP likewise runs through an optional MlpFn
// carried by the LayerContext (ops/tiled_mlp.hpp computes it in token chunks), so that every
// path that builds a context (plain, checkpointed, ZeRO-3) reaches it. The decoder's projections are LoraLinear, so
// LoRA (model/lora.hpp) attaches to this same model rather than to a second model class.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <functional>
#include <vector>

#include "longalign/model/llama_config.hpp"
#include "longalign/model/lora_linear.hpp"

namespace longalign::model {

// q [T, Hq, D], k and v [T, Hkv, D], cu_seqlens int32 [B+1] -> o [T, Hq, D]; causal per sequence.
using AttentionFn = std::function<at::Tensor(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                             const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale)>;

class LlamaMLPImpl;
// x [T, hidden] -> mlp(x) [T, hidden]; empty: the plain call.
using MlpFn = std::function<at::Tensor(LlamaMLPImpl& mlp, const at::Tensor& x)>;

struct PackedInput {
  at::Tensor input_ids;     // int64 [T]
  at::Tensor position_ids;  // int64 [T]
  at::Tensor cu_seqlens;    // int32 [B+1]
  int64_t max_seqlen = 0;
};

// What a decoder layer needs besides its input; shared by all layers of one forward.
struct LayerContext {
  at::Tensor cos, sin, cu_seqlens;
  int64_t max_seqlen;
  AttentionFn attention;
  MlpFn mlp;  // empty: mlp(x)
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  explicit LlamaAttentionImpl(const LlamaConfig& c);
  at::Tensor forward(const at::Tensor& x, const LayerContext& ctx);
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  LoraLinear qkv_proj{nullptr};  // ChatGLM3's query_key_value adapter, when one is attached
  int64_t n_heads, n_kv_heads, head_dim;
  bool rope_interleaved;  // GLM pairs dims (2i, 2i+1); Llama pairs the halves
};
TORCH_MODULE(LlamaAttention);

class LlamaMLPImpl : public torch::nn::Module {
 public:
  explicit LlamaMLPImpl(const LlamaConfig& c);
  at::Tensor forward(const at::Tensor& x);
  // The projections, the fused adapter among them when attached.
  std::vector<LoraLinearImpl*> projections();
  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  LoraLinear gate_up_proj{nullptr};  // GLM's fused gate_up_proj adapter, when one is attached
};
TORCH_MODULE(LlamaMLP);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayerImpl(const LlamaConfig& c);
  at::Tensor forward(const at::Tensor& x, const LayerContext& ctx);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

using LayerRunner = std::function<at::Tensor(LlamaDecoderLayerImpl& layer, const at::Tensor& x, const LayerContext& ctx)>;

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const LlamaConfig& c);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  explicit LlamaForCausalLMImpl(const LlamaConfig& c);
  // Final-normed hidden states [T, hidden]. `run_layer` and `mlp` default to plain calls.
  at::Tensor hidden_states(const PackedInput& in, const AttentionFn& attention, const LayerRunner& run_layer = {},
                           const MlpFn& mlp = {});
  // What every layer of a forward over `in` shares: RoPE tables in `dtype`, the packing,
  // attention, the MLP's runner.
  LayerContext layer_context(const PackedInput& in, at::ScalarType dtype, const AttentionFn& attention,
                             const MlpFn& mlp = {}) const;
  // [vocab, hidden]: lm_head.weight, or the embedding when tied.
  at::Tensor lm_head_weight();
  // Full logits [T, vocab] in fp32: for evaluation and tests, not for training at 64k.
  at::Tensor logits(const at::Tensor& hidden);

  const LlamaConfig& config() const { return config_; }
  LlamaModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied

 private:
  LlamaConfig config_;
  mutable at::Tensor inv_freq_;  // fp32, on the device of the last forward's positions
};
TORCH_MODULE(LlamaForCausalLM);

}  // namespace longalign::model
