// Materializes one plan unit into the flat arrays the model consumes.
//
// Layout: all sequences of the unit back to back as one token stream (varlen), with
// cu_seqlens marking segment starts. For naive/sort units each segment is padded on the right
// to the unit's longest sequence, so the cost of padding is real, as in ordinary batching;
// padding tokens are never targets and causal attention keeps real tokens from seeing them.
//
// Labels are pre-shifted: labels[t] is the token that the logits at position t must predict,
// or -100. The last position of every segment is -100, so no target crosses a boundary and the
// loss needs no shifting. weights[t] is the plan's per-token loss weight where labels[t] is a
// target and 0 elsewhere. position_ids restart at 0 in every segment.
#pragma once
#include <cstdint>
#include <vector>

#include "longalign/data/pack/batch_plan.hpp"
#include "longalign/data/pack/token_dataset.hpp"

namespace longalign::data {

constexpr int32_t kIgnoreIndex = -100;

struct Batch {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;
  std::vector<int32_t> position_ids;
  std::vector<float> weights;
  std::vector<int32_t> cu_seqlens;  // size = segments + 1, starts at 0, ends at input_ids.size()
  int32_t max_seqlen = 0;
  int64_t num_targets = 0;
};

// `pad_id` fills padding (any valid id: it is never attended to by real tokens nor predicted).
// Throws RuntimeError when a token id is outside the dataset's vocabulary (corruption).
Batch make_batch(const TokenDataset& ds, const PlanUnit& unit, Strategy strategy, int32_t pad_id = 0);

}  // namespace longalign::data
