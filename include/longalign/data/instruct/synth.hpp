// `longalign synth`: seeded synthetic LongAlign-format data with no network. Long tasks hide a
// fact in filler text (passkey retrieval) or in a large JSON object (key-value retrieval); short
// tasks are small instructions with checkable answers. Used by demos, tests and benchmarks.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/core/rng.hpp"
#include "longalign/data/pack/batch_plan.hpp"

namespace longalign::data {

struct SynthOptions {
  uint64_t num = 1000;
  double long_fraction = 0.5;  // share of long-context records
  uint64_t min_words = 200;    // context size of long records, in filler words
  uint64_t max_words = 2000;
  uint64_t seed = 1234;
};

// Grammatical-looking filler of about `words` words, in whole sentences.
std::string filler_text(Rng& rng, uint64_t words);

// One JSONL line ({"messages": [...]}) and the task name that produced it.
std::string synth_record(Rng& rng, const SynthOptions& opts, std::string* task = nullptr);

// Writes `opts.num` records to `out` atomically.
void write_synth(const SynthOptions& opts, const std::filesystem::path& out);

// Sequence lengths of a LongAlign-like mix, for planner tests and benchmarks: `long_fraction`
// long sequences (log-uniform 8k..64k tokens, targets ~10%: an answer about a document) and
// ShareGPT-like short chats (log-normal around 700 tokens, 32..8191, targets ~half).
std::vector<SeqInfo> longalign_like_lengths(size_t n, double long_fraction, uint64_t seed);

}  // namespace longalign::data
