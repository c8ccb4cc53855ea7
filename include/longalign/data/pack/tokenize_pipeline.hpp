// Streams JSONL files through parse -> template -> tokenize on all cores into a DatasetWriter.
// Memory stays bounded (a few chunks of lines in flight) whatever the input size, and the output
// order is the input order, so results do not depend on the thread count.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/pack/pack_stats.hpp"
#include "longalign/data/chat/record_parser.hpp"
#include "longalign/data/pack/token_dataset.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"

namespace longalign::data {

enum class Overflow { truncate, drop, error };
Overflow parse_overflow(const std::string& name);  // UsageError on anything else
const char* to_string(Overflow o);

struct TokenizeOptions {
  std::vector<std::filesystem::path> inputs;
  // Per input, how many times each record is used on average (mixing long and short data):
  // 0.5 keeps a seeded half, 2 repeats every record twice. Empty means 1 for all.
  std::vector<double> ratios;
  uint64_t mix_seed = 42;
  InputFormat format = InputFormat::detect;
  Template chat_template = Template::llama2;
  bool chat_template_set = false;     // false: detected from the tokenizer (see template_detect.hpp)
  int64_t max_length = 65536;         // longer sequences follow `overflow` (right truncation)
  Overflow overflow = Overflow::truncate;
  bool skip_invalid = false;          // skip malformed lines instead of failing on the first
  int threads = 0;                    // 0: all cores
  bool progress = true;
};

// `tok` may be null only when every input is pre-tokenized. Throws RuntimeError naming
// file:line for the first malformed line (unless skip_invalid) or overlong sequence (overflow
// error); UsageError when a file's format cannot be detected.
void tokenize_to_dataset(const TokenizeOptions& opts, const Tokenizer* tok, DatasetWriter& writer, PackStats& stats);

}  // namespace longalign::data
