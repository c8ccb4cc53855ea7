// HF config.json <-> LlamaConfig. Accepts transformers v4 (rope_theta / rope_scaling at top
// level, torch_dtype) and v5 (rope_parameters, dtype).
#include "longalign/model/llama_config.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <utility>

#include "longalign/core/error.hpp"
#include "longalign/core/option_check.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/read_file.hpp"

using nlohmann::json;

namespace longalign::model {
namespace {

// Every key is read through these, so a wrong type names the key and the value it holds
// ("hidden_size must be an integer, got \"4096\"") instead of a bare JSON type error.
template <typename T>
bool holds(const json& v) {
  if constexpr (std::is_same_v<T, bool>) return v.is_boolean();
  else if constexpr (std::is_integral_v<T>)
    return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
  else if constexpr (std::is_floating_point_v<T>) return v.is_number();
  else return v.is_string();
}

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else return "a string";
}

template <typename T>
T field(const json& j, const std::string& key, const std::string& where, const std::string& prefix = "") {
  if (!j.contains(key) || j[key].is_null()) throw UsageError(where + ": " + prefix + key + " is missing");
  const json& v = j[key];
  if (!holds<T>(v)) throw UsageError(where + ": " + prefix + key + " must be " + type_name<T>() + ", got " + truncate_for_message(v.dump()));
  return v.get<T>();
}

// A key that may be absent or null.
template <typename T>
T field_or(const json& j, const std::string& key, T dflt, const std::string& where, const std::string& prefix = "") {
  return j.contains(key) && !j[key].is_null() ? field<T>(j, key, where, prefix) : dflt;
}

void read_rope(const json& r, LlamaConfig& c, const std::string& where, const std::string& name) {
  if (!r.is_object()) return;
  const std::string p = name + ".";
  c.rope_theta = field_or(r, "rope_theta", c.rope_theta, where, p);
  std::string type = field_or(r, "rope_type", field_or(r, "type", std::string("default"), where, p), where, p);
  if (type != "default" && type != "linear" && type != "llama3")
    throw UsageError(where + ": rope type '" + type + "' is not supported; use default, linear or llama3");
  c.rope_scaling.type = type;
  c.rope_scaling.factor = field_or(r, "factor", 1.0, where, p);
  c.rope_scaling.low_freq_factor = field_or(r, "low_freq_factor", 1.0, where, p);
  c.rope_scaling.high_freq_factor = field_or(r, "high_freq_factor", 4.0, where, p);
  c.rope_scaling.original_max_position_embeddings =
      field_or(r, "original_max_position_embeddings", int64_t{8192}, where, p);
  c.partial_rotary_factor = field_or(r, "partial_rotary_factor", c.partial_rotary_factor, where, p);
}

bool supported_family(const std::string& model_type) {
  return model_type == "llama" || model_type == "mistral" || model_type == "qwen2" || model_type == "glm" ||
         model_type == "chatglm";
}

std::string unsupported_family(const std::string& where, const std::string& model_type) {
  return where + ": model_type '" + model_type + "' is not supported; use llama, mistral, qwen2, glm or chatglm";
}

// Each family's bias layout, as its transformers modeling file builds the Linears: a key the
// family's modeling code ignores is ignored here too, so the weights decide, never the key.
void read_biases(const json& j, LlamaConfig& c, const std::string& where) {
  const std::string& mt = c.model_type;
  if (mt == "qwen2") c.qkv_bias = true;
  if (mt == "glm") c.qkv_bias = field_or(j, "attention_bias", true, where);
  if (mt == "llama") {
    c.qkv_bias = c.o_bias = field_or(j, "attention_bias", false, where);
    c.mlp_bias = field_or(j, "mlp_bias", false, where);
  }
}

// ChatGLM2/3's config.json (configuration_chatglm.py): the GLM architecture under other keys.
// Its defaults are configuration_chatglm.py's, so a key it leaves out means what it means there.
LlamaConfig read_chatglm(const json& j, const std::string& where) {
  // Switches modeling_chatglm.py honours that the GLM model here does not compute: refused, so
  // such a checkpoint is never trained as a different network.
  const std::pair<const char*, bool> only[] = {{"rmsnorm", true},
                                               {"post_layer_norm", true},
                                               {"apply_residual_connection_post_layernorm", false},
                                               {"add_bias_linear", false}};
  for (const auto& [key, want] : only)
    if (field_or(j, key, want, where) != want)
      throw UsageError(where + ": " + key + " " + (want ? "false" : "true") +
                       " is not supported; the GLM model here has only ChatGLM3's layout (" + key + " " +
                       (want ? "true" : "false") + ")");
  if (field_or(j, "quantization_bit", int64_t{0}, where) != 0)
    throw UsageError(where + ": quantization_bit is not supported; use the unquantized checkpoint");
  LlamaConfig c;
  c.model_type = "chatglm";
  c.num_hidden_layers = field<int64_t>(j, "num_layers", where);
  c.hidden_size = field<int64_t>(j, "hidden_size", where);
  c.intermediate_size = field<int64_t>(j, "ffn_hidden_size", where);
  c.num_attention_heads = field<int64_t>(j, "num_attention_heads", where);
  c.head_dim = field_or(j, "kv_channels", c.head_dim, where);
  c.num_key_value_heads = field_or(j, "multi_query_attention", false, where)
                              ? field<int64_t>(j, "multi_query_group_num", where)
                              : c.num_attention_heads;
  c.vocab_size = field<int64_t>(j, "padded_vocab_size", where);
  c.rms_norm_eps = field_or(j, "layernorm_epsilon", 1e-5, where);
  c.max_position_embeddings = field_or(j, "seq_length", int64_t{2048}, where);
  // ChatGLM3-32k/128k stretch the context by scaling the rotary base, not the positions.
  c.rope_theta = 10000.0 * field_or(j, "rope_ratio", 1.0, where);
  c.qkv_bias = field_or(j, "add_qkv_bias", false, where);
  c.partial_rotary_factor = 0.5;  // RotaryEmbedding(kv_channels // 2): half of each head
  c.tie_word_embeddings = field_or(j, "tie_word_embeddings", false, where);
  return c;
}

}  // namespace

int64_t LlamaConfig::num_parameters() const {
  const int64_t d = resolved_head_dim();
  const int64_t attn = hidden_size * d * (num_attention_heads * 2 + num_key_value_heads * 2);
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  const int64_t biases = (qkv_bias ? d * (num_attention_heads + 2 * num_key_value_heads) : 0) + (o_bias ? hidden_size : 0) +
                         (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  const int64_t layer = attn + mlp + biases + 2 * hidden_size;
  return vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + hidden_size;
}

void LlamaConfig::validate(const std::string& where) const {
  // The upper limits lie far beyond any real model; they keep a typo from asking for terabytes
  // (and the parameter count from overflowing) before anything is allocated.
  auto bounded = [&](int64_t v, const char* name, int64_t hi) {
    if (v <= 0 || v > hi)
      throw UsageError(where + ": " + out_of_range(name, std::to_string(v), range_text(1, double(hi))));
  };
  bounded(vocab_size, "vocab_size", int64_t{1} << 24);
  bounded(hidden_size, "hidden_size", int64_t{1} << 20);
  bounded(intermediate_size, "intermediate_size", int64_t{1} << 22);
  bounded(num_hidden_layers, "num_hidden_layers", int64_t{1} << 14);
  bounded(num_attention_heads, "num_attention_heads", int64_t{1} << 14);
  bounded(num_key_value_heads, "num_key_value_heads", int64_t{1} << 14);
  if (head_dim < 0 || head_dim > (int64_t{1} << 16))
    throw UsageError(where + ": " + out_of_range("head_dim", std::to_string(head_dim), "0..65536 (0: hidden_size / heads)"));
  bounded(max_position_embeddings, "max_position_embeddings", int64_t{1} << 30);
  if (num_attention_heads % num_key_value_heads != 0)
    throw UsageError(where + ": num_attention_heads (" + std::to_string(num_attention_heads) +
                     ") must be a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")");
  if (head_dim <= 0 && hidden_size % num_attention_heads != 0)
    throw UsageError(where + ": hidden_size must be divisible by num_attention_heads, or set head_dim");
  if (resolved_head_dim() % 2 != 0) throw UsageError(where + ": head_dim must be even for RoPE");
  if (!(partial_rotary_factor > 0 && partial_rotary_factor <= 1) || rotary_dim() % 2 != 0 || rotary_dim() == 0)
    throw UsageError(where + ": partial_rotary_factor " + std::to_string(partial_rotary_factor) +
                     " must be in (0, 1] and give an even, nonzero number of rotated dims of head_dim " +
                     std::to_string(resolved_head_dim()));
  if (partial_rotary_factor != 1.0 && !is_glm())
    throw UsageError(where + ": partial_rotary_factor is supported only for model_type glm");
  if (!supported_family(model_type)) throw UsageError(unsupported_family(where, model_type));
  if (!(rms_norm_eps > 0)) throw UsageError(where + ": rms_norm_eps must be positive");
  if (!(rope_theta > 0) || std::isinf(rope_theta)) throw UsageError(where + ": rope_theta must be positive");
  if (!(rope_scaling.factor > 0) || std::isinf(rope_scaling.factor)) throw UsageError(where + ": rope scaling factor must be positive");
}

LlamaConfig parse_hf_config(const std::string& text, const std::string& where) {
  check_json_depth(text, where);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw UsageError(where + " is not valid JSON");
  if (!j.is_object()) throw UsageError(where + " is not a JSON object");
  LlamaConfig c;
  try {
    c.model_type = field_or(j, "model_type", std::string("llama"), where);
    if (!supported_family(c.model_type)) throw UsageError(unsupported_family(where, c.model_type));
    if (c.is_chatglm()) c = read_chatglm(j, where);
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number()) c.bos_token_id = j["bos_token_id"];
    if (j.contains("eos_token_id") && j["eos_token_id"].is_number()) c.eos_token_id = j["eos_token_id"];
    if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"];
    if (c.is_chatglm()) {
      c.validate(where);
      return c;
    }
    // GLM's config leaves this out for its historical default.
    if (c.is_glm()) c.partial_rotary_factor = 0.5;
    c.partial_rotary_factor = field_or(j, "partial_rotary_factor", c.partial_rotary_factor, where);
    c.vocab_size = field<int64_t>(j, "vocab_size", where);
    c.hidden_size = field<int64_t>(j, "hidden_size", where);
    c.intermediate_size = field<int64_t>(j, "intermediate_size", where);
    c.num_hidden_layers = field<int64_t>(j, "num_hidden_layers", where);
    c.num_attention_heads = field<int64_t>(j, "num_attention_heads", where);
    c.num_key_value_heads = field_or(j, "num_key_value_heads", c.num_attention_heads, where);
    c.head_dim = field_or(j, "head_dim", c.head_dim, where);
    c.max_position_embeddings = field_or(j, "max_position_embeddings", int64_t{4096}, where);
    c.rms_norm_eps = field_or(j, "rms_norm_eps", 1e-6, where);
    c.tie_word_embeddings = field_or(j, "tie_word_embeddings", false, where);
    c.rope_theta = field_or(j, "rope_theta", c.rope_theta, where);
    if (j.contains("rope_scaling")) read_rope(j["rope_scaling"], c, where, "rope_scaling");
    if (j.contains("rope_parameters")) read_rope(j["rope_parameters"], c, where, "rope_parameters");
    read_biases(j, c, where);
    if (c.model_type == "qwen2" && field_or(j, "use_sliding_window", false, where))
      throw UsageError(where + ": use_sliding_window is not supported; the model attends to the whole context");
  } catch (const json::exception& e) {
    throw UsageError(where + ": " + e.what());
  }
  c.validate(where);
  return c;
}

LlamaConfig load_hf_config(const std::filesystem::path& p) {
  check_input_file(p, "model config");  // a FIFO here would block the read forever
  return parse_hf_config(read_regular_file(p, "model config", kMaxConfigFileBytes), p.string());
}

namespace {
// The model attends to the whole context, so Mistral is written as Llama, whose config has no
// sliding window to contradict that.
std::string written_model_type(const LlamaConfig& c) { return c.model_type == "mistral" ? "llama" : c.model_type; }

std::string hf_architecture(const LlamaConfig& c) {
  if (c.model_type == "qwen2") return "Qwen2ForCausalLM";
  if (c.is_glm()) return "GlmForCausalLM";
  return "LlamaForCausalLM";
}


// The keys read_chatglm reads, so a ChatGLM3 checkpoint is written back as one.
json chatglm_config_json(const LlamaConfig& c, const std::string& torch_dtype) {
  return {{"architectures", {"ChatGLMModel"}},
          {"model_type", "chatglm"},
          {"num_layers", c.num_hidden_layers},
          {"padded_vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size},
          {"ffn_hidden_size", c.intermediate_size},
          {"num_attention_heads", c.num_attention_heads},
          {"kv_channels", c.resolved_head_dim()},
          {"multi_query_attention", c.num_key_value_heads != c.num_attention_heads},
          {"multi_query_group_num", c.num_key_value_heads},
          {"seq_length", c.max_position_embeddings},
          {"layernorm_epsilon", c.rms_norm_eps},
          {"rope_ratio", c.rope_theta / 10000.0},
          {"add_qkv_bias", c.qkv_bias},
          {"add_bias_linear", false},
          {"rmsnorm", true},
          {"post_layer_norm", true},
          {"apply_residual_connection_post_layernorm", false},
          {"original_rope", true},
          {"tie_word_embeddings", c.tie_word_embeddings},
          {"bos_token_id", c.bos_token_id},
          {"eos_token_id", c.eos_token_id},
          {"pad_token_id", c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size ? json(c.pad_token_id) : json(nullptr)},
          {"torch_dtype", torch_dtype}};
}
}  // namespace

std::string to_hf_config_json(const LlamaConfig& c, const std::string& torch_dtype) {
  if (c.is_chatglm()) return chatglm_config_json(c, torch_dtype).dump(2) + "\n";
  json rope = nullptr;
  if (c.rope_scaling.type == "linear") rope = {{"rope_type", "linear"}, {"factor", c.rope_scaling.factor}};
  if (c.rope_scaling.type == "llama3")
    rope = {{"rope_type", "llama3"},
            {"factor", c.rope_scaling.factor},
            {"low_freq_factor", c.rope_scaling.low_freq_factor},
            {"high_freq_factor", c.rope_scaling.high_freq_factor},
            {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  json j = {{"architectures", {hf_architecture(c)}},
            {"model_type", written_model_type(c)},
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
            {"bos_token_id", c.bos_token_id},
            {"eos_token_id", c.eos_token_id},
            {"pad_token_id", c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size ? json(c.pad_token_id) : json(nullptr)},
            {"torch_dtype", torch_dtype}};
  if (c.model_type == "qwen2") {
    j["use_sliding_window"] = false;  // the model attends to the whole context
  } else if (c.is_glm()) {
    j["attention_bias"] = c.qkv_bias;
    j["partial_rotary_factor"] = c.partial_rotary_factor;
  } else {
    j["attention_bias"] = c.qkv_bias;
    j["mlp_bias"] = c.mlp_bias;
  }
  return j.dump(2) + "\n";
}

namespace {
// ChatGLM3's names for the GLM modules, by name fragment. Both sides end in '.' so a fragment
// never matches inside a longer module name; a module name gets a '.' appended to match.
const std::pair<const char*, const char*> kChatGlmNames[] = {
    {"model.embed_tokens.", "transformer.embedding.word_embeddings."},
    {"model.layers.", "transformer.encoder.layers."},
    {"model.norm.", "transformer.encoder.final_layernorm."},
    {"lm_head.", "transformer.output_layer."},
    {"self_attn.qkv_proj.", "self_attention.query_key_value."},
    {"self_attn.o_proj.", "self_attention.dense."},
    {"mlp.gate_up_proj.", "mlp.dense_h_to_4h."},
    {"mlp.down_proj.", "mlp.dense_4h_to_h."},
};
}  // namespace

std::string checkpoint_name(const LlamaConfig& c, std::string name) {
  if (!c.is_chatglm()) return name;
  name += '.';
  for (const auto& [ours, theirs] : kChatGlmNames)
    if (auto at = name.find(ours); at != std::string::npos) name.replace(at, std::string(ours).size(), theirs);
  name.pop_back();
  return name;
}

}  // namespace longalign::model
