// The in-memory form of one training record, whatever JSONL dialect it came from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace longalign::data {

// One user turn and the assistant's answer to it.
struct Round {
  std::string user;
  std::string assistant;
};

struct Conversation {
  std::string system;         // empty when absent
  std::vector<Round> rounds;  // at least one
};

// A target whose token differs from the input at the same position: position `pos` (t - 1's
// logits) must predict `label`, not ids[pos]. The LongAlign reference data does this at round
// ends, where the label is EOS and the input is already the next round's first token.
struct Relabel {
  uint32_t pos;
  int32_t label;
};

// Already tokenized input: `target[t]` is 1 when token t is predicted (the unshifted HF mask,
// labels[t] != -100). Token 0 is never a target: nothing precedes it. The predicted token is
// ids[t], except at the positions of `relabels` (sorted by position, all of them targets).
struct TokenizedRecord {
  std::vector<int32_t> ids;
  std::vector<uint8_t> target;
  std::vector<Relabel> relabels = {};
};

}  // namespace longalign::data
