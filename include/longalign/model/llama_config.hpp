// Llama-family architecture hyper-parameters (Llama, Mistral, Qwen2, GLM, ChatGLM3), read from a HF
// config.json (transformers v4 or v5 layout) or from a YAML `model:` section, and written back
// as HF config.json of the same family.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

namespace longalign::model {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1, eos_token_id = 2;
  // -1: none. Written back because some families' defaults (GLM's 151329) lie outside a small
  // vocabulary, and transformers refuses such an embedding.
  int64_t pad_token_id = -1;
  // The HF family the weights come from; it decides the bias layout, GLM's fused gate_up_proj
  // and partial interleaved rope, and which config.json a checkpoint is written back with.
  // chatglm is GLM stored under ChatGLM2/3's own tensor names and config.json keys
  // (modeling_chatglm.py), with q, k and v fused; it is read and written back in that layout.
  std::string model_type = "llama";  // llama | mistral | qwen2 | glm | chatglm
  bool qkv_bias = false;  // Qwen2, GLM, Llama attention_bias
  bool o_bias = false;    // Llama attention_bias only
  bool mlp_bias = false;  // Llama mlp_bias: gate, up and down
  double partial_rotary_factor = 1.0;  // GLM rotates only this share of each head

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  bool is_glm() const { return model_type == "glm" || is_chatglm(); }
  bool is_chatglm() const { return model_type == "chatglm"; }
  // The leading dims of each head that RoPE rotates; the rest pass through.
  int64_t rotary_dim() const { return int64_t(double(resolved_head_dim()) * partial_rotary_factor); }
  int64_t num_parameters() const;
  // UsageError naming the field when a value is out of range or inconsistent (e.g. GQA).
  void validate(const std::string& where) const;
};

// Reads config.json; `where` in errors is the file. Unsupported rope types are UsageErrors.
LlamaConfig load_hf_config(const std::filesystem::path& config_json);
LlamaConfig parse_hf_config(const std::string& json_text, const std::string& where);
std::string to_hf_config_json(const LlamaConfig& c, const std::string& torch_dtype);

// The checkpoint's name for a tensor or module named in the HF Llama/GLM scheme: the name itself,
// or for chatglm modeling_chatglm.py's (model.layers.0.self_attn.qkv_proj ->
// transformer.encoder.layers.0.self_attention.query_key_value; qkv_proj is our name for the
// fused q, k, v that the HF GLM scheme lacks).
std::string checkpoint_name(const LlamaConfig& c, std::string name);

}  // namespace longalign::model
