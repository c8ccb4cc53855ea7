// UTF-8 validation on hand-made byte sequences, and the zero-width strip.
#include <gtest/gtest.h>

#include "longalign/data/tokenize/utf8.hpp"

using namespace longalign::data;
constexpr auto npos = std::string_view::npos;

TEST(Utf8, AcceptsValidText) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), npos);
  EXPECT_EQ(find_invalid_utf8("问：答 é 😀"), npos);
  EXPECT_EQ(find_invalid_utf8("\xF4\x8F\xBF\xBF"), npos);  // U+10FFFF
}

TEST(Utf8, RejectsMalformedSequencesAtTheirOffset) {
  EXPECT_EQ(find_invalid_utf8("ab\xFF"), 2u);              // never valid
  EXPECT_EQ(find_invalid_utf8("a\xC0\xAF"), 1u);           // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);        // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("xyz\xE4\xBD"), 3u);         // truncated 3-byte sequence
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);    // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xE4\x41\x80"), 0u);        // bad continuation
}

TEST(Utf8, StripsZeroWidthCharacters) {
  EXPECT_EQ(strip_zero_width("a\u200Bb\u200Cc\u200Dd\uFEFFe"), "abcde");
  EXPECT_EQ(strip_zero_width("问\u200B答"), "问答");
}
