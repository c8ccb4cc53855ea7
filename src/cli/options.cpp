// See options.hpp: the flag validators and their one message format.
#include "options.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "longalign/core/option_check.hpp"

namespace longalign::cli {
namespace {

// The whole text as a double; false when it is not a number at all.
bool parse_real(const std::string& s, double& x) {
  if (s.empty()) return false;
  char* end = nullptr;
  x = std::strtod(s.c_str(), &end);
  return *end == '\0';
}

std::string range_error(const std::string& value, const std::string& range) {
  return value + " is out of range: must be " + range;
}

// The compact form shown in --help after the type: "1..256", "(0,1]", ">=1".
std::string help_range(double lo, double hi, bool lo_open = false) {
  const std::string text = range_text(lo, hi, lo_open);
  if (!lo_open || text.find(" and ") == std::string::npos) {
    std::string t = text;
    t.erase(std::remove(t.begin(), t.end(), ' '), t.end());
    return t;
  }
  return "(" + format_number(lo) + "," + format_number(hi) + "]";
}

}  // namespace

CLI::Validator int_range(int64_t lo, int64_t hi) {
  const std::string range = range_text(double(lo), double(hi));
  return CLI::Validator(
      [lo, hi, range](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = s.empty() ? 0 : std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0') {
          double x;
          if (parse_real(s, x) && std::isfinite(x) && (x < double(lo) || x > double(hi))) return range_error(s, range);
          return s + " is not a whole number (must be " + range + ")";
        }
        if (errno == ERANGE || v < lo || v > hi) return range_error(s, range);
        return "";
      },
      help_range(double(lo), double(hi)));
}

CLI::Validator any_seed() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const std::string range = "0..18446744073709551615";
        char* end = nullptr;
        errno = 0;
        const size_t first = s.find_first_not_of(" \t");
        if (first != std::string::npos && s[first] == '-') {
          double x;
          return parse_real(s, x) ? range_error(s, range) : s + " is not a whole number (must be " + range + ")";
        }
        (void)std::strtoull(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0') return s + " is not a whole number (must be " + range + ")";
        if (errno == ERANGE) return range_error(s, range);
        return "";
      },
      "");
}

CLI::Validator real_range(double lo, double hi, bool lo_open) {
  const std::string range = range_text(lo, hi, lo_open);
  return CLI::Validator(
      [lo, hi, lo_open, range](std::string& s) -> std::string {
        double x;
        if (!parse_real(s, x) || std::isnan(x)) return s + " is not a number (must be " + range + ")";
        if (x < lo || x > hi || (lo_open && x == lo)) return range_error(s, range);
        return "";
      },
      help_range(lo, hi, lo_open));
}

CLI::Validator one_of(std::vector<std::string> choices) {
  std::string list, compact;
  for (const auto& c : choices) {
    list += (list.empty() ? "" : ", ") + c;
    compact += (compact.empty() ? "" : ",") + c;
  }
  return CLI::Validator(
      [choices, list](std::string& s) -> std::string {
        for (const auto& c : choices)
          if (s == c) return "";
        return "'" + s + "' is not one of " + list;
      },
      "{" + compact + "}");
}

CLI::Validator device_name() { return one_of({"auto", "cpu", "cuda"}); }

}  // namespace longalign::cli
