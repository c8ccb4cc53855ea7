// Needle-in-a-haystack: a passkey sentence hidden at a chosen depth of filler text, over a
// grid of context lengths x depths; scored by whether the answer contains the key.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/data/chat_template.hpp"
#include "longalign/data/tokenizer.hpp"

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

// Sentences from a text file, or `longalign synth` filler when `path` is empty.
std::vector<std::string> load_filler_sentences(const std::filesystem::path& path, uint64_t seed);

struct NeedleOptions {
  std::vector<int64_t> lengths;  // context lengths in tokens
  std::vector<double> depths;    // 0..1
  data::Template chat_template = data::Template::llama2;
  std::filesystem::path haystack;  // filler text file; empty = built-in
  std::filesystem::path output_dir;
  uint64_t seed = 7;
  int64_t max_new_tokens = 24;
};

// Default grid: `n` lengths evenly up to `max_length`, `m` depths from 0 to 100%.
std::vector<int64_t> default_lengths(int64_t max_length, int n);
std::vector<double> default_depths(int m);

struct NeedleResult {
  std::vector<std::vector<double>> score;  // [depth][length]
  double mean = 0;
};

// Writes results.json and heatmap.png into output_dir.
NeedleResult run_needle(Generator& gen, const NeedleOptions& opts);

}  // namespace longalign::eval
