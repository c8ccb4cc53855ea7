// Llama architecture hyper-parameters, read from a HF config.json (transformers v4 or v5
// layout) or from a YAML `model:` section, and written back as HF config.json.
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

  int64_t resolved_head_dim() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  int64_t num_parameters() const;
  // UsageError naming the field when a value is out of range or inconsistent (e.g. GQA).
  void validate(const std::string& where) const;
};

// Reads config.json; `where` in errors is the file. Unsupported rope types are UsageErrors.
LlamaConfig load_hf_config(const std::filesystem::path& config_json);
LlamaConfig parse_hf_config(const std::string& json_text, const std::string& where);
std::string to_hf_config_json(const LlamaConfig& c, const std::string& torch_dtype);

}  // namespace longalign::model
