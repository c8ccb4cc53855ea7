// Warmup ramps from peak/warmup to peak (so step 0 trains), then decays to min_lr_ratio*peak
// at the last step.
#include "longalign/train/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace longalign::train {

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps) return peak_lr * double(step + 1) / double(warmup_steps);
  const double floor = peak_lr * min_lr_ratio;
  const int64_t decay_steps = std::max<int64_t>(1, total_steps - warmup_steps - 1);
  const double progress = std::min(1.0, double(step - warmup_steps) / double(decay_steps));
  if (kind == "constant") return peak_lr;
  if (kind == "linear") return floor + (peak_lr - floor) * (1.0 - progress);
  return floor + (peak_lr - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace longalign::train
