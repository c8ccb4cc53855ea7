// String helpers: trimming and one-pass placeholder substitution.
#include "longalign/core/text.hpp"

namespace longalign {

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

std::string fill_placeholders(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    bool hit = false;
    for (const auto& [key, value] : values)
      if (!key.empty() && tmpl.compare(i, key.size(), key) == 0) {
        out += value;
        i += key.size();
        hit = true;
        break;
      }
    if (!hit) out += tmpl[i++];
  }
  return out;
}

}  // namespace longalign
