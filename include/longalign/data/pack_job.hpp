// The whole `longalign pack` job: JSONL -> tokenized dataset -> batch plan -> stats, written as
// one directory that appears atomically (or not at all). The directory is self-contained and
// reusable: training reads it without re-tokenizing.
//
//   OUT/header.json tokens.bin targets.bin index.bin   the tokenized dataset (token_dataset.hpp)
//   OUT/plan.json                                      the batch plan (batch_plan.hpp)
//   OUT/stats.json                                     PackStats
//   OUT/pack_config.json                               the options that produced it
//   OUT/tokenizer.model                                a copy, when a tokenizer was used
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/data/batch_plan.hpp"
#include "longalign/data/pack_stats.hpp"
#include "longalign/data/tokenize_pipeline.hpp"

namespace longalign::data {

struct PackOptions {
  TokenizeOptions tokenize;           // tokenize.max_length is set from plan.max_tokens
  PlanOptions plan;
  std::filesystem::path tokenizer;    // empty: pre-tokenized input only
  std::filesystem::path output;
  bool overwrite = false;
};

// Reads the `data:` section of a YAML config into `opts` (paths relative to the file). Unknown
// keys and wrong types are UsageErrors naming the key (and the nearest valid key).
void apply_data_config(const std::filesystem::path& yaml_file, PackOptions& opts);

// The default output directory for an input: data.jsonl -> data.pack beside it.
std::filesystem::path default_pack_output(const std::filesystem::path& first_input);

PackStats run_pack(PackOptions opts);

}  // namespace longalign::data
