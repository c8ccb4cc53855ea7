// Where training metrics go: metrics.jsonl in the run directory, TensorBoard event files, and
// a progress display (a redrawn line on a terminal, plain log lines otherwise).
#pragma once
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "longalign/train/tfevents.hpp"

namespace longalign::train {

struct StepMetrics {
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, elapsed_s = 0;
  int64_t tokens = 0;
  int64_t micro_steps = 0;  // the busiest rank's units in the step
  bool skipped = false;
};

class MetricsSink {
 public:
  MetricsSink(const std::filesystem::path& run_dir, bool tensorboard);
  void record(const StepMetrics& m, bool show);
  void close();

 private:
  std::ofstream jsonl_;
  std::optional<TfEventsWriter> tb_;
  bool tty_;
};

}  // namespace longalign::train
