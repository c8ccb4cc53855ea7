// Training checkpoints as HF model directories plus the training state beside the weights:
//   RUN/checkpoints/step-00000100/
//     config.json, model.safetensors (or shards + index), tokenizer.model   <- HF loads this
//     optimizer.safetensors    AdamW moments, fp32 master weights, step (one process), or
//     optimizer-RRRRR.safetensors  each rank's share under ZeRO 1-3 (pieces named by parameter
//                              and offset: loadable at any world size and any stage)
//     trainer_state.json       step, epoch, consecutive bad steps, losses so far
// A LoRA run's checkpoint holds a PEFT adapter instead of the weights (adapter_config.json +
// adapter_model.safetensors, which PeftModel.from_pretrained loads onto the base model), with
// the optimizer state of the adapters and saved modules only.
//     train_config.yaml        the resolved configuration
// Each checkpoint is written to a temp directory, fsynced and renamed; `keep_last` rotates.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "longalign/model/llama.hpp"
#include "longalign/model/lora_config.hpp"
#include "longalign/train/adamw.hpp"
#include "longalign/train/parallelize.hpp"

namespace longalign::train {

struct TrainerState {
  int64_t step = 0;           // optimizer steps completed
  int64_t bad_steps = 0;      // consecutive skipped (non-finite) steps
  int64_t skipped_total = 0;
  int64_t tokens_seen = 0;
  // What the run was when saved, so that a resume can tell it continues the same run.
  int64_t total_steps = 0;    // 0: not recorded (older checkpoints)
  std::string plan_crc32c;    // the pack's plan.json, "" when not recorded
  std::string data_crc32c;    // the pack's tokens.bin
};

struct CheckpointPaths {
  std::filesystem::path run_dir;
  std::filesystem::path tokenizer;  // copied in when non-empty
  const model::LoraConfig* lora = nullptr;  // LoRA: write the adapter, not the weights
  std::string base_model;                   // the adapter's base_model_name_or_path
};

// Collective when `comm` is given: every rank calls it; rank 0 writes the model (streamed shard by
// shard from `pm`), each rank its optimizer share (when sharded).
std::filesystem::path save_checkpoint(const CheckpointPaths& where, const model::LlamaConfig& arch, ParallelModel& pm,
                                      const TrainerState& st, const std::string& config_yaml, at::ScalarType save_dtype,
                                      uint64_t max_shard_bytes, int64_t keep_last, Collectives* comm = nullptr);

// "latest" -> the newest complete checkpoint under run_dir (or nullopt); otherwise the path.
std::optional<std::filesystem::path> resolve_checkpoint(const std::filesystem::path& run_dir, const std::string& spec);

// The optimizer state of a checkpoint (its weights load like any HF model's, before the
// parallelism pass). Errors name the missing or mismatched tensor.
void load_optimizer_state(const std::filesystem::path& dir, AdamW& opt);

// A run resumed from step `step` leaves the checkpoints after it behind (another trajectory):
// they are renamed to abandoned-step-NNNNNNNN-<unix time>, so that "latest" and keep_last see only
// the new trajectory and nothing is deleted. Returns the new names.
std::vector<std::filesystem::path> set_aside_later_checkpoints(const std::filesystem::path& run_dir, int64_t step);

// trainer_state.json alone (cheap: read before any weights to check the resume makes sense).
TrainerState read_trainer_state(const std::filesystem::path& dir);

}  // namespace longalign::train
