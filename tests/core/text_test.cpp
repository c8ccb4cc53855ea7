// String helpers: trimming and one-pass placeholder substitution, against hand-worked strings.
#include <gtest/gtest.h>

#include "longalign/core/text.hpp"

using namespace longalign;

TEST(Text, TrimRemovesSurroundingWhitespaceOnly) {
  EXPECT_EQ(trim("  \t a b \r\n"), "a b");
  EXPECT_EQ(trim(" \n\t "), "");
  EXPECT_EQ(trim("x"), "x");
}

TEST(Text, PlaceholdersAreFilledInOnePass) {
  EXPECT_EQ(fill_placeholders("{a}-{b}-{a}", {{"{a}", "1"}, {"{b}", "2"}}), "1-2-1");
  // A value that looks like a placeholder stays as it is; unknown braces are kept.
  EXPECT_EQ(fill_placeholders("{a} {c}", {{"{a}", "{b}"}, {"{b}", "no"}}), "{b} {c}");
}
