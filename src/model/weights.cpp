// Weight loading/saving and init. Loading copies into existing parameters so the model's
// device and dtype decide the result, whatever the file stores.
#include "longalign/model/weights.hpp"

#include <torch/torch.h>

#include "longalign/core/error.hpp"

namespace longalign::model {
namespace {
std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

void init_weights(LlamaForCausalLMImpl& m, double std, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.named_parameters()) {
    at::Tensor& t = p.value();
    if (t.dim() == 1) t.fill_(1.0);
    else t.copy_(at::normal(0.0, std, t.sizes(), gen, at::TensorOptions().dtype(at::kFloat)));
  }
}

void load_hf_weights(LlamaForCausalLMImpl& m, const std::filesystem::path& dir) {
  CheckpointTensors ckpt(dir);
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    if (!ckpt.contains(name))
      throw RuntimeError("checkpoint " + dir.string() + " lacks tensor " + name + " that the model config needs");
    at::Tensor src = ckpt.view(name);
    if (src.sizes() != p.value().sizes())
      throw RuntimeError("checkpoint tensor " + name + " has shape " + shape_str(src.sizes()) + " but the config gives " +
                         shape_str(p.value().sizes()) + "; check config.json against the weights");
    p.value().copy_(src);
  }
}

void check_weight_shapes(const std::filesystem::path& dir, const LlamaConfig& c) {
  CheckpointTensors ckpt(dir);
  const int64_t h = c.hidden_size, d = c.resolved_head_dim();
  std::vector<std::pair<std::string, std::vector<int64_t>>> expect = {{"model.embed_tokens.weight", {c.vocab_size, h}},
                                                                      {"model.norm.weight", {h}}};
  if (!c.tie_word_embeddings) expect.push_back({"lm_head.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    expect.push_back({p + "self_attn.q_proj.weight", {c.num_attention_heads * d, h}});
    expect.push_back({p + "self_attn.k_proj.weight", {c.num_key_value_heads * d, h}});
    expect.push_back({p + "self_attn.v_proj.weight", {c.num_key_value_heads * d, h}});
    expect.push_back({p + "self_attn.o_proj.weight", {h, c.num_attention_heads * d}});
    expect.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, h}});
    expect.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, h}});
    expect.push_back({p + "mlp.down_proj.weight", {h, c.intermediate_size}});
    expect.push_back({p + "input_layernorm.weight", {h}});
    expect.push_back({p + "post_attention_layernorm.weight", {h}});
  }
  for (const auto& [name, shape] : expect) {
    if (!ckpt.contains(name))
      throw RuntimeError("checkpoint " + dir.string() + " lacks tensor " + name + " that the model config needs");
    at::Tensor v = ckpt.view(name);
    if (v.sizes().vec() != shape)
      throw RuntimeError("checkpoint tensor " + name + " has shape " + shape_str(v.sizes()) + " but the config gives " +
                         shape_str(shape) + "; check config.json against the weights");
  }
}

NamedTensors hf_state(LlamaForCausalLMImpl& m, at::ScalarType dtype) {
  NamedTensors out;
  for (auto& p : m.named_parameters())
    out.emplace_back(p.key(), p.value().detach().to(at::kCPU, dtype).contiguous());
  return out;
}

}  // namespace longalign::model
