// Planner properties for every strategy: each sequence placed exactly once, capacity respected,
// epoch-normalized weights whatever the world size, hand-worked weights and packings, and the
// recipe's promises on a LongAlign-like mix (equal sequences, balanced ranks, the reference's
// sorted batching), each checked against figures recomputed here from the plan.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "longalign/core/error.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/pack/batch_plan.hpp"
#include "longalign/data/pack/plan_quality.hpp"
#include "longalign/data/pack/rank_balance.hpp"
#include "longalign/data/instruct/synth.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::data;

namespace {

std::vector<SeqInfo> random_seqs(size_t n, uint32_t max_len, uint64_t seed) {
  Rng rng(seed);
  std::vector<SeqInfo> v;
  for (size_t i = 0; i < n; ++i) {
    uint32_t len = uint32_t(rng.range(2, max_len));
    v.push_back({len, uint32_t(rng.range(1, len - 1))});
  }
  return v;
}

// The sum of weight * targets over some units: their share of the step loss.
double share(const PlanUnit& u, const std::vector<SeqInfo>& seqs) {
  double t = 0;
  for (size_t k = 0; k < u.seqs.size(); ++k) t += u.weights[k] * seqs[u.seqs[k]].n_targets;
  return t;
}

void check_plan(const Plan& p, const std::vector<SeqInfo>& seqs) {
  const auto& o = p.options;
  std::vector<int> placed(seqs.size(), 0);
  double total = 0;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const auto& step = p.steps[s];
    ASSERT_FALSE(step.units.empty());
    ASSERT_LE(step.units.size(), size_t(o.units_per_step));
    if (s + 1 < p.steps.size()) {
      EXPECT_EQ(step.units.size(), size_t(o.units_per_step));
    }
    double step_share = 0;
    for (const auto& u : step.units) {
      ASSERT_EQ(u.seqs.size(), u.weights.size());
      uint64_t tokens = 0;
      for (uint32_t i : u.seqs) placed[i]++, tokens += seqs[i].length;
      EXPECT_EQ(tokens, u.tokens);
      if (o.strategy == Strategy::pack) {
        EXPECT_LE(tokens, uint64_t(o.max_tokens));
      } else {
        EXPECT_LE(u.seqs.size(), size_t(o.batch_size));
      }
      step_share += share(u, seqs);
    }
    if (o.weighting == Weighting::pack_mean) {
      EXPECT_NEAR(step_share, 1.0, 1e-12) << "step " << s;
    }
    total += step_share;
    // Every world size dividing the step runs each unit exactly once, partial steps included.
    for (int world : {1, 2, 4}) {
      if (o.units_per_step % world) continue;
      std::set<size_t> seen;
      for (int r = 0; r < world; ++r)
        for (size_t ui : rank_units(p, s, world, r)) EXPECT_TRUE(seen.insert(ui).second);
      EXPECT_EQ(seen.size(), step.units.size());
    }
  }
  // The epoch's weights sum to one per step on average.
  EXPECT_NEAR(total, double(p.steps.size()), 1e-9 * double(p.steps.size()));
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(placed[i], 1) << "sequence " << i;
}

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }
double std_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

// The issue's cost model, written out independently of CostModel: 6*P*s + 7*d*L*s^2, Llama-2-7B.
double llama7b_flops(double s) { return 6 * 6738415616.0 * s + 7 * 4096.0 * 32 * s * s; }

}  // namespace

TEST(BatchPlan, EveryStrategyPlacesEachSequenceOnceWithEpochWeights) {
  auto seqs = random_seqs(997, 1000, 5);
  for (auto strategy : {Strategy::pack, Strategy::sort, Strategy::naive})
    for (auto weighting : {Weighting::sequence, Weighting::token, Weighting::pack_mean}) {
      PlanOptions o;
      o.strategy = strategy;
      o.weighting = weighting;
      o.max_tokens = 1000;
      o.batch_size = 3;
      o.units_per_step = 4;
      SCOPED_TRACE(std::string(to_string(strategy)) + "/" + to_string(weighting));
      check_plan(make_plan(seqs, o), seqs);
    }
}

TEST(BatchPlan, WeightsHandWorked) {
  // Capacity 10, one pack per step: A (10 tokens, 2 targets) fills a pack, B (5, 1) and C (5, 4)
  // share the other. Two steps, three sequences: M̄ = 1.5, T̄ = 3.5.
  std::vector<SeqInfo> seqs = {{10, 2}, {5, 1}, {5, 4}};
  PlanOptions o;
  o.max_tokens = 10;
  o.units_per_step = 1;
  auto weights_of = [&](Weighting w) {
    o.weighting = w;
    Plan p = make_plan(seqs, o);
    EXPECT_EQ(p.steps.size(), 2u);
    std::vector<double> by_seq(3, -1);
    for (const auto& s : p.steps)
      for (const auto& u : s.units)
        for (size_t k = 0; k < u.seqs.size(); ++k) by_seq[u.seqs[k]] = u.weights[k];
    return by_seq;
  };
  // sequence: 1 / (N_i * M̄); each sequence's share N_i * w_i is 2/3, wherever it was packed.
  auto w = weights_of(Weighting::sequence);
  EXPECT_DOUBLE_EQ(w[0], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(w[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(w[2], 1.0 / 6.0);
  // token: 1 / T̄ for every target.
  for (double x : weights_of(Weighting::token)) EXPECT_DOUBLE_EQ(x, 2.0 / 7.0);
  // pack_mean: 1 / (T_u * U): unit {A} has 2 targets, unit {B, C} 5.
  w = weights_of(Weighting::pack_mean);
  EXPECT_DOUBLE_EQ(w[0], 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(w[1], 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(w[2], 1.0 / 5.0);
}

TEST(BatchPlan, ShortFinalStepSpreadsOverRanks) {
  // 5 single-sequence packs at 4 a step: a full step and a final step of 1.
  std::vector<SeqInfo> seqs(5, {10, 1});
  PlanOptions o;
  o.max_tokens = 10;
  o.units_per_step = 4;
  Plan p = make_plan(seqs, o);
  ASSERT_EQ(p.steps.size(), 2u);
  EXPECT_EQ(rank_units(p, 0, 2, 0), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(rank_units(p, 0, 2, 1), (std::vector<size_t>{2, 3}));
  EXPECT_EQ(rank_units(p, 0, 4, 3), (std::vector<size_t>{3}));
  EXPECT_TRUE(rank_units(p, 1, 2, 0).empty());
  EXPECT_EQ(rank_units(p, 1, 2, 1), (std::vector<size_t>{0}));
  // Every sequence still weighs 1/M̄ = 1/2.5, the lone one of the short step included.
  for (const auto& s : p.steps)
    for (const auto& u : s.units) EXPECT_DOUBLE_EQ(u.weights[0], 1.0 / 2.5);
}

TEST(RankBalance, ImbalanceAndBlockSizesHandWorked) {
  EXPECT_DOUBLE_EQ(rank_imbalance({3, 1, 1, 1}, 2), 4.0 / 3.0);  // blocks 4 and 2, mean 3
  EXPECT_DOUBLE_EQ(rank_imbalance({2, 2, 1, 3}, 2), 1.0);
  EXPECT_EQ(balanced_block_sizes(16), (std::vector<size_t>{2, 4, 8}));
  EXPECT_EQ(balanced_block_sizes(12), (std::vector<size_t>{2, 3, 4, 6}));
  EXPECT_TRUE(balanced_block_sizes(7).empty());
}

TEST(RankBalance, MatchesTheBruteForceOptimumOnSmallSteps) {
  // 6 units (blocks of 2 and 3 at once) and 8 units (blocks of 2 and 4): every order is tried,
  // and the search must reach the best worst-case imbalance there is.
  for (size_t n : {6, 8})
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      Rng rng(seed);
      std::vector<double> costs;
      for (size_t i = 0; i < n; ++i) costs.push_back(1 + 3 * rng.uniform());
      auto worst = [&](const std::vector<size_t>& order) {
        std::vector<double> c;
        for (size_t i : order) c.push_back(costs[i]);
        double w = 0;
        for (size_t k = 2; k < n; ++k)
          if (n % k == 0) w = std::max(w, rank_imbalance(c, k));
        return w;
      };
      std::vector<size_t> perm(n);
      std::iota(perm.begin(), perm.end(), 0);
      double optimum = 1e9;
      do optimum = std::min(optimum, worst(perm));
      while (std::next_permutation(perm.begin(), perm.end()));
      EXPECT_NEAR(worst(balanced_order(costs)), optimum, 1e-9) << "n " << n << " seed " << seed;
    }
}

namespace {
std::string rejection(const Plan& p, const std::vector<SeqInfo>& seqs);  // below

// Useful-work efficiency recomputed from the plan by the issue's definition: the sequences' own
// FLOPs over (ranks x the busiest rank's FLOPs, a pack's padding at 6P a token) summed over steps.
double efficiency_of(const Plan& p, const std::vector<SeqInfo>& seqs, int world) {
  double useful = 0, occupied = 0;
  for (size_t s = 0; s < p.steps.size(); ++s) {
    double busiest = 0;
    for (int r = 0; r < world; ++r) {
      double load = 0;
      for (size_t ui : rank_units(p, s, world, r)) {
        const PlanUnit& u = p.steps[s].units[ui];
        for (uint32_t i : u.seqs) load += llama7b_flops(seqs[i].length);
        load += 6 * 6738415616.0 * double(u.padded_tokens - u.tokens);
      }
      busiest = std::max(busiest, load);
    }
    for (const auto& u : p.steps[s].units)
      for (uint32_t i : u.seqs) useful += llama7b_flops(seqs[i].length);
    occupied += world * busiest;
  }
  return useful / occupied;
}
}  // namespace

// The issue's mixes: 55% long (8k-64k), 45% short chats, 64k packs, several seeds of the mix;
// plans for 8 ranks with 8 and 16 units a step, and 64 ranks with 64 (6,000 sequences), steps in
// cost order. Every sequence once, fill >= 0.99, per-sequence weight CV <= 0.10, and ranks busy
// on real tokens >= 95% of the time; the planner's own report agrees with the figures recomputed
// here. In mixed order (the default) one pack a rank stays near 0.76, two reach 0.93+.
TEST(BatchPlan, PackKeepsSequencesEqualAndRanksBusyOnLongAlignMixes) {
  struct Case { int units, world; size_t seqs; };
  for (Case c : {Case{8, 8, 1500}, Case{16, 8, 1500}, Case{64, 64, 6000}})
    for (uint64_t seed : {1, 2, 3}) {
      SCOPED_TRACE(std::to_string(c.units) + " units on " + std::to_string(c.world) + " ranks, mix seed " +
                   std::to_string(seed));
      auto seqs = longalign_like_lengths(c.seqs, 0.55, seed);
      PlanOptions o;
      o.units_per_step = c.units;
      o.world_size = c.world;
      o.seed = seed;
      o.step_order = StepOrder::cost;
      Plan p = make_plan(seqs, o);
      check_plan(p, seqs);
      uint64_t tokens = 0, packs = 0;
      for (const auto& s : seqs) tokens += s.length;
      std::vector<double> shares;
      for (const auto& step : p.steps) {
        packs += step.units.size();
        for (const auto& u : step.units)
          for (size_t k = 0; k < u.seqs.size(); ++k) shares.push_back(u.weights[k] * seqs[u.seqs[k]].n_targets);
      }
      EXPECT_GE(double(tokens) / double(packs * 65536), 0.99);
      EXPECT_LE(std_of(shares) / mean_of(shares), 0.10);
      // Short chats spread over the packs: cost bands do not gather them into a few crowded
      // steps (best-fit packs in cost order: CV 0.7-1.7 at 8 units a step; spread: ~0.3).
      std::vector<double> per_step;
      for (size_t s = 0; s + 1 < p.steps.size(); ++s) {
        per_step.push_back(0);
        for (const auto& u : p.steps[s].units) per_step.back() += double(u.seqs.size());
      }
      EXPECT_LE(std_of(per_step) / mean_of(per_step), 0.5);
      const double efficiency = efficiency_of(p, seqs, c.world);
      EXPECT_GE(efficiency, 0.95);
      PlanQuality q = plan_quality(p, seqs);
      EXPECT_EQ(q.balance_world, c.world);
      ASSERT_TRUE(q.useful_work_efficiency.has_value());
      EXPECT_NEAR(*q.useful_work_efficiency, efficiency, 1e-9);
      EXPECT_NEAR(q.weight_cv, std_of(shares) / mean_of(shares), 1e-9);
      ASSERT_TRUE(q.long_short_ratio.has_value());
      EXPECT_NEAR(*q.long_short_ratio, 1.0, 1e-9);
      o.step_order = StepOrder::mixed;
      const double mixed = efficiency_of(make_plan(seqs, o), seqs, c.world);
      if (c.units == 16) {
        EXPECT_GE(mixed, 0.93);
      } else {
        EXPECT_LT(mixed, 0.8);  // one pack a rank: each step spans the cost range, ranks wait
      }
    }
}

// Without a world size (16 units a step, reported at 8 ranks) the plan serves every world size
// that divides the step in blocks: steps of similar cost stay balanced at 2, 4 and 8 ranks.
TEST(BatchPlan, PackWithoutAWorldSizeIsBalancedForEveryDivisor) {
  auto seqs = longalign_like_lengths(1500, 0.55, 4);
  PlanOptions o;
  o.units_per_step = 16;
  o.step_order = StepOrder::cost;
  Plan p = make_plan(seqs, o);
  EXPECT_FALSE(plan_assigns_ranks(p));
  for (int world : {2, 4, 8}) EXPECT_GE(efficiency_of(p, seqs, world), 0.95) << world << " ranks";
}

// A step that blocks cannot balance: one pack whose attention costs as much as three others
// together (a cost model where attention dominates). Blocks of 2 put a light pack beside it;
// the plan for 2 ranks gives it a rank of its own and the other rank three packs, and names the
// ranks. At other world sizes the plan runs in blocks.
TEST(BatchPlan, RanksRunDifferentNumbersOfPacksWhereThatIsFaster) {
  std::vector<SeqInfo> seqs = {{1000, 10}};
  for (int i = 0; i < 30; ++i) seqs.push_back({100, 10});
  PlanOptions o;
  o.max_tokens = 1000;
  o.units_per_step = 4;
  o.world_size = 2;
  o.cost = {1, 1000, 1};  // 6s + 7000 s^2: the 1000-token sequence costs 100x a 100-token pack's
  Plan p = make_plan(seqs, o);
  check_plan(p, seqs);
  ASSERT_EQ(p.steps.size(), 1u);
  ASSERT_TRUE(plan_assigns_ranks(p));
  const auto& units = p.steps[0].units;
  size_t heavy = units.size();
  for (size_t u = 0; u < units.size(); ++u)
    if (units[u].seqs.size() == 1) heavy = u;
  ASSERT_LT(heavy, units.size());
  const int heavy_rank = units[heavy].rank;
  EXPECT_EQ(rank_units(p, 0, 2, heavy_rank), (std::vector<size_t>{heavy}));
  EXPECT_EQ(rank_units(p, 0, 2, 1 - heavy_rank).size(), 3u);
  EXPECT_EQ(step_micro_steps(p, 0, 2), 3u);
  // One rank, or four: blocks.
  EXPECT_EQ(rank_units(p, 0, 1, 0), (std::vector<size_t>{0, 1, 2, 3}));
  for (int r = 0; r < 4; ++r) EXPECT_EQ(rank_units(p, 0, 4, r), (std::vector<size_t>{size_t(r)}));
  EXPECT_EQ(step_micro_steps(p, 0, 4), 1u);
  // Without a world size there is no one world to assign for.
  PlanOptions any_world = o;
  any_world.world_size = 0;
  EXPECT_FALSE(plan_assigns_ranks(make_plan(seqs, any_world)));

  // The ranks survive plan.json; a version-2 plan (before ranks) still loads; a rank outside the
  // world or a step naming only some ranks is corruption naming the unit.
  fixture::TempDir tmp;
  save_plan(p, tmp / "plan.json");
  Plan q = load_plan(tmp / "plan.json");
  for (size_t u = 0; u < units.size(); ++u) EXPECT_EQ(q.steps[0].units[u].rank, units[u].rank);
  EXPECT_NO_THROW(validate_plan(q, seqs, "plan.json"));
  std::string text = fixture::read_text(tmp / "plan.json");
  const size_t at = text.find("\"version\":3");
  ASSERT_NE(at, std::string::npos);
  fixture::write_text(tmp / "v2.json", std::string(text).replace(at, 11, "\"version\":2"));
  EXPECT_EQ(load_plan(tmp / "v2.json").steps.size(), 1u);
  Plan bad = p;
  bad.steps[0].units[1].rank = 2;
  EXPECT_NE(rejection(bad, seqs).find("unit 1 is given to rank 2 of a plan for world size 2"), std::string::npos)
      << rejection(bad, seqs);
  bad = p;
  bad.steps[0].units[2].rank = -1;
  EXPECT_NE(rejection(bad, seqs).find("unit 2 names no rank"), std::string::npos) << rejection(bad, seqs);
}

// Sorted batching as the reference does it (batch 8, 12 units a step): micro-batches of
// neighbouring lengths (median longest/shortest <= 1.10), steps drawn across the length range
// (mean in-step spread of micro-batch lengths >= 0.8x the spread over all micro-batches),
// nothing dropped.
TEST(BatchPlan, SortMakesNarrowMicroBatchesAndWideSteps) {
  auto seqs = longalign_like_lengths(1500, 0.55, 4);
  PlanOptions o;
  o.strategy = Strategy::sort;
  o.batch_size = 8;
  o.units_per_step = 12;
  Plan p = make_plan(seqs, o);
  check_plan(p, seqs);
  std::vector<double> ratios, all_lengths, spreads;
  for (const auto& step : p.steps) {
    std::vector<double> lengths;
    for (const auto& u : step.units) {
      double lo = 1e18, hi = 0;
      for (uint32_t i : u.seqs) lo = std::min<double>(lo, seqs[i].length), hi = std::max<double>(hi, seqs[i].length);
      ratios.push_back(hi / lo);
      lengths.push_back(hi);
      all_lengths.push_back(hi);
    }
    if (step.units.size() == 12) spreads.push_back(std_of(lengths));
  }
  std::sort(ratios.begin(), ratios.end());
  EXPECT_LE(ratios[ratios.size() / 2], 1.10);
  EXPECT_GE(mean_of(spreads), 0.8 * std_of(all_lengths));
  // Micro-batches are cut from the sorted order: their length ranges never interleave.
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  for (const auto& step : p.steps)
    for (const auto& u : step.units) {
      uint32_t lo = UINT32_MAX, hi = 0;
      for (uint32_t i : u.seqs) lo = std::min(lo, seqs[i].length), hi = std::max(hi, seqs[i].length);
      ranges.push_back({lo, hi});
    }
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k) EXPECT_LE(ranges[k - 1].second, ranges[k].first);

  // With the world size known (3 ranks, 4 micro-steps each), ranks finish together: each rank's
  // padded micro-batches cost the same within 5% on average, and the steps stay wide.
  o.world_size = 3;
  Plan w = make_plan(seqs, o);
  check_plan(w, seqs);
  std::vector<double> imbalance, inner;
  for (size_t s = 0; s < w.steps.size(); ++s) {
    if (w.steps[s].units.size() != 12) continue;
    std::vector<double> rank_cost, lengths;
    for (int r = 0; r < 3; ++r) {
      rank_cost.push_back(0);
      for (size_t ui : rank_units(w, s, 3, r)) {
        const auto& u = w.steps[s].units[ui];
        rank_cost.back() += u.seqs.size() * llama7b_flops(double(u.padded_tokens) / u.seqs.size());
        lengths.push_back(double(u.padded_tokens) / u.seqs.size());
      }
    }
    imbalance.push_back(*std::max_element(rank_cost.begin(), rank_cost.end()) / mean_of(rank_cost));
    inner.push_back(std_of(lengths));
  }
  EXPECT_LE(mean_of(imbalance), 1.05);
  EXPECT_GE(mean_of(inner), 0.8 * std_of(all_lengths));
}

TEST(BatchPlan, BestFitDecreasingHandWorked) {
  // Capacity 10, lengths 6 5 4 3 2: 6 opens A (4 left), 5 opens B (5 left), 4 fits A exactly,
  // 3 goes to B (2 left), 2 fills B.
  std::vector<SeqInfo> seqs = {{6, 1}, {5, 1}, {4, 1}, {3, 1}, {2, 1}};
  auto packs = best_fit_decreasing(seqs, 10);
  ASSERT_EQ(packs.size(), 2u);
  EXPECT_EQ(packs[0], (std::vector<uint32_t>{0, 2}));
  EXPECT_EQ(packs[1], (std::vector<uint32_t>{1, 3, 4}));
}

TEST(BatchPlan, SpreadFitHandWorked) {
  // Capacity 100 (short: <= 6 tokens), three 60s and twelve 5s: 240 tokens need 3 packs.
  // Best fit: each 60 opens a pack (40 left); the 5s fill the tightest, pack A (8 of them),
  // then B (4): 9, 5 and 1 sequences. spread_fit with share 1 reserves 60 / 3 = 20 a pack (the
  // 60s still open one each) and gives each 5 to the roomiest pack: 4 each, 5 sequences a pack.
  std::vector<SeqInfo> seqs = {{60, 1}, {60, 1}, {60, 1}};
  for (int i = 0; i < 12; ++i) seqs.push_back({5, 1});
  const auto count = [](const std::vector<std::vector<uint32_t>>& packs) {
    std::vector<size_t> n;
    for (const auto& p : packs) n.push_back(p.size());
    return n;
  };
  EXPECT_EQ(count(best_fit_decreasing(seqs, 100)), (std::vector<size_t>{9, 5, 1}));
  const auto spread = spread_fit(seqs, 100, 1.0);
  EXPECT_EQ(count(spread), (std::vector<size_t>{5, 5, 5}));
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(spread[i][0], i);
  // A reserve is not room the short ones lose: 95 and five 5s (2 packs needed, reserve 25 / 2 =
  // 12) put the 95 in a pack of its own as best fit does, one 5 fills it, the rest open a second.
  std::vector<SeqInfo> tight = {{95, 1}, {5, 1}, {5, 1}, {5, 1}, {5, 1}, {5, 1}};
  EXPECT_EQ(count(spread_fit(tight, 100, 1.0)), (std::vector<size_t>{2, 4}));
}

TEST(BatchPlan, NextFitReferenceLosesDataThatBestFitKeeps) {
  auto seqs = random_seqs(500, 900, 9);
  auto nf = next_fit_reference(seqs, 1000, 1);
  size_t nf_seqs = 0;
  for (auto& p : nf) {
    uint64_t t = 0;
    for (auto i : p) t += seqs[i].length;
    EXPECT_LE(t, 1000u);
    nf_seqs += p.size();
  }
  EXPECT_LT(nf_seqs, seqs.size());  // the last partial pack is thrown away
  auto bfd = best_fit_decreasing(seqs, 1000);
  EXPECT_LE(bfd.size(), nf.size() + 1);
}

TEST(BatchPlan, NaivePadsToTheLongestInTheBatch) {
  std::vector<SeqInfo> seqs = {{5, 1}, {9, 1}, {3, 1}, {7, 1}};
  PlanOptions o;
  o.strategy = Strategy::naive;
  o.batch_size = 2;
  o.units_per_step = 1;
  Plan p = make_plan(seqs, o);
  ASSERT_EQ(p.steps.size(), 2u);
  for (const auto& s : p.steps) {
    const auto& u = s.units[0];
    uint32_t longest = std::max(seqs[u.seqs[0]].length, seqs[u.seqs[1]].length);
    EXPECT_EQ(u.padded_tokens, 2u * longest);
  }
}

TEST(BatchPlan, SeededAndReproducible) {
  auto seqs = random_seqs(200, 500, 3);
  PlanOptions o;
  o.max_tokens = 500;
  auto a = make_plan(seqs, o), b = make_plan(seqs, o);
  o.seed = 43;
  auto c = make_plan(seqs, o);
  EXPECT_EQ(a.steps[0].units[0].seqs, b.steps[0].units[0].seqs);
  bool differs = false;
  for (size_t s = 0; s < a.steps.size(); ++s) differs |= a.steps[s].units[0].seqs != c.steps[s].units[0].seqs;
  EXPECT_TRUE(differs);
}

TEST(BatchPlan, BadOptionsAndOversizedSequences) {
  std::vector<SeqInfo> seqs = {{50, 1}};
  PlanOptions o;
  o.max_tokens = 0;
  EXPECT_THROW(make_plan(seqs, o), UsageError);
  o.max_tokens = 10;
  EXPECT_THROW(make_plan(seqs, o), RuntimeError);
  o.max_tokens = 100;
  Plan p = make_plan(seqs, o);
  EXPECT_THROW(rank_units(p, 0, 3, 0), UsageError);  // 3 does not divide 8
  o.units_per_step = 7;
  o.world_size = 2;  // 7 units cannot give 2 ranks the same number
  EXPECT_THROW(make_plan(seqs, o), UsageError);
  try {
    parse_weighting("mean");
    FAIL() << "unknown weighting accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("pack_mean"), std::string::npos) << e.what();
  }
}

TEST(BatchPlan, SaveLoadRoundTrip) {
  fixture::TempDir tmp;
  auto seqs = random_seqs(50, 300, 4);
  PlanOptions o;
  o.max_tokens = 600;
  o.units_per_step = 2;
  Plan p = make_plan(seqs, o);
  save_plan(p, tmp / "plan.json");
  Plan q = load_plan(tmp / "plan.json");
  EXPECT_EQ(q.options.max_tokens, 600);
  EXPECT_EQ(q.options.cost.hidden, p.options.cost.hidden);
  ASSERT_EQ(q.steps.size(), p.steps.size());
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (size_t u = 0; u < p.steps[s].units.size(); ++u) {
      EXPECT_EQ(q.steps[s].units[u].seqs, p.steps[s].units[u].seqs);
      EXPECT_EQ(q.steps[s].units[u].weights, p.steps[s].units[u].weights);  // exact: JSON doubles round-trip
    }
  fixture::write_text(tmp / "bad.json", "{\"format\":\"longalign-plan\",\"version\":7}");
  EXPECT_THROW(load_plan(tmp / "bad.json"), RuntimeError);
  // Found by fuzzing: wrong JSON types and floats are corruption, never casts or stray exceptions.
  for (const char* bad : {R"({"format":1})", R"({"format":"longalign-plan","version":"2"})",
                          R"({"format":"longalign-plan","version":2.5})"}) {
    fixture::write_text(tmp / "bad.json", bad);
    EXPECT_THROW(load_plan(tmp / "bad.json"), RuntimeError) << bad;
  }
  std::string text = fixture::read_text(tmp / "plan.json");
  const size_t at = text.find("\"max_tokens\":600");
  ASSERT_NE(at, std::string::npos);
  fixture::write_text(tmp / "bad.json", text.replace(at, 16, "\"max_tokens\":1e30"));
  EXPECT_THROW(load_plan(tmp / "bad.json"), RuntimeError);
}

namespace {
// The message of validate_plan's error, or "" when it accepts the plan.
std::string rejection(const Plan& p, const std::vector<SeqInfo>& seqs) {
  try {
    validate_plan(p, seqs, "plan.json");
  } catch (const RuntimeError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(BatchPlan, ValidationAcceptsEveryMadePlanAndNamesEachCorruption) {
  auto seqs = random_seqs(40, 300, 11);
  for (Strategy s : {Strategy::pack, Strategy::sort, Strategy::naive})
    for (Weighting w : {Weighting::sequence, Weighting::token, Weighting::pack_mean}) {
      PlanOptions o;
      o.strategy = s;
      o.weighting = w;
      o.max_tokens = 600;
      o.batch_size = 2;
      o.units_per_step = 4;
      EXPECT_EQ(rejection(make_plan(seqs, o), seqs), "") << to_string(s) << "/" << to_string(w);
    }
  PlanOptions o;
  o.max_tokens = 600;
  o.units_per_step = 4;
  const Plan good = make_plan(seqs, o);
  auto expect_rejected = [&](const char* what, const std::string& fragment, auto mutate) {
    Plan p = good;
    mutate(p);
    const std::string msg = rejection(p, seqs);
    EXPECT_NE(msg.find(fragment), std::string::npos) << what << ": got '" << msg << "'";
  };
  expect_rejected("id out of range", "names sequence 40 but the dataset has 40",
                  [](Plan& p) { p.steps[0].units[0].seqs[0] = 40; });
  expect_rejected("duplicate", "appears twice", [](Plan& p) {
    p.steps[1].units[0].seqs.push_back(p.steps[0].units[0].seqs[0]);
    p.steps[1].units[0].weights.push_back(1);
  });
  expect_rejected("missing", "is in no step", [&](Plan& p) {
    p.steps[0].units[0].tokens -= seqs[p.steps[0].units[0].seqs.back()].length;
    p.steps[0].units[0].seqs.pop_back();
    p.steps[0].units[0].weights.pop_back();
  });
  expect_rejected("no steps", "no steps", [](Plan& p) { p.steps.clear(); });
  expect_rejected("huge weight", "weight 1e+30", [](Plan& p) { p.steps[0].units[0].weights[0] = 1e30; });
  expect_rejected("token count", "tokens", [](Plan& p) { p.steps[0].units[0].tokens += 1; });
  expect_rejected("over capacity", "over max_tokens", [](Plan& p) {
    p.options.max_tokens = 10;
    for (auto& s : p.steps)
      for (auto& u : s.units) u.padded_tokens = 10;
  });
  expect_rejected("bad options", "units-per-step", [](Plan& p) { p.options.units_per_step = 0; });
}

// Useful-work efficiency worked out by hand: two ranks, one pack each, P = d = L = 1, so a
// sequence of s tokens costs 6s + 7s^2 and a padding token 6. Packs of 10 and 30 tokens in a
// capacity of 32: useful 760 + 6480; the ranks run 760 + 6*22 = 892 and 6480 + 6*2 = 6492, so
// the step occupies 2 x 6492.
TEST(PlanQuality, UsefulWorkEfficiencyByHand) {
  PlanOptions o;
  o.strategy = Strategy::pack;
  o.units_per_step = 2;
  o.world_size = 2;
  o.max_tokens = 32;
  o.cost = {1, 1, 1};
  const std::vector<SeqInfo> seqs = {{10, 1}, {30, 1}};
  Plan p{o, {PlanStep{{PlanUnit{{0}, {1.0}, 10, 32}, PlanUnit{{1}, {1.0}, 30, 32}}}}};
  PlanQuality q = plan_quality(p, seqs);
  ASSERT_TRUE(q.useful_work_efficiency.has_value());
  EXPECT_NEAR(*q.useful_work_efficiency, (760.0 + 6480.0) / (2 * 6492.0), 1e-12);
  // Both packs on one rank (world size 1): nobody waits, only padding is lost.
  p.options.world_size = 1;
  q = plan_quality(p, seqs);
  EXPECT_NEAR(*q.useful_work_efficiency, (760.0 + 6480.0) / (892.0 + 6492.0), 1e-12);
}

TEST(RankBalance, AssignmentHandWorkedAndNearTheBruteForceOptimum) {
  // {6, 2, 2, 2} on 2 ranks: blocks of 2 give 8 at best; 6 alone and 2+2+2 give 6 and 6.
  std::vector<double> c = {6, 2, 2, 2};
  auto rank = balanced_assignment(c, 2);
  EXPECT_EQ(rank_loads(c, rank, 2), (std::vector<double>{6, 6}));
  EXPECT_NE(rank[0], rank[1]);
  EXPECT_EQ(rank[1], rank[2]);
  EXPECT_EQ(rank[2], rank[3]);
  // Fewer units than ranks: one each, the rest idle.
  rank = balanced_assignment({5, 1}, 4);
  EXPECT_NE(rank[0], rank[1]);
  // Random steps of 7 units on 3 ranks against every one of the 3^7 assignments: never above
  // LPT's bound (4/3 - 1/(3W)) of the optimum, and at it on most.
  int optimal = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Rng rng(seed);
    std::vector<double> costs;
    for (int i = 0; i < 7; ++i) costs.push_back(1 + 9 * rng.uniform());
    double best = 1e18;
    for (int code = 0; code < 2187; ++code) {
      std::vector<int> r;
      for (int i = 0, x = code; i < 7; ++i, x /= 3) r.push_back(x % 3);
      auto l = rank_loads(costs, r, 3);
      best = std::min(best, *std::max_element(l.begin(), l.end()));
    }
    auto l = rank_loads(costs, balanced_assignment(costs, 3), 3);
    const double got = *std::max_element(l.begin(), l.end());
    EXPECT_LE(got, best * (4.0 / 3 - 1.0 / 9) + 1e-12) << "seed " << seed;
    optimal += got <= best * (1 + 1e-12);
  }
  EXPECT_GE(optimal, 15);
}

