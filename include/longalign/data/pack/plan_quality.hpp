// How well a plan keeps the recipe's promises, as reported in stats.json and by `pack`:
// does every sequence count equally over the epoch, do ranks finish together, and (for sorted
// batching) are micro-batches narrow while steps stay wide.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "longalign/data/pack/batch_plan.hpp"

namespace longalign::data {

struct PlanQuality {
  // Sequence i's share of the epoch's updates is N_i * w_i (its weights summed over its targets).
  double weight_cv = 0;                         // coefficient of variation of the shares
  std::optional<double> long_short_ratio;       // mean share of long / of short sequences
  uint64_t long_min_tokens = 0;                 // "long": at least max_tokens / 8 (8k at 64k)
  uint64_t min_seqs_per_step = 0, max_seqs_per_step = 0;
  double mean_seqs_per_step = 0;
  // Rank balance at the plan's world_size (default units_per_step / 2: two units a rank), over
  // the full steps: mean and worst of (busiest rank's FLOPs / mean rank's), padding counted.
  // Absent when units_per_step is odd and no world size was given.
  int balance_world = 0;
  std::optional<double> rank_imbalance_mean, rank_imbalance_max;
  // Useful-work efficiency at balance_world over the epoch: the sequences' own cost summed, over
  // (ranks x the busiest rank's cost) summed over steps, a rank's cost counting its padding at
  // 6P a token. The share of GPU time spent on real tokens rather than waiting or padding.
  std::optional<double> useful_work_efficiency;
  // Micro-batch shape (naive, sort): median of longest/shortest within a micro-batch, and the
  // mean spread (std of micro-batch lengths) inside a full step over the spread of all of them.
  std::optional<double> microbatch_ratio_median, step_spread_ratio;
};

PlanQuality plan_quality(const Plan& plan, const std::vector<SeqInfo>& seqs);

// The `plan_quality` object of stats.json, and lines for the `pack` summary.
nlohmann::json plan_quality_json(const PlanQuality& q);
std::string plan_quality_summary(const PlanQuality& q);

}  // namespace longalign::data
