// Planner properties for every strategy: each sequence placed exactly once, capacity respected,
// weights summing to 1 per step whatever the world size, and the hand-worked packing cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "longalign/core/error.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/batch_plan.hpp"
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

void check_plan(const Plan& p, const std::vector<SeqInfo>& seqs) {
  const auto& o = p.options;
  std::vector<int> placed(seqs.size(), 0);
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const auto& step = p.steps[s];
    ASSERT_FALSE(step.units.empty());
    ASSERT_LE(step.units.size(), size_t(o.units_per_step));
    if (s + 1 < p.steps.size() && o.strategy != Strategy::sort) EXPECT_EQ(step.units.size(), size_t(o.units_per_step));
    for (const auto& u : step.units) {
      ASSERT_EQ(u.seqs.size(), u.weights.size());
      uint64_t tokens = 0;
      for (uint32_t i : u.seqs) placed[i]++, tokens += seqs[i].length;
      EXPECT_EQ(tokens, u.tokens);
      if (o.strategy == Strategy::pack) EXPECT_LE(tokens, uint64_t(o.max_tokens));
      else EXPECT_LE(u.seqs.size(), size_t(o.batch_size));
    }
    // Weights are global: summed over the ranks of any world size dividing the step, they give 1.
    for (int world : {1, 2, 4}) {
      if (o.units_per_step % world) continue;
      double total = 0;
      std::set<size_t> seen;
      for (int r = 0; r < world; ++r)
        for (size_t ui : rank_units(p, s, world, r)) {
          EXPECT_TRUE(seen.insert(ui).second);
          const auto& u = step.units[ui];
          for (size_t k = 0; k < u.seqs.size(); ++k) total += u.weights[k] * seqs[u.seqs[k]].n_targets;
        }
      EXPECT_EQ(seen.size(), step.units.size());
      EXPECT_NEAR(total, 1.0, 1e-12) << "step " << s << " world " << world;
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(placed[i], 1) << "sequence " << i;
}

}  // namespace

TEST(BatchPlan, EveryStrategyPlacesEachSequenceOnceWithUnitWeights) {
  auto seqs = random_seqs(997, 1000, 5);
  for (auto strategy : {Strategy::pack, Strategy::sort, Strategy::naive})
    for (auto weighting : {Weighting::sequence, Weighting::token}) {
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

TEST(BatchPlan, SequenceWeightIsOneOverNTimesM) {
  std::vector<SeqInfo> seqs = {{10, 4}, {8, 2}, {6, 1}};
  PlanOptions o;
  o.max_tokens = 100;  // all three fit one pack, one step
  Plan p = make_plan(seqs, o);
  ASSERT_EQ(p.steps.size(), 1u);
  const auto& u = p.steps[0].units[0];
  for (size_t k = 0; k < u.seqs.size(); ++k) EXPECT_DOUBLE_EQ(u.weights[k], 1.0 / (seqs[u.seqs[k]].n_targets * 3.0));
  o.weighting = Weighting::token;
  Plan t = make_plan(seqs, o);
  for (double w : t.steps[0].units[0].weights) EXPECT_DOUBLE_EQ(w, 1.0 / 7.0);
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

TEST(BatchPlan, SortKeepsLengthRangesTogetherAndKeepsTheRemainder) {
  auto seqs = random_seqs(10, 100, 2);
  PlanOptions o;
  o.strategy = Strategy::sort;
  o.units_per_step = 4;
  Plan p = make_plan(seqs, o);
  ASSERT_EQ(p.steps.size(), 3u);  // 4 + 4 + 2: nothing dropped
  std::vector<std::pair<uint32_t, uint32_t>> ranges;
  for (const auto& s : p.steps) {
    uint32_t lo = UINT32_MAX, hi = 0;
    for (const auto& u : s.units)
      for (auto i : u.seqs) lo = std::min(lo, seqs[i].length), hi = std::max(hi, seqs[i].length);
    ranges.push_back({lo, hi});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k) EXPECT_LE(ranges[k - 1].second, ranges[k].first);
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
  ASSERT_EQ(q.steps.size(), p.steps.size());
  for (size_t s = 0; s < p.steps.size(); ++s)
    for (size_t u = 0; u < p.steps[s].units.size(); ++u) {
      EXPECT_EQ(q.steps[s].units[u].seqs, p.steps[s].units[u].seqs);
      EXPECT_EQ(q.steps[s].units[u].weights, p.steps[s].units[u].weights);  // exact: JSON doubles round-trip
    }
  fixture::write_text(tmp / "bad.json", "{\"format\":\"longalign-plan\",\"version\":7}");
  EXPECT_THROW(load_plan(tmp / "bad.json"), RuntimeError);
}
