// UTF-8 validation and the zero-width clean-up LongAlign applies to assistant text.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace longalign::data {

// Returns the byte offset of the first invalid sequence, or npos when `s` is valid UTF-8
// (overlongs, surrogates and code points above U+10FFFF are invalid).
size_t find_invalid_utf8(std::string_view s);

// Removes U+200B, U+200C, U+200D and U+FEFF, as the reference does for assistant answers.
std::string strip_zero_width(std::string_view s);

}  // namespace longalign::data
