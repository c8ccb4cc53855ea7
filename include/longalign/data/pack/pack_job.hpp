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

#include "longalign/data/pack/batch_plan.hpp"
#include "longalign/data/pack/pack_manifest.hpp"
#include "longalign/data/pack/pack_stats.hpp"
#include "longalign/data/pack/tokenize_pipeline.hpp"

namespace YAML {
class Node;
}

namespace longalign::data {

struct PackOptions {
  TokenizeOptions tokenize;           // tokenize.max_length is set from plan.max_tokens
  PlanOptions plan;
  std::filesystem::path tokenizer;    // empty: pre-tokenized input only
  std::filesystem::path output;
  bool overwrite = false;
  Verify verify = Verify::full;       // how `train` checks the pack before step 1 (data.verify)
};

// Reads the `data:` section of a YAML config into `opts` (paths relative to the file). Unknown
// keys and wrong types are UsageErrors naming the key (and the nearest valid key).
void apply_data_config(const std::filesystem::path& yaml_file, PackOptions& opts);
void apply_data_section(const YAML::Node& data, const std::filesystem::path& base, const std::string& where,
                        PackOptions& opts);
// `text` as a double-quoted YAML scalar (paths may hold ": ", "#" or quotes).
std::string yaml_quoted(const std::string& text);
// The data section as it would be written in YAML (inputs with ratios, paths as given).
std::string data_section_yaml(const PackOptions& opts, int indent);

// The default output directory for an input: data.jsonl -> data.pack beside it.
std::filesystem::path default_pack_output(const std::filesystem::path& first_input);

// The options that determine a pack's content, as written to pack_config.json; a cached pack
// is reusable when this text is unchanged.
std::string pack_config_json(const PackOptions& opts);

// Sets the chat template from the tokenizer (template_detect.hpp) unless one was given.
void resolve_chat_template(PackOptions& opts);

PackStats run_pack(PackOptions opts);

}  // namespace longalign::data
