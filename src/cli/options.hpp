// Validators for numeric and named flags, shared by every subcommand so that a bad value is
// always reported the same way, before any work: "--threads: 100000 is out of range: must be
// 1..256" (CLI11 puts the flag in front). They see the text as typed, so NaN, negative values
// for unsigned flags and numbers too big for the flag's type are caught, not converted.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace longalign::cli {

// The longest context any length flag may ask for: 16M tokens, far past any model we train.
constexpr int64_t kMaxTokens = int64_t{1} << 24;
constexpr int64_t kMaxRanks = 65536;
constexpr int64_t kMaxThreads = 256;

CLI::Validator int_range(int64_t lo, int64_t hi = INT64_MAX);  // whole numbers only
CLI::Validator any_seed();                                     // 0..2^64-1, no sign
CLI::Validator real_range(double lo, double hi, bool lo_open = false);
CLI::Validator one_of(std::vector<std::string> choices);
CLI::Validator device_name();  // auto, cpu or cuda

}  // namespace longalign::cli
