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

// Already tokenized input: `target[t]` is 1 when token t is predicted (the unshifted HF mask,
// labels[t] != -100). Token 0 is never a target: nothing precedes it.
struct TokenizedRecord {
  std::vector<int32_t> ids;
  std::vector<uint8_t> target;
};

}  // namespace longalign::data
