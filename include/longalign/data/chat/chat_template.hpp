// Chat templates: turn a Conversation into text segments marked target / not target, then
// into token ids. Targets are every assistant answer plus one EOS after it; all else is context.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "longalign/data/chat/conversation.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"

namespace longalign::data {

enum class Template { llama2, chatglm3, chatml, raw, llama3, qwen };

// What Qwen2.5's template says when a conversation has no system message.
inline constexpr const char* kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

Template parse_template(const std::string& name);  // UsageError naming the valid ones
const char* to_string(Template t);

struct Segment {
  enum class Kind { text, piece, bos, eos };
  Kind kind = Kind::text;
  std::string text;  // for text, and for piece (encoded as text when not in the vocabulary)
  bool target = false;
  // A piece's other spelling, tried when `text` is not a piece: ChatGLM3's own tokenizer calls
  // <sop> plain "sop", where the trained tokenizers register "<sop>".
  std::string alt = "";
};

std::vector<Segment> render_template(const Conversation& conv, Template t);

// Each segment is encoded on its own so that the target boundary is exact; the result's
// target[0] is always 0.
//
// `max_tokens` bounds the work on huge records: encoding stops once more than max_tokens ids
// exist (the result then has at least max_tokens + 1, enough to tell it is too long), and text
// longer than the ids still wanted could fill is encoded in pieces cut at whitespace. A piece
// holds kBytesPerTokenBound bytes per wanted id, so a sequence that fits is encoded whole unless
// its text averages more bytes per token than that (a tokenizer's memory grows ~200x the text).
constexpr size_t kBytesPerTokenBound = 16;
TokenizedRecord encode_segments(const std::vector<Segment>& segments, const Tokenizer& tok,
                                size_t max_tokens = SIZE_MAX);

}  // namespace longalign::data
