// One optimizer step = one plan step: this rank's units of it run as micro-steps through the
// parallel model, the loss and token counts are summed over ranks, the gradient is clipped and
// the optimizer updates (or, on a non-finite loss or gradient, the step is skipped).
#pragma once
#include <cstdint>

#include "longalign/data/pack/batch_plan.hpp"
#include "longalign/data/pack/token_dataset.hpp"
#include "longalign/train/collectives.hpp"
#include "longalign/train/parallelize.hpp"

namespace longalign::train {

struct StepInputs {
  const data::Plan* plan = nullptr;
  const data::TokenDataset* ds = nullptr;
  size_t plan_step = 0;
  Collectives* comm = nullptr;  // null: one process
  // Consecutive groups of this many ranks share each unit (Ulysses, sequence_parallel.hpp): the
  // plan's units go to world / sequence_parallel data-parallel ranks.
  int sequence_parallel = 1;
  at::Device device = at::kCPU;
  int32_t pad_id = 0;
  double lr = 0, grad_clip = 0;
  bool stop_requested = false;  // this rank's; the result says whether any rank's was
};

struct StepResult {
  double loss = 0;       // the step's mean per-sequence (or per-token) loss
  double grad_norm = 0;  // of that mean
  int64_t tokens = 0;    // over all ranks
  int64_t micro_steps = 0;  // the busiest rank's units: the step's length in micro-steps
  bool skipped = false;  // non-finite: no update
  bool stop_requested = false;
};

StepResult train_step(ParallelModel& pm, const StepInputs& in);

}  // namespace longalign::train
