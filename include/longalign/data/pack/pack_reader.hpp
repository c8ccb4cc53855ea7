// Opening a pack for training or evaluation: the checksums first, then the dataset, the plan
// validated against the dataset, and the header's tokenizer against the pack's tokenizer.model.
// Nothing of a pack is used before all of that holds.
#pragma once
#include <filesystem>

#include "longalign/data/pack/batch_plan.hpp"
#include "longalign/data/pack/pack_manifest.hpp"
#include "longalign/data/pack/token_dataset.hpp"

namespace longalign::data {

struct Pack {
  TokenDataset dataset;
  Plan plan;
};

// RuntimeError naming the pack and what is wrong. A full check also reads every token: ids
// inside the header's vocabulary, target flags 0 or 1 and per-sequence target counts as indexed.
Pack open_pack(const std::filesystem::path& dir, Verify level);

// The planner's view of a dataset's sequences.
std::vector<SeqInfo> sequence_infos(const TokenDataset& ds);

}  // namespace longalign::data
