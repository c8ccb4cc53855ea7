// Weight loading/saving and init. Loading copies into existing parameters so the model's
// device and dtype decide the result, whatever the file stores. The checkpoint's tensor set is
// checked both ways: a tensor the model would not use (a bias the config does not name, say)
// is an error, because dropping it would silently compute a different model.
#include "longalign/model/weights.hpp"

#include <torch/torch.h>

#include <set>

#include "longalign/core/error.hpp"

namespace longalign::model {
namespace {
std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

using Shapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// Every tensor a checkpoint of `c` holds, named and shaped as in the HF checkpoint.
Shapes expected_tensors(const LlamaConfig& c) {
  const int64_t h = c.hidden_size, d = c.resolved_head_dim(), inter = c.intermediate_size;
  const int64_t q = c.num_attention_heads * d, kv = c.num_key_value_heads * d;
  Shapes expect = {{"model.embed_tokens.weight", {c.vocab_size, h}}, {"model.norm.weight", {h}}};
  if (!c.tie_word_embeddings) expect.push_back({"lm_head.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    auto add = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
      expect.push_back({p + name + ".weight", {out, in}});
      if (bias) expect.push_back({p + name + ".bias", {out}});
    };
    add("self_attn.q_proj", q, h, c.qkv_bias);
    add("self_attn.k_proj", kv, h, c.qkv_bias);
    add("self_attn.v_proj", kv, h, c.qkv_bias);
    add("self_attn.o_proj", h, q, c.o_bias);
    if (c.is_glm()) {
      add("mlp.gate_up_proj", 2 * inter, h, c.mlp_bias);
    } else {
      add("mlp.gate_proj", inter, h, c.mlp_bias);
      add("mlp.up_proj", inter, h, c.mlp_bias);
    }
    add("mlp.down_proj", h, inter, c.mlp_bias);
    expect.push_back({p + "input_layernorm.weight", {h}});
    expect.push_back({p + "post_attention_layernorm.weight", {h}});
  }
  return expect;
}

// Tensors a checkpoint may hold that change nothing: rotary buffers are recomputed from the
// config, and a tied model's lm_head copy is replaced by the embedding (as transformers does).
bool harmless_extra(const std::string& name, const LlamaConfig& c) {
  return ends_with(name, "rotary_emb.inv_freq") || (c.tie_word_embeddings && name == "lm_head.weight");
}

void check_tensors(const CheckpointTensors& ckpt, const std::filesystem::path& dir, const LlamaConfig& c) {
  std::set<std::string> wanted;
  for (const auto& [name, shape] : expected_tensors(c)) {
    wanted.insert(name);
    if (!ckpt.contains(name))
      throw RuntimeError("checkpoint " + dir.string() + " lacks tensor " + name + " that the model config needs");
    at::Tensor v = ckpt.view(name);
    if (v.sizes().vec() != shape)
      throw RuntimeError("checkpoint tensor " + name + " has shape " + shape_str(v.sizes()) + " but the config gives " +
                         shape_str(shape) + "; check config.json against the weights");
  }
  for (const auto& name : ckpt.names())
    if (!wanted.count(name) && !harmless_extra(name, c))
      throw RuntimeError("checkpoint " + dir.string() + " holds tensor " + name + " that a model_type " + c.model_type +
                         " model with this config.json does not use (e.g. a bias its config does not enable); "
                         "refusing to drop it silently");
}

// GLM stores gate and up as one [2 * intermediate, hidden] tensor, gate rows first.
const char* const kGate = "mlp.gate_proj.weight";
const char* const kUp = "mlp.up_proj.weight";
const char* const kGateUp = "mlp.gate_up_proj.weight";

std::string fused_name(const std::string& param, const std::string& part) {
  return param.substr(0, param.size() - part.size()) + kGateUp;
}

// The checkpoint tensor holding `param`, narrowed to its rows when it is one half of a fused one.
at::Tensor source_of(const CheckpointTensors& ckpt, const LlamaConfig& c, const std::string& param) {
  if (c.is_glm() && ends_with(param, kGate))
    return ckpt.view(fused_name(param, kGate)).narrow(0, 0, c.intermediate_size);
  if (c.is_glm() && ends_with(param, kUp))
    return ckpt.view(fused_name(param, kUp)).narrow(0, c.intermediate_size, c.intermediate_size);
  return ckpt.view(param);
}
}  // namespace

void init_weights(LlamaForCausalLMImpl& m, double std, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.named_parameters()) {
    at::Tensor& t = p.value();
    if (ends_with(p.key(), ".bias")) t.zero_();
    else if (t.dim() == 1) t.fill_(1.0);
    else t.copy_(at::normal(0.0, std, t.sizes(), gen, at::TensorOptions().dtype(at::kFloat)));
  }
}

void load_hf_weights(LlamaForCausalLMImpl& m, const std::filesystem::path& dir) {
  CheckpointTensors ckpt(dir);
  check_tensors(ckpt, dir, m.config());
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    at::Tensor src = source_of(ckpt, m.config(), p.key());
    if (src.sizes() != p.value().sizes())  // the model and expected_tensors disagree: a bug here
      throw RuntimeError("checkpoint tensor for " + p.key() + " has shape " + shape_str(src.sizes()) +
                         " but the model has " + shape_str(p.value().sizes()));
    p.value().copy_(src);
  }
}

void check_weight_shapes(const std::filesystem::path& dir, const LlamaConfig& c) {
  CheckpointTensors ckpt(dir);
  check_tensors(ckpt, dir, c);
}

NamedTensors hf_state(LlamaForCausalLMImpl& m, at::ScalarType dtype) {
  NamedTensors out;
  auto params = m.named_parameters();
  auto cpu = [&](const at::Tensor& t) { return t.detach().to(at::kCPU, dtype).contiguous(); };
  for (auto& p : params) {
    const std::string& name = p.key();
    if (m.config().is_glm() && ends_with(name, kUp)) continue;  // written with its gate
    if (m.config().is_glm() && ends_with(name, kGate)) {
      const std::string up = name.substr(0, name.size() - std::string(kGate).size()) + kUp;
      out.emplace_back(fused_name(name, kGate), cpu(at::cat({p.value(), params[up]}, 0)));
    } else {
      out.emplace_back(name, cpu(p.value()));
    }
  }
  return out;
}

}  // namespace longalign::model
