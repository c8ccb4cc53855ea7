// Formatting for range errors; see option_check.hpp.
#include "longalign/core/option_check.hpp"

#include <cmath>
#include <cstdio>

namespace longalign {

std::string format_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 9223372036854775807.0) return "9223372036854775807";  // int64's maximum, as typed
  char buf[64];
  if (x == std::floor(x) && std::fabs(x) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", x);
  else
    std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

std::string range_text(double lo, double hi, bool lo_open) {
  // Config tables write "no upper bound" as 1e300 or infinity.
  const bool unbounded = std::isinf(hi) || hi >= 1e300;
  const std::string low = (lo_open ? "> " : ">= ") + format_number(lo);
  if (unbounded) return low;
  if (!lo_open) return format_number(lo) + ".." + format_number(hi);
  return low + " and <= " + format_number(hi);
}

std::string out_of_range(const std::string& key, const std::string& value, const std::string& range) {
  return key + " " + value + " is out of range: must be " + range;
}

}  // namespace longalign
