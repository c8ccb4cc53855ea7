// One wording for every out-of-range value, whether it came from a flag or a config key:
// "train.lr 5 is out of range: must be > 0 and <= 1". Limits are printed the way a person
// would write them (1e+18 rather than 19 digits, "> 0" rather than 300 digits of a 1e300 bound).
#pragma once
#include <cstdint>
#include <string>

namespace longalign {

// Integers up to 15 digits as digits, anything else in %g form; NaN and infinities by name.
std::string format_number(double x);

// "1..256", "> 0 and <= 1", ">= 1" (an upper bound of +inf or 1e300 and more reads as none).
std::string range_text(double lo, double hi, bool lo_open = false);

// "KEY VALUE is out of range: must be RANGE".
std::string out_of_range(const std::string& key, const std::string& value, const std::string& range);

}  // namespace longalign
