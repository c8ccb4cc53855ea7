// Per-GPU memory estimate for a training configuration, used by `train --dry-run` (and by the
// planner for multi-GPU runs). Counts are analytic, from the model shape and the token budget.
#pragma once
#include <cstdint>
#include <string>

#include "longalign/model/llama_config.hpp"

namespace longalign::train {

struct MemoryInputs {
  int64_t tokens = 65536;      // tokens of one micro-step (a pack, or batch x padded length)
  bool checkpointing = true;
  int64_t param_bytes = 2;     // 2 for bf16 weights, 4 for fp32
  int world_size = 1;
  int zero_stage = 0;          // 0: nothing sharded, 1: optimizer state, 2: + gradients
  int64_t loss_chunk_tokens = 4096;
};

struct MemoryEstimate {
  double weights = 0, grads = 0, optimizer = 0, activations = 0, logits = 0, workspace = 0;
  double total() const { return weights + grads + optimizer + activations + logits + workspace; }
  std::string table() const;  // GiB per row
};

MemoryEstimate estimate_memory(const model::LlamaConfig& c, const MemoryInputs& in);

}  // namespace longalign::train
