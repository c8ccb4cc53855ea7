// Chat templates: turn a Conversation into text segments marked target / not target, then
// into token ids. Targets are every assistant answer plus one EOS after it; all else is context.
#pragma once
#include <string>
#include <vector>

#include "longalign/data/conversation.hpp"
#include "longalign/data/tokenizer.hpp"

namespace longalign::data {

enum class Template { llama2, chatglm3, chatml, raw };

Template parse_template(const std::string& name);  // UsageError naming the valid ones
const char* to_string(Template t);

struct Segment {
  enum class Kind { text, piece, bos, eos };
  Kind kind = Kind::text;
  std::string text;  // for text, and for piece (encoded as text when not in the vocabulary)
  bool target = false;
};

std::vector<Segment> render_template(const Conversation& conv, Template t);

// Each segment is encoded on its own so that the target boundary is exact; the result's
// target[0] is always 0.
TokenizedRecord encode_segments(const std::vector<Segment>& segments, const Tokenizer& tok);

}  // namespace longalign::data
