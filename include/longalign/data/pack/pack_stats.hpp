// Counters for one `pack` run: what was read, kept, truncated, dropped (and why), and how
// efficiently the batches use their token budget. Written as stats.json and printed.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "longalign/data/pack/plan_quality.hpp"

namespace longalign::data {

struct PackStats {
  uint64_t records = 0;  // non-empty input lines
  uint64_t invalid = 0;  // malformed lines skipped under --skip-invalid
  std::vector<std::string> invalid_examples;  // the first few, as "file:line: why"
  std::string first_skipped;                  // the first skipped record, as "file:line: why"
  std::map<std::string, uint64_t> dropped;    // reason -> records not trained on
  uint64_t sequences = 0, truncated = 0, tokens = 0, target_tokens = 0;
  uint64_t steps = 0, batches = 0, padding_tokens = 0;
  std::vector<uint64_t> length_histogram;  // bucket k counts lengths in [2^k, 2^(k+1))
  PlanQuality quality;

  void add_length(uint64_t len);
  uint64_t dropped_total() const;
  double efficiency() const;  // real tokens / (real + padding)
  std::string to_json() const;
  std::string summary() const;  // human-readable, with the histogram
};

}  // namespace longalign::data
