// The built-in templates. llama2 and chatglm3 follow LongAlign's reference exactly (rounds
// joined by "\n\n"); llama3 and qwen follow the chat templates those models ship (Llama-3's
// headers with <|eot_id|> closing every turn; Qwen2.5's ChatML with its default system prompt);
// chatml and raw use the same target rule: every answer and the token that closes it.
#include "longalign/data/chat/chat_template.hpp"

#include <algorithm>
#include <string_view>

#include "longalign/core/error.hpp"
#include "longalign/core/text.hpp"

namespace longalign::data {
namespace {

Segment text(std::string s, bool target = false) { return {Segment::Kind::text, std::move(s), target}; }
Segment eos() { return {Segment::Kind::eos, "", true}; }
Segment piece(std::string p, bool target = false) { return {Segment::Kind::piece, std::move(p), target}; }

void add_answer(std::vector<Segment>& out, const std::string& answer) {
  out.push_back(text(answer, true));
  out.push_back(eos());
}

}  // namespace

Template parse_template(const std::string& name) {
  if (name == "llama2") return Template::llama2;
  if (name == "chatglm3") return Template::chatglm3;
  if (name == "chatml") return Template::chatml;
  if (name == "raw") return Template::raw;
  if (name == "llama3") return Template::llama3;
  if (name == "qwen") return Template::qwen;
  throw UsageError("unknown template '" + name + "'; use llama2, llama3, qwen, chatglm3, chatml or raw");
}

const char* to_string(Template t) {
  switch (t) {
    case Template::llama2: return "llama2";
    case Template::chatglm3: return "chatglm3";
    case Template::chatml: return "chatml";
    case Template::raw: return "raw";
    case Template::llama3: return "llama3";
    case Template::qwen: return "qwen";
  }
  return "?";
}

std::vector<Segment> render_template(const Conversation& conv, Template t) {
  std::vector<Segment> out;
  const auto& rounds = conv.rounds;
  switch (t) {
    case Template::llama2:
      out.push_back({Segment::Kind::bos, "", false});
      for (size_t i = 0; i < rounds.size(); ++i) {
        std::string sys = (i == 0 && !conv.system.empty()) ? "<<SYS>>\n" + conv.system + "\n<</SYS>>\n\n" : "";
        out.push_back(text((i ? "\n\n" : "") + std::string("[INST]") + sys + rounds[i].user + "[/INST]"));
        add_answer(out, rounds[i].assistant);
      }
      break;
    case Template::chatglm3:
      out.push_back({Segment::Kind::piece, "[gMASK]", false});
      out.push_back({Segment::Kind::piece, "<sop>", false, "sop"});
      for (size_t i = 0; i < rounds.size(); ++i) {
        std::string sys = (i == 0 && !conv.system.empty()) ? conv.system + "\n\n" : "";
        out.push_back(text((i ? "\n\n" : "") + sys + "[Round " + std::to_string(i + 1) + "]\n\n问：" +
                           rounds[i].user + "\n\n答："));
        add_answer(out, rounds[i].assistant);
      }
      break;
    case Template::chatml: {
      std::string sys = conv.system.empty() ? "" : "<|im_start|>system\n" + conv.system + "<|im_end|>\n";
      for (size_t i = 0; i < rounds.size(); ++i) {
        out.push_back(text((i ? "\n" : sys) + std::string("<|im_start|>user\n") + rounds[i].user +
                           "<|im_end|>\n<|im_start|>assistant\n"));
        add_answer(out, rounds[i].assistant);  // EOS plays the role of the closing <|im_end|>
      }
      break;
    }
    case Template::llama3: {
      auto header = [](const std::string& role) { return "<|start_header_id|>" + role + "<|end_header_id|>\n\n"; };
      out.push_back(piece("<|begin_of_text|>"));
      // Llama-3's template trims every message.
      std::string head = conv.system.empty() ? "" : header("system") + trim(conv.system) + "<|eot_id|>";
      for (const auto& r : rounds) {
        out.push_back(text(head + header("user") + trim(r.user) + "<|eot_id|>" + header("assistant")));
        out.push_back(text(trim(r.assistant), true));
        out.push_back(piece("<|eot_id|>", true));
        head.clear();
      }
      break;
    }
    case Template::qwen: {
      // Qwen2.5 puts its own system prompt first when the conversation has none.
      const std::string sys = conv.system.empty() ? kQwenDefaultSystem : conv.system;
      std::string head = "<|im_start|>system\n" + sys + "<|im_end|>\n";
      for (const auto& r : rounds) {
        out.push_back(text(head + "<|im_start|>user\n" + r.user + "<|im_end|>\n<|im_start|>assistant\n"));
        out.push_back(text(r.assistant, true));
        out.push_back(piece("<|im_end|>", true));
        head = "\n";
      }
      break;
    }
    case Template::raw:
      out.push_back({Segment::Kind::bos, "", false});
      if (!conv.system.empty()) out.push_back(text(conv.system + "\n\n"));
      for (const auto& r : rounds) {
        out.push_back(text(r.user));
        add_answer(out, r.assistant);
      }
      break;
  }
  return out;
}

namespace {

// Where to cut `text` so that the first part has at most `budget` bytes: before the last
// whitespace in range (the tokenizers split words there), else at a UTF-8 character boundary.
size_t cut_point(std::string_view text, size_t budget) {
  if (text.size() <= budget) return text.size();
  size_t ws = text.find_last_of(" \t\n", budget);
  if (ws != std::string_view::npos && ws > budget / 2) return ws;
  size_t cut = budget;
  while (cut > 1 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

}  // namespace

TokenizedRecord encode_segments(const std::vector<Segment>& segments, const Tokenizer& tok, size_t max_tokens) {
  TokenizedRecord r;
  auto full = [&] { return max_tokens != SIZE_MAX && r.ids.size() > max_tokens; };
  auto push = [&](int32_t id, bool target) {
    r.ids.push_back(id);
    r.target.push_back(target ? 1 : 0);
  };
  for (const auto& s : segments) {
    if (full()) break;
    switch (s.kind) {
      case Segment::Kind::bos:
        if (tok.bos_id() >= 0) push(tok.bos_id(), s.target);
        break;
      case Segment::Kind::eos:
        if (tok.eos_id() < 0) throw RuntimeError("the tokenizer has no EOS token; answers need one as their end");
        push(tok.eos_id(), s.target);
        break;
      case Segment::Kind::piece:
        if (int32_t id = tok.piece_id(s.text); id >= 0) {
          push(id, s.target);
          break;
        }
        if (int32_t id = s.alt.empty() ? -1 : tok.piece_id(s.alt); id >= 0) {
          push(id, s.target);
          break;
        }
        [[fallthrough]];
      case Segment::Kind::text: {
        std::string_view rest = s.text;
        while (!rest.empty() && !full()) {
          const size_t wanted = max_tokens == SIZE_MAX ? SIZE_MAX : max_tokens + 1 - r.ids.size();
          const size_t budget = wanted > SIZE_MAX / kBytesPerTokenBound ? SIZE_MAX : std::max<size_t>(wanted * kBytesPerTokenBound, 4096);
          const size_t cut = cut_point(rest, budget);
          for (int32_t id : tok.encode(rest.substr(0, cut))) push(id, s.target);
          rest.remove_prefix(cut);
        }
        break;
      }
    }
  }
  if (!r.target.empty()) r.target[0] = 0;
  return r;
}

}  // namespace longalign::data
