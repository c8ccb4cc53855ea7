// PEFT adapter directories; see the header.
#include "longalign/model/peft_adapter.hpp"

#include <nlohmann/json.hpp>
#include <set>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/read_file.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::model {
namespace {

std::string shown(const json& v) { return truncate_for_message(v.dump(), 60); }

}  // namespace

LoraConfig read_adapter_config(const fs::path& dir) {
  check_input_file(dir / "adapter_config.json", "adapter config (--adapter must be a PEFT adapter directory)");
  const fs::path path = contained_file(dir, "adapter_config.json", "adapter directory " + dir.string(), kMaxConfigFileBytes);
  const std::string where = path.string();
  const std::string text = read_regular_file(path, "adapter config", kMaxConfigFileBytes);
  check_json_depth(text, where);
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) throw RuntimeError(where + " is not a JSON object");
  auto bad = [&](const std::string& key, const std::string& what) -> RuntimeError {
    return RuntimeError(where + ": " + key + " " + what + (j.contains(key) ? ", got " + shown(j[key]) : ""));
  };
  auto absent_or = [&](const std::string& key, const json& ok) {
    return !j.contains(key) || j[key].is_null() || j[key] == ok;
  };
  if (!j.contains("peft_type") || j["peft_type"] != "LORA") throw bad("peft_type", "must be \"LORA\" (only LoRA adapters load here)");
  LoraConfig c;
  if (!j.contains("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1 || j["r"].get<int64_t>() > 65536)
    throw bad("r", "must be a whole number in 1..65536");
  c.rank = j["r"].get<int64_t>();
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number() || !(j["lora_alpha"].get<double>() > 0))
    throw bad("lora_alpha", "must be a positive number");
  c.alpha = j["lora_alpha"].get<double>();
  if (j.contains("lora_dropout") && !j["lora_dropout"].is_null()) {
    if (!j["lora_dropout"].is_number() || j["lora_dropout"].get<double>() < 0 || j["lora_dropout"].get<double>() >= 1)
      throw bad("lora_dropout", "must be a number in [0, 1)");
    c.dropout = j["lora_dropout"].get<double>();
  }
  if (j.contains("use_rslora") && !j["use_rslora"].is_null()) {
    if (!j["use_rslora"].is_boolean()) throw bad("use_rslora", "must be true or false");
    c.use_rslora = j["use_rslora"].get<bool>();
  }
  const json& tm = j.contains("target_modules") ? j["target_modules"] : json();
  if (tm.is_string()) {
    c.target_modules = {tm.get<std::string>()};
    c.target_regex = tm.get<std::string>() != "all-linear";
  } else if (tm.is_array() && !tm.empty()) {
    c.target_modules.clear();
    for (const auto& e : tm) {
      if (!e.is_string()) throw bad("target_modules", "must be a list of module names or one regular expression");
      c.target_modules.push_back(e.get<std::string>());
    }
  } else {
    throw bad("target_modules", "must be a list of module names or one regular expression");
  }
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null()) {
    if (!j["modules_to_save"].is_array()) throw bad("modules_to_save", "must be a list of module names or null");
    for (const auto& e : j["modules_to_save"]) {
      if (!e.is_string()) throw bad("modules_to_save", "must be a list of module names or null");
      c.modules_to_save.push_back(e.get<std::string>());
    }
  }
  // What would change the computation and is not implemented: refused, not ignored.
  const std::vector<std::pair<std::string, json>> unsupported = {
      {"use_dora", false},          {"bias", "none"},       {"fan_in_fan_out", false}, {"lora_bias", false},
      {"rank_pattern", json::object()}, {"alpha_pattern", json::object()}, {"layers_to_transform", json()},
      {"layer_replication", json()},    {"target_parameters", json()},     {"trainable_token_indices", json()},
      {"exclude_modules", json()},      {"use_qalora", false},             {"use_bdlora", json()},
      {"alora_invocation_tokens", json()}};  // aLoRA: adapts only tokens after its invocation
  for (const auto& [key, ok] : unsupported)
    if (!absent_or(key, ok) && !(ok.is_null() && j[key].is_array() && j[key].empty()))
      throw bad(key, "is not supported here (expected " + (ok.is_null() ? std::string("null") : ok.dump()) + ")");
  return c;
}

std::string adapter_config_json(const LoraConfig& c, const std::string& base_model) {
  json tm;
  if (c.target_regex || (c.target_modules.size() == 1 && c.target_modules[0] == "all-linear")) tm = c.target_modules.at(0);
  else tm = c.target_modules;
  json j = {{"peft_type", "LORA"},
            {"task_type", "CAUSAL_LM"},
            {"base_model_name_or_path", base_model.empty() ? json() : json(base_model)},
            {"r", c.rank},
            {"lora_alpha", c.resolved_alpha()},
            {"lora_dropout", c.dropout},
            {"use_rslora", c.use_rslora},
            {"use_dora", false},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"init_lora_weights", true},
            {"inference_mode", true},
            {"target_modules", tm},
            {"modules_to_save", c.modules_to_save.empty() ? json() : json(c.modules_to_save)},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()},
            {"layers_to_transform", json()},
            {"layers_pattern", json()},
            {"revision", json()}};
  return j.dump(2) + "\n";
}

void load_adapter(LlamaForCausalLMImpl& m, const fs::path& dir) {
  const LoraConfig c = read_adapter_config(dir);
  const std::string where = (dir / "adapter_config.json").string();
  attach_lora(m, c, 0, where);
  const std::string scope = "adapter directory " + dir.string();
  if (!contained_file_if_present(dir, "adapter_model.safetensors", scope, kUnbounded)) {
    if (contained_file_if_present(dir, "adapter_model.bin", scope, kMaxConfigFileBytes))
      throw UsageError(dir.string() + " holds adapter_model.bin; save the adapter as safetensors "
                       "(save_pretrained(..., safe_serialization=True)) to load it here");
    throw UsageError(dir.string() + " has no adapter_model.safetensors");
  }
  const fs::path weights = contained_file(dir, "adapter_model.safetensors", scope, kUnbounded);
  SafetensorsFile f(weights);
  load_adapter_state(m, f, weights.string());
}

void write_adapter_files(const fs::path& dir, const LoraConfig& c, const std::string& base_model, const NamedTensors& state) {
  write_safetensors(dir / "adapter_model.safetensors", state, {{"format", "pt"}});
  write_file_atomic(dir / "adapter_config.json", adapter_config_json(c, base_model));
}

}  // namespace longalign::model
