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

// Modules a family stores as one tensor, their parts stacked along the output rows in order:
// GLM's gate_up_proj, and ChatGLM3's query_key_value (named qkv_proj before checkpoint_name).
struct Fusion {
  std::string fused;
  std::vector<std::pair<std::string, int64_t>> parts;  // module, rows
};

std::vector<Fusion> fusions(const LlamaConfig& c) {
  const int64_t d = c.resolved_head_dim(), inter = c.intermediate_size;
  std::vector<Fusion> out;
  if (c.is_glm()) out.push_back({"mlp.gate_up_proj", {{"mlp.gate_proj", inter}, {"mlp.up_proj", inter}}});
  if (c.is_chatglm())
    out.push_back({"self_attn.qkv_proj",
                   {{"self_attn.q_proj", c.num_attention_heads * d},
                    {"self_attn.k_proj", c.num_key_value_heads * d},
                    {"self_attn.v_proj", c.num_key_value_heads * d}}});
  return out;
}

// Where a model parameter lives in the checkpoint: a whole tensor, or rows of a fused one.
struct Source {
  std::string name;  // HF Llama/GLM scheme, before checkpoint_name
  int64_t row = 0, rows = -1;  // rows -1: the whole tensor
  size_t part = 0;             // index among its fusion's parts
  const Fusion* fusion = nullptr;
};

Source source_of(const std::vector<Fusion>& fs, const std::string& param) {
  for (const auto& f : fs) {
    int64_t row = 0;
    for (size_t i = 0; i < f.parts.size(); ++i) {
      const std::string needle = "." + f.parts[i].first + ".";
      if (auto at = param.find(needle); at != std::string::npos)
        return {std::string(param).replace(at + 1, f.parts[i].first.size(), f.fused), row, f.parts[i].second, i, &f};
      row += f.parts[i].second;
    }
  }
  return {param};
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
    if (c.is_chatglm()) {
      add("self_attn.qkv_proj", q + 2 * kv, h, c.qkv_bias);
    } else {
      add("self_attn.q_proj", q, h, c.qkv_bias);
      add("self_attn.k_proj", kv, h, c.qkv_bias);
      add("self_attn.v_proj", kv, h, c.qkv_bias);
    }
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
  for (auto& e : expect) e.first = checkpoint_name(c, e.first);
  return expect;
}

// Tensors a checkpoint may hold that change nothing: rotary buffers are recomputed from the
// config, and a tied model's lm_head copy is replaced by the embedding (as transformers does).
bool harmless_extra(const std::string& name, const LlamaConfig& c) {
  return ends_with(name, "rotary_emb.inv_freq") || ends_with(name, "rotary_pos_emb.inv_freq") ||
         (c.tie_word_embeddings && name == checkpoint_name(c, "lm_head.weight"));
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
}  // namespace

void init_weights(LlamaForCausalLMImpl& m, double std, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.named_parameters()) {
    if (is_adapter_parameter(p.key())) continue;  // adapters have their own init (lora.hpp)
    at::Tensor& t = p.value();
    if (ends_with(p.key(), ".bias")) t.zero_();
    else if (t.dim() == 1) t.fill_(1.0);
    else t.copy_(at::normal(0.0, std, t.sizes(), gen, at::TensorOptions().dtype(at::kFloat)));
  }
}

void load_hf_weights(LlamaForCausalLMImpl& m, const std::filesystem::path& dir) {
  CheckpointTensors ckpt(dir);
  const LlamaConfig& c = m.config();
  check_tensors(ckpt, dir, c);
  const auto fs = fusions(c);
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    if (is_adapter_parameter(p.key())) continue;  // not part of a HF checkpoint
    const Source s = source_of(fs, p.key());
    at::Tensor src = ckpt.view(checkpoint_name(c, s.name));
    if (s.fusion) src = src.narrow(0, s.row, s.rows);
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
  const LlamaConfig& c = m.config();
  const auto fs = fusions(c);
  auto params = m.named_parameters();
  auto cpu = [&](const at::Tensor& t) { return t.detach().to(at::kCPU, dtype).contiguous(); };
  for (auto& p : params) {
    if (is_adapter_parameter(p.key())) continue;  // written as a PEFT adapter, or merged first
    const Source s = source_of(fs, p.key());
    if (!s.fusion) {
      out.emplace_back(checkpoint_name(c, s.name), cpu(p.value()));
    } else if (s.part == 0) {  // the fused tensor is written once, with its first part
      std::vector<at::Tensor> parts;
      for (const auto& [module, rows] : s.fusion->parts) {
        std::string name = p.key();
        name.replace(name.find("." + s.fusion->parts[0].first + ".") + 1, s.fusion->parts[0].first.size(), module);
        parts.push_back(params[name]);
      }
      out.emplace_back(checkpoint_name(c, s.name), cpu(at::cat(parts, 0)));
    }
  }
  return out;
}

}  // namespace longalign::model
