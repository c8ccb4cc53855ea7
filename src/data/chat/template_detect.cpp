// Template detection by the markers each template's text cannot do without.
#include "longalign/data/chat/template_detect.hpp"

#include <nlohmann/json.hpp>
#include <optional>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::data {
namespace {

bool has(const std::string& s, const char* m) { return s.find(m) != std::string::npos; }

std::optional<Template> from_chat_template(const std::string& t) {
  if (has(t, "<|start_header_id|>")) return Template::llama3;
  if (has(t, "<|im_start|>")) return has(t, "Qwen") ? Template::qwen : Template::chatml;
  if (has(t, "[gMASK]") || has(t, "<|user|>")) return Template::chatglm3;
  if (has(t, "[INST]")) return Template::llama2;
  return std::nullopt;
}

// tokenizer_config.json's chat_template: a string, or a list of {name, template} (default first).
std::optional<std::string> chat_template_of(const fs::path& tokenizer) {
  const auto config = contained_file_if_present(tokenizer.parent_path(), "tokenizer_config.json",
                                                "the folder of tokenizer " + tokenizer.string(), kMaxConfigFileBytes);
  if (!config) return std::nullopt;
  const std::string text = read_regular_file(*config, "tokenizer config", kMaxConfigFileBytes);
  check_json_depth(text, config->string());
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) return std::nullopt;
  const json& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_array()) {
    for (const auto& e : t)
      if (e.is_object() && e.value("name", json()) == "default" && e.contains("template") && e["template"].is_string())
        return e["template"].get<std::string>();
    return std::nullopt;
  }
  // transformers refuses such a file too; falling back to llama2 would train on the wrong format.
  throw UsageError(config->string() + ": chat_template is a " + std::string(t.type_name()) +
                   "; it must be a string or a list of {name, template} objects (fix the file or pass --template)");
}

}  // namespace

Template detect_template(const fs::path& tokenizer) {
  const fs::path config = tokenizer.parent_path() / "tokenizer_config.json";
  if (auto t = chat_template_of(tokenizer)) {
    if (auto tmpl = from_chat_template(*t)) return *tmpl;
    throw UsageError(config.string() + ": its chat_template is none that longalign knows (llama2, llama3, qwen, "
                     "chatglm3, chatml); pass --template (data.template)");
  }
  if (tokenizer.extension() != ".json") return Template::llama2;
  const std::string text = read_file(tokenizer).value_or("");
  check_json_depth(text, tokenizer.string());
  json j = json::parse(text, nullptr, false);
  std::string specials;
  if (j.is_object() && j.contains("added_tokens") && j["added_tokens"].is_array())
    for (const auto& a : j["added_tokens"])
      if (a.is_object() && a.contains("content") && a["content"].is_string()) specials += a["content"].get<std::string>();
  if (has(specials, "<|start_header_id|>")) return Template::llama3;
  if (has(specials, "<|im_start|>")) return Template::qwen;
  throw UsageError("cannot tell the chat template for " + tokenizer.string() +
                   " (no tokenizer_config.json with a chat_template beside it, no Llama-3 or ChatML special tokens); "
                   "pass --template (data.template)");
}

}  // namespace longalign::data
