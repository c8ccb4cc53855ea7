// PackStats formatting: JSON for machines, an aligned text table with a bar histogram for people.
#include "longalign/data/pack/pack_stats.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace longalign::data {

void PackStats::add_length(uint64_t len) {
  size_t k = 0;
  while ((uint64_t{2} << k) <= len) ++k;
  if (length_histogram.size() <= k) length_histogram.resize(k + 1, 0);
  length_histogram[k] += 1;
}

uint64_t PackStats::dropped_total() const {
  uint64_t n = 0;
  for (const auto& [_, c] : dropped) n += c;
  return n;
}

double PackStats::efficiency() const {
  double denom = double(tokens) + double(padding_tokens);
  return denom > 0 ? double(tokens) / denom : 0.0;
}

std::string PackStats::to_json() const {
  nlohmann::json hist = nlohmann::json::array();
  for (size_t k = 0; k < length_histogram.size(); ++k)
    if (length_histogram[k])
      hist.push_back({{"min", uint64_t{1} << k}, {"max_exclusive", uint64_t{2} << k}, {"count", length_histogram[k]}});
  nlohmann::json j = {{"records", records},
                      {"invalid", invalid},
                      {"invalid_examples", invalid_examples},
                      {"dropped", dropped},
                      {"dropped_total", dropped_total()},
                      {"sequences", sequences},
                      {"truncated", truncated},
                      {"tokens", tokens},
                      {"target_tokens", target_tokens},
                      {"steps", steps},
                      {"batches", batches},
                      {"padding_tokens", padding_tokens},
                      {"efficiency", efficiency()},
                      {"length_histogram", hist},
                      {"plan_quality", plan_quality_json(quality)}};
  return j.dump(2) + "\n";
}

std::string PackStats::summary() const {
  std::string s = fmt::format(
      "records {}  sequences {}  truncated {}  dropped {}  invalid {}\n"
      "tokens {}  target tokens {}  steps {}  batches {}  padding {}  efficiency {:.2f}%\n",
      records, sequences, truncated, dropped_total(), invalid, tokens, target_tokens, steps, batches,
      padding_tokens, efficiency() * 100);
  s += plan_quality_summary(quality);
  for (const auto& [reason, c] : dropped) s += fmt::format("  dropped {:<28} {}\n", reason, c);
  for (const auto& e : invalid_examples) s += "  skipped invalid line " + e + "\n";
  uint64_t peak = 0;
  for (auto c : length_histogram) peak = std::max(peak, c);
  s += "sequence length histogram:\n";
  for (size_t k = 0; k < length_histogram.size(); ++k) {
    if (!length_histogram[k]) continue;
    int bar = peak ? static_cast<int>(40.0 * length_histogram[k] / peak + 0.5) : 0;
    s += fmt::format("  [{:>6}, {:>6}) {:>8} {}\n", uint64_t{1} << k, uint64_t{2} << k, length_histogram[k],
                     std::string(std::max(bar, 1), '#'));
  }
  return s;
}

}  // namespace longalign::data
