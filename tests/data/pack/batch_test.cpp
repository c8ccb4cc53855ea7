// Materialized batches: a hand-worked packed layout (pre-shifted labels, position resets,
// cu_seqlens), padded layouts for naive/sort, weights that add up the same over any set of
// ranks (one per step on average), and relabels from imported reference data.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/pack/batch.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::data;

namespace {

TokenDataset small_dataset(const fixture::TempDir& tmp) {
  DatasetInfo info;
  info.vocab_size = 100;
  DatasetWriter w(tmp.path, info);
  w.add({{1, 10, 11, 2}, {0, 0, 1, 1}});  // targets: 11, 2
  w.add({{1, 20, 2}, {0, 1, 1}});         // targets: 20, 2
  w.finish();
  return TokenDataset::open(tmp.path);
}

}  // namespace

TEST(Batch, PackedLayoutHandWorked) {
  fixture::TempDir tmp;
  auto ds = small_dataset(tmp);
  PlanUnit u;
  u.seqs = {0, 1};
  u.weights = {0.25, 0.25};  // sequence weighting, M = 2, N = 2 each
  Batch b = make_batch(ds, u, Strategy::pack);
  const int X = kIgnoreIndex;
  EXPECT_EQ(b.input_ids, (std::vector<int32_t>{1, 10, 11, 2, 1, 20, 2}));
  EXPECT_EQ(b.labels, (std::vector<int32_t>{X, 11, 2, X, 20, 2, X}));
  EXPECT_EQ(b.position_ids, (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2}));
  EXPECT_EQ(b.cu_seqlens, (std::vector<int32_t>{0, 4, 7}));
  EXPECT_EQ(b.weights, (std::vector<float>{0, .25f, .25f, 0, .25f, .25f, 0}));
  EXPECT_EQ(b.max_seqlen, 4);
  EXPECT_EQ(b.num_targets, 4);
}

TEST(Batch, PaddedLayoutForSortedAndNaive) {
  fixture::TempDir tmp;
  auto ds = small_dataset(tmp);
  PlanUnit u;
  u.seqs = {1, 0};
  u.weights = {0.5, 0.5};
  Batch b = make_batch(ds, u, Strategy::sort, /*pad_id=*/0);
  const int X = kIgnoreIndex;
  EXPECT_EQ(b.input_ids, (std::vector<int32_t>{1, 20, 2, 0, 1, 10, 11, 2}));
  EXPECT_EQ(b.labels, (std::vector<int32_t>{20, 2, X, X, X, 11, 2, X}));
  EXPECT_EQ(b.position_ids, (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3}));
  EXPECT_EQ(b.cu_seqlens, (std::vector<int32_t>{0, 4, 8}));
  EXPECT_EQ(b.weights[3], 0.0f);  // padding is never a target
}

TEST(Batch, StepWeightsAddUpTheSameAcrossRanks) {
  fixture::TempDir tmp;
  DatasetInfo info;
  DatasetWriter w(tmp.path, info);
  std::vector<SeqInfo> seqs;
  Rng rng(11);
  for (int i = 0; i < 40; ++i) {
    TokenizedRecord r;
    int len = int(rng.range(3, 60));
    for (int t = 0; t < len; ++t) r.ids.push_back(int32_t(rng.range(3, 90))), r.target.push_back(t > 0 && rng.below(2));
    r.target[len - 1] = 1;
    w.add(r);
  }
  w.finish();
  auto ds = TokenDataset::open(tmp.path);
  for (size_t i = 0; i < ds.size(); ++i) seqs.push_back({ds[i].length, ds[i].n_targets});
  for (auto strategy : {Strategy::pack, Strategy::sort, Strategy::naive}) {
    PlanOptions o;
    o.strategy = strategy;
    o.max_tokens = 64;
    o.batch_size = 2;
    o.units_per_step = 4;
    Plan p = make_plan(seqs, o);
    double epoch = 0;
    for (size_t s = 0; s < p.steps.size(); ++s) {
      double expect = 0;  // the step's share of the epoch: its weights times its targets
      for (const auto& u : p.steps[s].units)
        for (size_t k = 0; k < u.seqs.size(); ++k) expect += u.weights[k] * seqs[u.seqs[k]].n_targets;
      epoch += expect;
      for (int world : {1, 2, 4}) {
        double total = 0;
        for (int r = 0; r < world; ++r)
          for (size_t ui : rank_units(p, s, world, r)) {
            Batch b = make_batch(ds, p.steps[s].units[ui], strategy);
            ASSERT_EQ(b.cu_seqlens.back(), int32_t(b.input_ids.size()));
            for (size_t k = 1; k < b.cu_seqlens.size(); ++k)
              EXPECT_EQ(b.position_ids[b.cu_seqlens[k - 1]], 0);  // positions restart per segment
            for (float x : b.weights) total += x;
          }
        EXPECT_NEAR(total, expect, 1e-5) << to_string(strategy) << " step " << s << " world " << world;
      }
    }
    EXPECT_NEAR(epoch, double(p.steps.size()), 1e-9);  // one per step on average
  }
}

TEST(Batch, RelabelsReplaceTheTargetTokenOnly) {
  // The reference's round end: position 3 (input 30, the next round's first token) is labelled
  // EOS (2). The logits at position 2 must predict 2; every other target predicts its input.
  fixture::TempDir tmp;
  DatasetInfo info;
  info.vocab_size = 50;
  DatasetWriter w(tmp.path, info);
  w.add({{1, 10, 11, 30, 31}, {0, 0, 1, 1, 1}, {}});
  w.add({{1, 12, 40, 41}, {0, 1, 1, 1}, {{2, 2}, {3, 7}}});
  w.finish();
  auto ds = TokenDataset::open(tmp.path);
  EXPECT_EQ(ds.info().num_relabels, 2u);
  PlanUnit u;
  u.seqs = {0, 1};
  u.weights = {1, 1};
  Batch b = make_batch(ds, u, Strategy::pack);
  EXPECT_EQ(b.labels, (std::vector<int32_t>{-100, 11, 30, 31, -100, 12, 2, 7, -100}));
  EXPECT_EQ(b.input_ids, (std::vector<int32_t>{1, 10, 11, 30, 31, 1, 12, 40, 41}));
}

TEST(Batch, RelabelFileIsChecked) {
  fixture::TempDir tmp;
  DatasetWriter w(tmp.path, DatasetInfo{});
  w.add({{1, 10, 11}, {0, 1, 1}, {{2, 2}}});
  w.finish();
  fixture::write_text(tmp / "relabel.bin", std::string(16, '\0'));  // same size, wrong bytes
  EXPECT_THROW(TokenDataset::open(tmp.path), RuntimeError);
}

TEST(Batch, OutOfVocabularyTokenIsCorruption) {
  fixture::TempDir tmp;
  DatasetInfo info;
  info.vocab_size = 50;
  DatasetWriter w(tmp.path, info);
  w.add({{1, 77, 2}, {0, 1, 1}});
  w.finish();
  auto ds = TokenDataset::open(tmp.path);
  PlanUnit u;
  u.seqs = {0};
  u.weights = {0.5};
  EXPECT_THROW(make_batch(ds, u, Strategy::pack), RuntimeError);
}
