// The RNG must be reproducible, in range, and unbiased enough for shuffles.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "longalign/core/rng.hpp"

using longalign::Rng;

TEST(Rng, SameSeedSameStreamDifferentSeedDifferent) {
  Rng a(7), b(7), c(8);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    EXPECT_NE(x, c.next());
  }
}

TEST(Rng, BelowAndRangeStayInBoundsAndCoverThem) {
  Rng r(1);
  std::vector<int> hits(7, 0);
  for (int i = 0; i < 7000; ++i) {
    int64_t v = r.range(3, 9);
    ASSERT_GE(v, 3);
    ASSERT_LE(v, 9);
    hits[v - 3]++;
  }
  for (int h : hits) EXPECT_NEAR(h, 1000, 150);  // ~4.7 sigma
}

TEST(Rng, ShuffleIsAPermutation) {
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 0);
  auto w = v;
  Rng(3).shuffle(w);
  EXPECT_NE(v, w);
  std::sort(w.begin(), w.end());
  EXPECT_EQ(v, w);
}
