// JSONL dialect parsing. Follows the reference's tolerance (null content is "", a trailing
// unanswered user turn is dropped, zero-width characters are stripped from answers) and
// counts everything else that can't be trained on instead of guessing.
#include "longalign/data/chat/record_parser.hpp"

#include <nlohmann/json.hpp>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/utf8.hpp"

using nlohmann::json;

namespace longalign::data {
namespace {

ParsedRecord skipped(std::string reason, std::string detail) {
  ParsedRecord r;
  r.kind = ParsedRecord::Kind::skipped;
  r.reason = std::move(reason);
  r.detail = std::move(detail);
  return r;
}

// Reads a string field: missing -> false; null -> "" (reference behaviour); non-string -> false.
bool get_text(const json& obj, const char* key, std::string& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return false;
  if (it->is_null()) {
    out.clear();
    return true;
  }
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

enum class Role { system, user, assistant, unknown };

// Builds rounds from a role-tagged list: [system] (user assistant)+ [user].
ParsedRecord from_turns(std::vector<std::pair<Role, std::string>> turns) {
  ParsedRecord r;
  if (turns.empty()) return skipped("empty_conversation", "the conversation has no messages");
  size_t i = 0;
  if (turns[0].first == Role::system) {
    r.conv.system = turns[0].second;
    ++i;
  }
  if (i < turns.size() && turns.back().first == Role::user && (turns.size() - i) % 2 == 1)
    turns.pop_back();  // trailing unanswered question: the reference drops it too
  for (; i < turns.size(); i += 2) {
    if (turns[i].first != Role::user || i + 1 >= turns.size() || turns[i + 1].first != Role::assistant)
      return skipped("bad_turn_order", "messages must be [system] then alternating user/assistant turns");
    std::string answer = strip_zero_width(turns[i + 1].second);
    if (answer.empty()) return skipped("empty_assistant_turn", "an assistant turn is empty");
    r.conv.rounds.push_back({turns[i].second, std::move(answer)});
  }
  if (r.conv.rounds.empty()) return skipped("empty_conversation", "the conversation has no answered turn");
  r.kind = ParsedRecord::Kind::conversation;
  return r;
}

Role role_of(const std::string& s) {
  if (s == "system") return Role::system;
  if (s == "user" || s == "human") return Role::user;
  if (s == "assistant" || s == "gpt" || s == "chatgpt") return Role::assistant;
  return Role::unknown;
}

ParsedRecord parse_chat(const json& j, const char* list_key, const char* role_key, const char* text_key) {
  auto it = j.find(list_key);
  if (it == j.end() || !it->is_array())
    return skipped("missing_field", std::string("no \"") + list_key + "\" array");
  std::vector<std::pair<Role, std::string>> turns;
  for (const auto& m : *it) {
    if (!m.is_object()) return skipped("missing_field", std::string("an entry of \"") + list_key + "\" is not an object");
    std::string role, text;
    if (!get_text(m, role_key, role) || role.empty())
      return skipped("missing_field", std::string("a message has no \"") + role_key + "\"");
    if (!get_text(m, text_key, text))
      return skipped("missing_field", std::string("a message has no string \"") + text_key + "\"");
    Role ro = role_of(role);
    if (ro == Role::unknown) return skipped("unknown_role", "unknown role \"" + role + "\"");
    turns.emplace_back(ro, std::move(text));
  }
  return from_turns(std::move(turns));
}

ParsedRecord parse_alpaca(const json& j) {
  std::string instruction, input, output;
  if (!get_text(j, "instruction", instruction) || !get_text(j, "output", output))
    return skipped("missing_field", "alpaca records need \"instruction\" and \"output\" strings");
  get_text(j, "input", input);
  std::string user = input.empty() ? instruction : instruction + "\n\n" + input;
  return from_turns({{Role::user, std::move(user)}, {Role::assistant, std::move(output)}});
}

ParsedRecord parse_tokens(const json& j) {
  auto ids = j.find("input_ids");
  if (ids == j.end() || !ids->is_array()) return skipped("missing_field", "no \"input_ids\" array");
  ParsedRecord r;
  r.kind = ParsedRecord::Kind::tokens;
  auto& t = r.tokens;
  for (const auto& v : *ids) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return skipped("bad_token", "input_ids must hold non-negative 32-bit integers");
    t.ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  if (t.ids.empty()) return skipped("empty_conversation", "input_ids is empty");
  t.target.assign(t.ids.size(), 1);
  t.target[0] = 0;
  auto labels = j.find("labels");
  if (labels != j.end() && !labels->is_null()) {
    if (!labels->is_array() || labels->size() != t.ids.size())
      return skipped("bad_labels", "labels must be an array as long as input_ids");
    for (size_t i = 0; i < t.ids.size(); ++i) {
      const auto& l = (*labels)[i];
      if (!l.is_number_integer()) return skipped("bad_labels", "labels must be integers");
      // HF semantics: labels[i] is what position i-1 predicts. A label that differs from
      // input_ids[i] is kept as a relabel; labels[0] predicts nothing and is ignored.
      int64_t v = l.get<int64_t>();
      if (v == -100) {
        t.target[i] = 0;
      } else if (v < 0 || v > INT32_MAX) {
        return skipped("bad_labels", "labels must be -100 or non-negative 32-bit token ids");
      } else if (i > 0 && v != t.ids[i]) {
        t.relabels.push_back({uint32_t(i), int32_t(v)});
      }
    }
    t.target[0] = 0;
  }
  return r;
}

}  // namespace

InputFormat parse_input_format(const std::string& name) {
  if (name == "auto" || name == "detect") return InputFormat::detect;
  if (name == "longalign" || name == "openai" || name == "messages") return InputFormat::longalign;
  if (name == "sharegpt") return InputFormat::sharegpt;
  if (name == "alpaca") return InputFormat::alpaca;
  if (name == "tokens" || name == "pretokenized") return InputFormat::tokens;
  throw UsageError("unknown input format '" + name + "'; use auto, longalign, sharegpt, alpaca or tokens");
}

const char* to_string(InputFormat f) {
  switch (f) {
    case InputFormat::detect: return "auto";
    case InputFormat::longalign: return "longalign";
    case InputFormat::sharegpt: return "sharegpt";
    case InputFormat::alpaca: return "alpaca";
    case InputFormat::tokens: return "tokens";
  }
  return "?";
}

InputFormat detect_format(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (!j.is_object()) return InputFormat::detect;
  if (j.contains("messages")) return InputFormat::longalign;
  if (j.contains("conversations")) return InputFormat::sharegpt;
  if (j.contains("input_ids")) return InputFormat::tokens;
  if (j.contains("instruction")) return InputFormat::alpaca;
  return InputFormat::detect;
}

ParsedRecord parse_record(std::string_view line, InputFormat fmt) {
  ParsedRecord bad;
  bad.kind = ParsedRecord::Kind::invalid;
  size_t pos = find_invalid_utf8(line);
  if (pos != std::string_view::npos) {
    bad.reason = "invalid_utf8";
    bad.detail = "invalid UTF-8 at byte " + std::to_string(pos) + "; re-encode the file as UTF-8";
    return bad;
  }
  try {
    check_json_depth(line, "the record");
  } catch (const RuntimeError& e) {
    bad.reason = "too_deep";
    bad.detail = e.what();
    return bad;
  }
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    bad.reason = "malformed_json";
    bad.detail = j.is_discarded() ? "malformed JSON" : "the line is JSON but not an object";
    return bad;
  }
  switch (fmt) {
    case InputFormat::longalign: return parse_chat(j, "messages", "role", "content");
    case InputFormat::sharegpt: return parse_chat(j, "conversations", "from", "value");
    case InputFormat::alpaca: return parse_alpaca(j);
    case InputFormat::tokens: return parse_tokens(j);
    case InputFormat::detect: break;
  }
  throw std::logic_error("parse_record needs a concrete format");
}

}  // namespace longalign::data
