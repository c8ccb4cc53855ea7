// UTF-8 validation, the zero-width clean-up LongAlign applies to assistant text, and code-point
// access for the tokenizers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace longalign::data {

// Returns the byte offset of the first invalid sequence, or npos when `s` is valid UTF-8
// (overlongs, surrogates and code points above U+10FFFF are invalid).
size_t find_invalid_utf8(std::string_view s);

// Removes U+200B, U+200C, U+200D and U+FEFF, as the reference does for assistant answers.
std::string strip_zero_width(std::string_view s);

// Code points of text already validated as UTF-8: the one starting at byte i (its length in
// *len), the start of the one ending just before byte i, and appending one.
uint32_t decode_utf8_at(std::string_view s, size_t i, size_t* len);
size_t utf8_char_len(unsigned char lead);  // bytes of the code point that starts with this byte
size_t utf8_char_start_before(std::string_view s, size_t i);
void append_utf8(std::string& out, uint32_t c);

}  // namespace longalign::data
