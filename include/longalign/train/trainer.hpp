// Single-process training: config -> data (packed on the fly and cached, or a prepared pack)
// -> model -> the step loop (micro-steps, weighted loss, clip, AdamW, schedule) with metrics,
// checkpoints, resume, non-finite-step handling and graceful SIGINT/SIGTERM.
#pragma once
#include <string>

#include <memory>

#include "longalign/train/collectives.hpp"
#include "longalign/train/train_config.hpp"

namespace longalign::train {

// One GPU per rank, whatever the backend: the node's local rank picks it (a launcher that gives
// each process a single visible GPU, as Slurm's --gpus-per-task does, leaves index 0), and it
// becomes the current device so that streams, events, NCCL and the self-check child all use it.
// UsageError when the rank has no GPU of its own.
int rank_gpu_index(int local_rank);

struct TrainRequest {
  std::string resume;  // "" (fresh), "latest" or a checkpoint directory
  bool resume_new_data = false;  // resume although the checkpoint was trained on another plan/data
  bool dry_run = false;
  bool quiet_progress = false;
  int64_t stop_at_step = 0;  // > 0: checkpoint and stop after this step; the schedule still spans the run
  std::shared_ptr<Collectives> comm;  // data parallelism; null for one process
  int local_rank = 0, local_world = 1;  // this process's place on its node (start-up waves)
};

struct TrainSummary {
  int64_t steps_done = 0, skipped = 0;
  double first_loss = 0, last_loss = 0, tokens_per_s = 0, seconds = 0;
  double peak_rss_mb = 0;  // process high-water mark (VmHWM)
  double peak_gpu_mb = 0;  // CUDA caching allocator's peak allocated bytes (0 on CPU)
  std::filesystem::path checkpoint;
  bool interrupted = false;
};

TrainSummary run_training(const TrainConfig& cfg, const TrainRequest& req);

// Whether a CUDA GPU is usable (for callers that do not include torch).
bool cuda_available();

}  // namespace longalign::train
