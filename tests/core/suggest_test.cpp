// Edit distance on hand-computed pairs and nearest-key suggestions.
#include <gtest/gtest.h>

#include "longalign/core/suggest.hpp"

using namespace longalign;

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

TEST(Suggest, NearestKey) {
  std::vector<std::string> keys = {"max_tokens", "batch_size", "strategy"};
  EXPECT_EQ(nearest("max_token", keys), "max_tokens");
  EXPECT_EQ(nearest("stratgy", keys), "strategy");
  EXPECT_EQ(nearest("completely_unrelated_key", keys), "");
}
