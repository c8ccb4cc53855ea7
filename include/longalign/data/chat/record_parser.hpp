// Parses one JSONL line in any supported dialect (LongAlign/OpenAI messages, ShareGPT,
// Alpaca, pre-tokenized) into a Conversation or TokenizedRecord, or says why it can't.
#pragma once
#include <string>
#include <string_view>

#include "longalign/data/chat/conversation.hpp"

namespace longalign::data {

enum class InputFormat { detect, longalign, sharegpt, alpaca, tokens };

// "auto"/"detect", "longalign" (alias "openai", "messages"), "sharegpt", "alpaca", "tokens".
InputFormat parse_input_format(const std::string& name);  // UsageError on an unknown name
const char* to_string(InputFormat f);

struct ParsedRecord {
  enum class Kind {
    conversation,  // `conv` is filled
    tokens,        // `tokens` is filled
    skipped,       // well-formed JSON that holds no usable example; counted under `reason`
    invalid,       // malformed JSON or invalid UTF-8: an error unless --skip-invalid
  };
  Kind kind = Kind::skipped;
  Conversation conv;
  TokenizedRecord tokens;
  std::string reason;  // stats key for skipped/invalid, e.g. "empty_assistant_turn"
  std::string detail;  // human-readable explanation
};

// Decides the dialect from the keys of one line; `detect` when none matches.
InputFormat detect_format(std::string_view line);

// `fmt` must not be `detect`.
ParsedRecord parse_record(std::string_view line, InputFormat fmt);

}  // namespace longalign::data
