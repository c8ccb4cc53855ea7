// `longalign eval loss`: per-sequence mean target loss and perplexity of a HF-format model on
// JSONL (chat formats or pre-tokenized), computed on packed batches.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/data/pack/pack_job.hpp"

namespace longalign::eval {

struct LossEvalOptions {
  std::filesystem::path model_dir;
  std::filesystem::path adapter;    // a PEFT LoRA adapter merged into the model (optional)
  data::PackOptions data;           // inputs, tokenizer (default: model_dir/tokenizer.model), template
  std::filesystem::path output;     // per-sequence JSONL; empty: none
  std::string device = "auto";
};

struct LossEvalResult {
  uint64_t sequences = 0, targets = 0;
  double mean_sequence_loss = 0;  // mean over sequences of their mean target loss
  double token_loss = 0;          // mean over all target tokens
};

LossEvalResult run_loss_eval(LossEvalOptions opts);

}  // namespace longalign::eval
