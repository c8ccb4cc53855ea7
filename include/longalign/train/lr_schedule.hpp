// Learning-rate schedules: linear warmup, then cosine, linear or constant decay. A pure
// function of the step, so resuming needs no scheduler state beyond the step.
#pragma once
#include <cstdint>
#include <string>

namespace longalign::train {

struct LrSchedule {
  std::string kind = "cosine";  // cosine | linear | constant
  double peak_lr = 2e-5;
  double min_lr_ratio = 0.0;    // decay floor as a fraction of peak_lr
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // lr for optimizer step `step` (0-based).
  double at(int64_t step) const;
};

}  // namespace longalign::train
