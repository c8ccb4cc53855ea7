// Which chat template a tokenizer's model was tuned with, when the user did not say: from the
// `chat_template` of the tokenizer_config.json beside the tokenizer, else (for a tokenizer.json)
// from its special tokens; a sentencepiece model alone means llama2, the recipe's default.
#pragma once
#include <filesystem>

#include "longalign/data/chat/chat_template.hpp"

namespace longalign::data {

// UsageError naming the file when the template cannot be told with confidence.
Template detect_template(const std::filesystem::path& tokenizer);

}  // namespace longalign::data
