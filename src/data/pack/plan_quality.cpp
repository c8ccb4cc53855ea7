// Plan quality figures: per-sequence weight shares, rank balance under the cost model, and
// micro-batch length spreads.
#include "longalign/data/pack/plan_quality.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>


namespace longalign::data {
namespace {

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

PlanQuality plan_quality(const Plan& plan, const std::vector<SeqInfo>& seqs) {
  const auto& o = plan.options;
  PlanQuality q;
  q.long_min_tokens = uint64_t(std::max<int64_t>(1, o.max_tokens / 8));
  std::vector<double> shares, long_shares, short_shares, per_step, batch_ratios, batch_lengths, inner_spreads;
  std::vector<double> imbalances;
  const size_t per = size_t(o.units_per_step);
  if (o.world_size > 0) q.balance_world = o.world_size;
  else if (per % 2 == 0) q.balance_world = int(per / 2);
  double useful = 0, occupied = 0;  // useful-work efficiency's numerator and denominator
  const bool can_assign = q.balance_world > 0 && per % size_t(q.balance_world) == 0;
  for (size_t si = 0; si < plan.steps.size(); ++si) {
    const auto& step = plan.steps[si];
    double m = 0;
    std::vector<double> lengths;
    for (const auto& u : step.units) {
      uint32_t lo = UINT32_MAX, hi = 0;
      for (size_t k = 0; k < u.seqs.size(); ++k) {
        const auto& s = seqs[u.seqs[k]];
        double share = u.weights[k] * s.n_targets;
        shares.push_back(share);
        (s.length >= q.long_min_tokens ? long_shares : short_shares).push_back(share);
        lo = std::min(lo, s.length), hi = std::max(hi, s.length);
        m += 1;
      }
      if (o.strategy != Strategy::pack && !u.seqs.empty()) {
        batch_ratios.push_back(double(hi) / double(lo));
        lengths.push_back(hi);
        batch_lengths.push_back(hi);
      }
    }
    per_step.push_back(m);
    if (can_assign) {
      // Each rank's time under the plan's own assignment (explicit ranks or blocks).
      std::vector<double> load;
      for (int r = 0; r < q.balance_world; ++r) {
        load.push_back(0);
        for (size_t ui : rank_units(plan, si, q.balance_world, r)) load.back() += unit_busy_flops(step.units[ui], seqs, o);
      }
      const double busiest = *std::max_element(load.begin(), load.end()), total = mean(load) * double(load.size());
      for (const auto& u : step.units)
        for (uint32_t i : u.seqs) useful += o.cost.flops(seqs[i].length);
      occupied += double(q.balance_world) * busiest;
      if (step.units.size() == per && total > 0) imbalances.push_back(busiest * double(load.size()) / total);
    }
    if (step.units.size() == per && !lengths.empty()) inner_spreads.push_back(stddev(lengths));
  }
  if (!shares.empty()) q.weight_cv = stddev(shares) / mean(shares);
  if (!long_shares.empty() && !short_shares.empty()) q.long_short_ratio = mean(long_shares) / mean(short_shares);
  if (!per_step.empty()) {
    q.min_seqs_per_step = uint64_t(*std::min_element(per_step.begin(), per_step.end()));
    q.max_seqs_per_step = uint64_t(*std::max_element(per_step.begin(), per_step.end()));
    q.mean_seqs_per_step = mean(per_step);
  }
  if (!imbalances.empty()) {
    q.rank_imbalance_mean = mean(imbalances);
    q.rank_imbalance_max = *std::max_element(imbalances.begin(), imbalances.end());
  }
  if (occupied > 0) q.useful_work_efficiency = useful / occupied;
  if (!batch_ratios.empty()) q.microbatch_ratio_median = median(batch_ratios);
  const double all_spread = stddev(batch_lengths);
  if (!inner_spreads.empty() && all_spread > 0) q.step_spread_ratio = mean(inner_spreads) / all_spread;
  return q;
}

nlohmann::json plan_quality_json(const PlanQuality& q) {
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json j = {{"weight_cv", q.weight_cv},
                      {"long_short_weight_ratio", opt(q.long_short_ratio)},
                      {"long_min_tokens", q.long_min_tokens},
                      {"sequences_per_step", {{"min", q.min_seqs_per_step}, {"mean", q.mean_seqs_per_step},
                                              {"max", q.max_seqs_per_step}}},
                      {"balance_world_size", q.balance_world},
                      {"rank_imbalance_mean", opt(q.rank_imbalance_mean)},
                      {"rank_imbalance_max", opt(q.rank_imbalance_max)},
                      {"useful_work_efficiency", opt(q.useful_work_efficiency)},
                      {"microbatch_longest_over_shortest_median", opt(q.microbatch_ratio_median)},
                      {"step_spread_ratio", opt(q.step_spread_ratio)}};
  return j;
}

std::string plan_quality_summary(const PlanQuality& q) {
  auto num = [](const std::optional<double>& v, const char* f) { return v ? fmt::format(fmt::runtime(f), *v) : "n/a"; };
  std::string s = fmt::format("per-sequence weight CV {:.3f}  long/short weight ratio {}  sequences per step {}..{} (mean {:.1f})\n",
                              q.weight_cv, num(q.long_short_ratio, "{:.3f}"), q.min_seqs_per_step,
                              q.max_seqs_per_step, q.mean_seqs_per_step);
  if (q.balance_world > 0)
    s += fmt::format("at world size {}: useful-work efficiency {}; busiest rank / mean rank (FLOPs, full steps): "
                     "mean {}, worst step {}\n",
                     q.balance_world, num(q.useful_work_efficiency, "{:.3f}"), num(q.rank_imbalance_mean, "{:.3f}"),
                     num(q.rank_imbalance_max, "{:.3f}"));
  else
    s += "rank imbalance: n/a (units per step is odd; pass --world-size to report one)\n";
  if (q.microbatch_ratio_median)
    s += fmt::format("micro-batch longest/shortest median {:.3f}  in-step length spread / overall {}\n",
                     *q.microbatch_ratio_median, num(q.step_spread_ratio, "{:.3f}"));
  return s;
}

}  // namespace longalign::data
