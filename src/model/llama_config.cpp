// HF config.json <-> LlamaConfig. Accepts transformers v4 (rope_theta / rope_scaling at top
// level, torch_dtype) and v5 (rope_parameters, dtype).
#include "longalign/model/llama_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"

using nlohmann::json;

namespace longalign::model {
namespace {

void read_rope(const json& r, LlamaConfig& c, const std::string& where) {
  if (!r.is_object()) return;
  if (r.contains("rope_theta")) c.rope_theta = r["rope_theta"].get<double>();
  std::string type = r.value("rope_type", r.value("type", std::string("default")));
  if (type != "default" && type != "linear" && type != "llama3")
    throw UsageError(where + ": rope type '" + type + "' is not supported; use default, linear or llama3");
  c.rope_scaling.type = type;
  c.rope_scaling.factor = r.value("factor", 1.0);
  c.rope_scaling.low_freq_factor = r.value("low_freq_factor", 1.0);
  c.rope_scaling.high_freq_factor = r.value("high_freq_factor", 4.0);
  c.rope_scaling.original_max_position_embeddings = r.value("original_max_position_embeddings", int64_t{8192});
}

}  // namespace

int64_t LlamaConfig::num_parameters() const {
  const int64_t d = resolved_head_dim();
  const int64_t attn = hidden_size * d * (num_attention_heads * 2 + num_key_value_heads * 2);
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  const int64_t layer = attn + mlp + 2 * hidden_size;
  return vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + hidden_size;
}

void LlamaConfig::validate(const std::string& where) const {
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) throw UsageError(where + ": " + name + " must be positive, got " + std::to_string(v));
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_hidden_layers, "num_hidden_layers");
  positive(num_attention_heads, "num_attention_heads");
  positive(num_key_value_heads, "num_key_value_heads");
  if (num_attention_heads % num_key_value_heads != 0)
    throw UsageError(where + ": num_attention_heads (" + std::to_string(num_attention_heads) +
                     ") must be a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")");
  if (head_dim <= 0 && hidden_size % num_attention_heads != 0)
    throw UsageError(where + ": hidden_size must be divisible by num_attention_heads, or set head_dim");
  if (resolved_head_dim() % 2 != 0) throw UsageError(where + ": head_dim must be even for RoPE");
  if (rms_norm_eps <= 0) throw UsageError(where + ": rms_norm_eps must be positive");
  if (rope_theta <= 0) throw UsageError(where + ": rope_theta must be positive");
  if (rope_scaling.factor <= 0) throw UsageError(where + ": rope scaling factor must be positive");
}

LlamaConfig parse_hf_config(const std::string& text, const std::string& where) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) throw UsageError(where + " is not valid JSON");
  LlamaConfig c;
  try {
    std::string mt = j.value("model_type", std::string("llama"));
    if (mt != "llama" && mt != "mistral" && mt != "qwen2")
      throw UsageError(where + ": model_type '" + mt + "' is not a Llama-architecture model");
    c.vocab_size = j.at("vocab_size").get<int64_t>();
    c.hidden_size = j.at("hidden_size").get<int64_t>();
    c.intermediate_size = j.at("intermediate_size").get<int64_t>();
    c.num_hidden_layers = j.at("num_hidden_layers").get<int64_t>();
    c.num_attention_heads = j.at("num_attention_heads").get<int64_t>();
    c.num_key_value_heads = j.value("num_key_value_heads", c.num_attention_heads);
    if (j.contains("head_dim") && !j["head_dim"].is_null()) c.head_dim = j["head_dim"].get<int64_t>();
    c.max_position_embeddings = j.value("max_position_embeddings", int64_t{4096});
    c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number()) c.bos_token_id = j["bos_token_id"];
    if (j.contains("eos_token_id") && j["eos_token_id"].is_number()) c.eos_token_id = j["eos_token_id"];
    if (j.contains("rope_theta")) c.rope_theta = j["rope_theta"].get<double>();
    if (j.contains("rope_scaling")) read_rope(j["rope_scaling"], c, where);
    if (j.contains("rope_parameters")) read_rope(j["rope_parameters"], c, where);
    if (j.value("attention_bias", false) || j.value("mlp_bias", false))
      throw UsageError(where + ": attention_bias / mlp_bias are not supported");
  } catch (const json::exception& e) {
    throw UsageError(where + ": " + e.what());
  }
  c.validate(where);
  return c;
}

LlamaConfig load_hf_config(const std::filesystem::path& p) {
  auto text = read_file(p);
  if (!text) throw UsageError("model config " + p.string() + " does not exist");
  return parse_hf_config(*text, p.string());
}

std::string to_hf_config_json(const LlamaConfig& c, const std::string& torch_dtype) {
  json rope = nullptr;
  if (c.rope_scaling.type == "linear") rope = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  if (c.rope_scaling.type == "llama3")
    rope = {{"rope_type", "llama3"},
            {"factor", c.rope_scaling.factor},
            {"low_freq_factor", c.rope_scaling.low_freq_factor},
            {"high_freq_factor", c.rope_scaling.high_freq_factor},
            {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  json j = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"head_dim", c.resolved_head_dim()},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope_theta},
            {"rope_scaling", rope},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"hidden_act", "silu"},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"bos_token_id", c.bos_token_id},
            {"eos_token_id", c.eos_token_id},
            {"torch_dtype", torch_dtype}};
  return j.dump(2) + "\n";
}

}  // namespace longalign::model
