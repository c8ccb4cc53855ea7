// Llama layers. Numerics follow HF: RMSNorm in fp32 then cast back before the weight, RoPE
// cos/sin computed in fp32, SwiGLU MLP, biases only where the config's family has them.
#include "longalign/model/llama.hpp"

#include <torch/torch.h>

#include <cmath>

#include "longalign/model/rms_norm.hpp"
#include "longalign/model/rope.hpp"

namespace longalign::model {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) { return rms_norm(x, weight, eps); }

namespace {
torch::nn::Linear linear(int64_t in, int64_t out, bool bias = false) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

// Adds a fused projection's adapter term to its parts' outputs, its rows in the parts' order.
void add_fused_term(LoraLinear& fused, const at::Tensor& x, std::initializer_list<at::Tensor*> parts) {
  if (!fused) return;
  const at::Tensor term = fused(x);
  int64_t at = 0;
  for (at::Tensor* p : parts) {
    *p = *p + term.narrow(-1, at, p->size(-1));
    at += p->size(-1);
  }
}
}  // namespace

LlamaAttentionImpl::LlamaAttentionImpl(const LlamaConfig& c)
    : n_heads(c.num_attention_heads),
      n_kv_heads(c.num_key_value_heads),
      head_dim(c.resolved_head_dim()),
      rope_interleaved(c.is_glm()) {
  q_proj = register_module("q_proj", LoraLinear(c.hidden_size, n_heads * head_dim, c.qkv_bias));
  k_proj = register_module("k_proj", LoraLinear(c.hidden_size, n_kv_heads * head_dim, c.qkv_bias));
  v_proj = register_module("v_proj", LoraLinear(c.hidden_size, n_kv_heads * head_dim, c.qkv_bias));
  o_proj = register_module("o_proj", LoraLinear(n_heads * head_dim, c.hidden_size, c.o_bias));
}

at::Tensor LlamaAttentionImpl::forward(const at::Tensor& x, const LayerContext& ctx) {
  const int64_t t = x.size(0);
  at::Tensor q = q_proj(x), k = k_proj(x), v = v_proj(x);
  add_fused_term(qkv_proj, x, {&q, &k, &v});
  q = apply_rope(q.view({t, n_heads, head_dim}), ctx.cos, ctx.sin, rope_interleaved);
  k = apply_rope(k.view({t, n_kv_heads, head_dim}), ctx.cos, ctx.sin, rope_interleaved);
  v = v.view({t, n_kv_heads, head_dim});
  at::Tensor o = ctx.attention(q, k, v, ctx.cu_seqlens, ctx.max_seqlen, 1.0 / std::sqrt(double(head_dim)));
  return o_proj(o.reshape({t, n_heads * head_dim}));
}

LlamaMLPImpl::LlamaMLPImpl(const LlamaConfig& c) {
  gate_proj = register_module("gate_proj", LoraLinear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", LoraLinear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", LoraLinear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

at::Tensor LlamaMLPImpl::forward(const at::Tensor& x) {
  at::Tensor gate = gate_proj(x), up = up_proj(x);
  add_fused_term(gate_up_proj, x, {&gate, &up});
  return down_proj(torch::silu(gate) * up);
}

std::vector<LoraLinearImpl*> LlamaMLPImpl::projections() {
  std::vector<LoraLinearImpl*> out = {gate_proj.get(), up_proj.get(), down_proj.get()};
  if (gate_up_proj) out.push_back(gate_up_proj.get());
  return out;
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const LlamaConfig& c) {
  self_attn = register_module("self_attn", LlamaAttention(c));
  mlp = register_module("mlp", LlamaMLP(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

at::Tensor LlamaDecoderLayerImpl::forward(const at::Tensor& x, const LayerContext& ctx) {
  at::Tensor h = x + self_attn->forward(input_layernorm(x), ctx);
  at::Tensor n = post_attention_layernorm(h);
  return h + (ctx.mlp ? ctx.mlp(*mlp, n) : mlp(n));
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(LlamaDecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

LlamaForCausalLMImpl::LlamaForCausalLMImpl(const LlamaConfig& c) : config_(c), inv_freq_(rope_inv_freq(c)) {
  model = register_module("model", LlamaModel(c));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", linear(c.hidden_size, c.vocab_size));
}

at::Tensor LlamaForCausalLMImpl::hidden_states(const PackedInput& in, const AttentionFn& attention,
                                               const LayerRunner& run_layer, const MlpFn& mlp) {
  at::Tensor h = model->embed_tokens(in.input_ids);
  const LayerContext ctx = layer_context(in, h.scalar_type(), attention, mlp);
  for (const auto& m : *model->layers) {
    auto& layer = *m->as<LlamaDecoderLayerImpl>();
    h = run_layer ? run_layer(layer, h, ctx) : layer.forward(h, ctx);
  }
  return model->norm(h);
}

LayerContext LlamaForCausalLMImpl::layer_context(const PackedInput& in, at::ScalarType dtype,
                                                 const AttentionFn& attention, const MlpFn& mlp) const {
  // fp32 frequencies kept where the positions are (a copy from pageable host memory per forward
  // would sync with the GPU each time); never cast with the module's weights.
  if (inv_freq_.device() != in.position_ids.device()) inv_freq_ = inv_freq_.to(in.position_ids.device());
  auto [cos, sin] = rope_cos_sin(inv_freq_, in.position_ids, dtype, config_.is_glm());
  return {cos, sin, in.cu_seqlens, in.max_seqlen, attention, mlp};
}

at::Tensor LlamaForCausalLMImpl::lm_head_weight() {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

at::Tensor LlamaForCausalLMImpl::logits(const at::Tensor& hidden) {
  return torch::matmul(hidden, lm_head_weight().t()).to(at::promote_types(hidden.scalar_type(), torch::kFloat));
}

}  // namespace longalign::model
