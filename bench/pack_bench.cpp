// Packing benchmark (not a test): (1) plan quality of our best-fit-decreasing packing beside
// the LongAlign reference's next-fit on 10k conversations with a LongAlign-like length mix;
// (2) end-to-end `pack` throughput (JSONL -> tokens -> plan) on synthetic conversations.
// Usage: pack_bench [--records N] [--json out.json]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "longalign/core/rng.hpp"
#include "longalign/data/batch_plan.hpp"
#include "longalign/data/pack_job.hpp"
#include "longalign/data/synth.hpp"
#include "longalign/data/tokenizer.hpp"

using namespace longalign;
using namespace longalign::data;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// 60% long (log-uniform 8k..64k tokens, as LongAlign-10k), 40% ShareGPT-like short chats
// (log-normal around 700 tokens). Targets are ~10% of a long sequence, most of a short one.
std::vector<SeqInfo> longalign_like_lengths(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<SeqInfo> v;
  for (size_t i = 0; i < n; ++i) {
    uint32_t len;
    if (rng.uniform() < 0.6) {
      len = uint32_t(std::exp(std::log(8192.0) + rng.uniform() * (std::log(65536.0) - std::log(8192.0))));
    } else {
      double z = std::sqrt(-2 * std::log(1 - rng.uniform())) * std::cos(2 * M_PI * rng.uniform());
      len = uint32_t(std::clamp(std::exp(std::log(700.0) + z), 32.0, 8191.0));
    }
    len = std::min<uint32_t>(len, 65536);
    v.push_back({len, std::max<uint32_t>(1, len / 10)});
  }
  return v;
}

nlohmann::json plan_quality(const char* name, const std::vector<std::vector<uint32_t>>& packs,
                            const std::vector<SeqInfo>& seqs, int64_t cap, double secs) {
  uint64_t placed = 0, tokens = 0, total = 0;
  for (const auto& p : packs)
    for (auto i : p) placed += 1, tokens += seqs[i].length;
  for (const auto& s : seqs) total += s.length;
  double eff = packs.empty() ? 0 : double(tokens) / (double(packs.size()) * cap);
  std::printf("%-22s %8zu %10.3f%% %10llu %12llu %10.3f\n", name, packs.size(), eff * 100,
              (unsigned long long)(seqs.size() - placed), (unsigned long long)(total - tokens), secs * 1e3);
  return {{"packs", packs.size()}, {"efficiency", eff}, {"sequences_lost", seqs.size() - placed},
          {"tokens_lost", total - tokens}, {"plan_ms", secs * 1e3}};
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t records = 2000;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--records") && i + 1 < argc) records = std::stoull(argv[++i]);
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_out = argv[++i];
    else {
      std::fprintf(stderr, "usage: pack_bench [--records N] [--json out.json]\n");
      return 2;
    }
  }
  nlohmann::json report;
  const int64_t cap = 65536;
  auto seqs = longalign_like_lengths(10000, 7);
  std::printf("== plan quality: 10000 conversations, 64k packs ==\n");
  std::printf("%-22s %8s %11s %10s %12s %10s\n", "packer", "packs", "efficiency", "seqs lost", "tokens lost",
              "plan ms");
  auto t0 = Clock::now();
  auto nf = next_fit_reference(seqs, cap, 42);
  report["next_fit_reference"] = plan_quality("next-fit (reference)", nf, seqs, cap, seconds_since(t0));
  t0 = Clock::now();
  auto bfd = best_fit_decreasing(seqs, cap);
  report["best_fit_decreasing"] = plan_quality("best-fit decreasing", bfd, seqs, cap, seconds_since(t0));

  std::printf("\n== end-to-end pack: %llu synthetic conversations ==\n", (unsigned long long)records);
  fs::path dir = fs::temp_directory_path() / "longalign-pack-bench";
  fs::remove_all(dir);
  fs::create_directories(dir);
  SynthOptions so;
  so.num = records;
  so.long_fraction = 0.6;
  so.min_words = 1000;
  so.max_words = 8000;
  write_synth(so, dir / "data.jsonl");
  TokenizerTrainOptions to;
  to.vocab_size = 4000;
  to.max_sentences = 50000;
  train_sentencepiece({dir / "data.jsonl"}, dir / "tok.model", to);
  PackOptions po;
  po.tokenize.inputs = {dir / "data.jsonl"};
  po.tokenize.progress = false;
  po.tokenizer = dir / "tok.model";
  po.output = dir / "out";
  po.plan.max_tokens = 16384;
  t0 = Clock::now();
  PackStats st = run_pack(po);
  double secs = seconds_since(t0);
  double mb = double(fs::file_size(dir / "data.jsonl")) / 1e6;
  std::printf("records %llu  tokens %llu  time %.2f s  %.0f tokens/s  %.1f MB/s  packs %llu  efficiency %.3f%%\n",
              (unsigned long long)st.records, (unsigned long long)st.tokens, secs, st.tokens / secs, mb / secs,
              (unsigned long long)st.batches, st.efficiency() * 100);
  report["end_to_end"] = {{"records", st.records}, {"tokens", st.tokens},        {"seconds", secs},
                          {"tokens_per_s", st.tokens / secs}, {"mb_per_s", mb / secs}, {"efficiency", st.efficiency()},
                          {"max_tokens", po.plan.max_tokens}};
  fs::remove_all(dir);
  if (!json_out.empty()) std::ofstream(json_out) << report.dump(2) << "\n";
  return 0;
}
