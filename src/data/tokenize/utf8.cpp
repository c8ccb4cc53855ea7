// Strict UTF-8 validator (RFC 3629 ranges), zero-width character removal, and code-point
// decoding and encoding for the tokenizers.
#include "longalign/data/tokenize/utf8.hpp"

#include <cstdint>

namespace longalign::data {

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if (c == 0xED) len = 3, hi = 0x9F;  // excludes UTF-16 surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    else return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string strip_zero_width(std::string_view s) {
  // U+200B..U+200D are E2 80 8B..8D; U+FEFF is EF BB BF.
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (i + 2 < s.size()) {
      auto a = static_cast<unsigned char>(s[i]), b = static_cast<unsigned char>(s[i + 1]),
           c = static_cast<unsigned char>(s[i + 2]);
      if ((a == 0xE2 && b == 0x80 && c >= 0x8B && c <= 0x8D) || (a == 0xEF && b == 0xBB && c == 0xBF)) {
        i += 3;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

size_t utf8_char_len(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

uint32_t decode_utf8_at(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  *len = utf8_char_len(p[0]);
  if (*len == 1) return p[0];
  uint32_t c = p[0] & (0xFF >> (*len + 1));
  for (size_t k = 1; k < *len; ++k) c = (c << 6) | (p[k] & 0x3F);
  return c;
}

size_t utf8_char_start_before(std::string_view s, size_t i) {
  do --i;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace longalign::data
