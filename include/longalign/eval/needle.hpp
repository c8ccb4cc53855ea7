// Needle-in-a-haystack over a grid of context lengths x depths, in two styles:
//   passkey: the `synth` passkey sentence in filler text; scored by whether the answer holds
//            the key (the skill `synth` data teaches);
//   essay:   the paper's test: any needle sentence (default: the "best thing to do in San
//            Francisco" one) in an essay haystack, its question asked after the text; scored 1-10
//            by an LLM judge against the needle, or by exact match of an expected answer.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <optional>
#include <vector>

#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/eval/judge.hpp"

namespace longalign::eval {

class Generator;

struct Haystack {
  std::string text;        // the full user prompt
  std::string key;         // the passkey the answer must contain
  size_t needle_offset;    // byte offset of the needle sentence in `text`
  size_t context_begin, context_end;  // the filler region (needle included) within `text`
};

// Fills to about `target_tokens` tokens with whole sentences of `sentences` (cycled), inserting
// the needle at the sentence boundary nearest to `depth` (0..1) of the filler.
Haystack build_haystack(const std::vector<std::string>& sentences, int64_t target_tokens, double depth,
                        const data::Tokenizer& tok, uint64_t seed);

// The same with a given needle sentence, text before the haystack and question after it.
Haystack build_haystack_with(const std::vector<std::string>& sentences, int64_t target_tokens, double depth,
                             const data::Tokenizer& tok, const std::string& needle, const std::string& header,
                             const std::string& question);

// The paper's needle, question and the answer that exact matching looks for.
extern const char* const kSanFranciscoNeedle;
extern const char* const kSanFranciscoQuestion;
extern const char* const kSanFranciscoAnswer;

// Sentences from a text file, or `longalign synth` filler when `path` is empty.
std::vector<std::string> load_filler_sentences(const std::filesystem::path& path, uint64_t seed);

struct NeedleOptions {
  std::vector<int64_t> lengths;  // context lengths in tokens
  std::vector<double> depths;    // 0..1
  data::Template chat_template = data::Template::llama2;
  std::filesystem::path haystack;  // filler text file; empty = built-in
  std::filesystem::path output_dir;
  std::string model_name;  // the heatmap's title
  uint64_t seed = 7;
  int64_t max_new_tokens = 24;
  // Essay style when `needle` is set: the question asked, and either a judge (its chat.url set)
  // or the text an exact-match answer must contain (case and spacing ignored).
  std::string needle, question, expected;
  std::optional<JudgeOptions> judge;
};

// Default grid: `n` lengths evenly from `min_length` (0: max/n) up to `max_length`, `m` depths
// evenly from `lo` to `hi` (passkey: 0 to 100%; essay: 10% to 90%, as the paper).
std::vector<int64_t> default_lengths(int64_t max_length, int n, int64_t min_length = 0);
std::vector<double> default_depths(int m, double lo = 0.0, double hi = 1.0);

struct NeedleResult {
  std::vector<std::vector<double>> score;  // [depth][length]: hit 1/0, or the judge's 1-10
  double mean = 0;
  bool judged = false;
  size_t unscored = 0;  // judged cells without a score (left out of the mean, shown black)
};

// Writes results.json, heatmap.svg and (with cairo) heatmap.png into output_dir.
NeedleResult run_needle(Generator& gen, const NeedleOptions& opts);

}  // namespace longalign::eval
