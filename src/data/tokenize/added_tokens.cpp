// Added-token cutting; see the header. Whitespace and word characters follow the library's
// regex engines (Oniguruma's \s, Rust's \w), read from ICU.
#include "longalign/data/tokenize/added_tokens.hpp"

#include <unicode/uchar.h>

#include <algorithm>

#include "longalign/data/tokenize/utf8.hpp"

namespace longalign::data {
namespace {

// Unicode White_Space: what \s means to Oniguruma (the regexes of `tokenizers`) and to Rust.
bool is_white_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Rust regex's \w, which decides single_word added tokens.
bool is_word_char(uint32_t c) {
  const auto gc = U_GET_GC_MASK(static_cast<UChar32>(c));
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC) ||
         (gc & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0 ||
         u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_JOIN_CONTROL);
}

// How far whitespace reaches left of `end` / right of `begin`.
size_t white_space_start(std::string_view s, size_t end) {
  while (end > 0) {
    size_t prev = utf8_char_start_before(s, end), len = 0;
    if (!is_white_space(decode_utf8_at(s, prev, &len))) break;
    end = prev;
  }
  return end;
}
size_t white_space_end(std::string_view s, size_t begin) {
  size_t len = 0;
  while (begin < s.size() && is_white_space(decode_utf8_at(s, begin, &len))) begin += len;
  return begin;
}

bool single_word_ok(std::string_view s, size_t begin, size_t end) {
  size_t len = 0;
  if (begin > 0 && is_word_char(decode_utf8_at(s, utf8_char_start_before(s, begin), &len))) return false;
  return end == s.size() || !is_word_char(decode_utf8_at(s, end, &len));
}

}  // namespace

void cut_added(std::string_view s, const AddedMatcher& m, const std::vector<AddedToken>& tokens,
               std::vector<AddedCut>& out) {
  out.clear();
  size_t done = 0, pos = 0, len = 0;
  while (pos < s.size()) {
    const int32_t t = m.longest_at(s, pos, &len);
    if (t < 0) {
      ++pos;
      continue;
    }
    size_t begin = pos, end = pos + len;
    pos = end;
    const AddedToken& tok = tokens[t];
    if (tok.single_word && !single_word_ok(s, begin, end)) continue;
    if (tok.lstrip) begin = std::max(white_space_start(s, begin), done);
    if (tok.rstrip) end = white_space_end(s, end), pos = end;
    if (done < begin) out.push_back({done, begin, -1});
    out.push_back({begin, end, t});
    done = end;
  }
  if (done < s.size()) out.push_back({done, s.size(), -1});
}

}  // namespace longalign::data
