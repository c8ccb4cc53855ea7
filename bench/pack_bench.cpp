// Packing benchmark (not a test): (1) plan quality of our best-fit-decreasing packing beside
// the LongAlign reference's next-fit on 10k conversations with a LongAlign-like length mix;
// (2) step planning on the mix (1,500 sequences, 55% long): per-sequence weight CV,
// rank balance and sorted-batching shape, for the reference, the previous planner and ours;
// (2b) useful-work efficiency at one and two packs a rank, before and after cost bands;
// (3) end-to-end `pack` throughput (JSONL -> tokens -> plan) on synthetic conversations.
// Usage: pack_bench [--records N] [--json out.json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "longalign/core/rng.hpp"
#include "longalign/data/pack/batch_plan.hpp"
#include "longalign/data/pack/pack_job.hpp"
#include "longalign/data/pack/plan_quality.hpp"
#include "longalign/data/instruct/synth.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"

using namespace longalign;
using namespace longalign::data;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Steps of consecutive groups with each step normalized by its own sequence count M, as the
// reference and this project's planner before 2026-11-26 did.
Plan per_step_plan(std::vector<std::vector<uint32_t>> groups, const std::vector<SeqInfo>& seqs, const PlanOptions& o) {
  Plan p{o, {}};
  for (size_t i = 0; i < groups.size(); i += o.units_per_step) {
    PlanStep st;
    double m = 0;
    for (size_t k = i; k < std::min(groups.size(), i + o.units_per_step); ++k) {
      PlanUnit u;
      uint32_t longest = 0;
      for (uint32_t s : groups[k]) u.tokens += seqs[s].length, longest = std::max(longest, seqs[s].length), m += 1;
      u.padded_tokens = o.strategy == Strategy::pack ? o.max_tokens : uint64_t(longest) * groups[k].size();
      u.seqs = groups[k];
      st.units.push_back(std::move(u));
    }
    for (auto& u : st.units)
      for (uint32_t s : u.seqs) u.weights.push_back(1.0 / (double(seqs[s].n_targets) * m));
    p.steps.push_back(std::move(st));
  }
  return p;
}

nlohmann::json step_quality(const char* name, const Plan& p, const std::vector<SeqInfo>& seqs) {
  PlanQuality q = plan_quality(p, seqs);
  uint64_t placed = 0, tokens = 0, units = 0;
  for (const auto& st : p.steps)
    for (const auto& u : st.units) placed += u.seqs.size(), tokens += u.tokens, units += 1;
  const double fill = double(tokens) / double(units * uint64_t(p.options.max_tokens));
  auto opt = [](const std::optional<double>& v) { return v ? *v : NAN; };
  std::printf("%-34s %6llu %8.3f%% %5llu %8.3f %8.3f %8.3f %8.3f %6llu..%llu\n", name, (unsigned long long)units,
              fill * 100, (unsigned long long)(seqs.size() - placed), q.weight_cv, opt(q.long_short_ratio),
              opt(q.rank_imbalance_mean), opt(q.rank_imbalance_max), (unsigned long long)q.min_seqs_per_step,
              (unsigned long long)q.max_seqs_per_step);
  nlohmann::json j = plan_quality_json(q);
  j["units"] = units;
  j["fill"] = fill;
  j["sequences_lost"] = seqs.size() - placed;
  return j;
}

nlohmann::json sort_quality(const char* name, const Plan& p, const std::vector<SeqInfo>& seqs) {
  PlanQuality q = plan_quality(p, seqs);
  auto opt = [](const std::optional<double>& v) { return v ? *v : NAN; };
  std::printf("%-34s %10.3f %14.3f %12.3f\n", name, opt(q.microbatch_ratio_median), opt(q.step_spread_ratio),
              opt(q.rank_imbalance_mean));
  return plan_quality_json(q);
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
  auto seqs = longalign_like_lengths(10000, 0.6, 7);
  std::printf("== plan quality: 10000 conversations, 64k packs ==\n");
  std::printf("%-22s %8s %11s %10s %12s %10s\n", "packer", "packs", "efficiency", "seqs lost", "tokens lost",
              "plan ms");
  auto t0 = Clock::now();
  auto nf = next_fit_reference(seqs, cap, 42);
  report["next_fit_reference"] = plan_quality("next-fit (reference)", nf, seqs, cap, seconds_since(t0));
  t0 = Clock::now();
  auto bfd = best_fit_decreasing(seqs, cap);
  report["best_fit_decreasing"] = plan_quality("best-fit decreasing", bfd, seqs, cap, seconds_since(t0));

  // (2) Step planning on the mix: 64k packs, 16 units a step, balance at W=8.
  std::printf("\n== step planning: 1500 sequences (55%% long), 64k packs, 16 units a step, W=8 (Llama-2-7B costs) ==\n");
  std::printf("%-34s %6s %9s %5s %8s %8s %8s %8s %s\n", "planner", "packs", "fill", "lost", "wt CV", "long/sh",
              "imb mean", "imb max", "seqs/step");
  nlohmann::json steps_report;
  for (uint64_t mix_seed : {1, 2, 3}) {
    auto mix = longalign_like_lengths(1500, 0.55, mix_seed);
    PlanOptions po;
    po.units_per_step = 16;
    po.seed = mix_seed;
    Rng rng(po.seed);
    auto ref = next_fit_reference(mix, cap, po.seed);
    auto before = best_fit_decreasing(mix, cap);
    rng.shuffle(before);
    std::string tag = "mix " + std::to_string(mix_seed) + ": ";
    nlohmann::json row;
    row["reference_next_fit"] = step_quality((tag + "reference next-fit").c_str(), per_step_plan(ref, mix, po), mix);
    row["before_bfd_per_step_m"] = step_quality((tag + "before: BFD, per-step M").c_str(), per_step_plan(before, mix, po), mix);
    t0 = Clock::now();
    Plan after = make_plan(mix, po);
    double ms = seconds_since(t0) * 1e3;
    row["after"] = step_quality((tag + "after: balanced, epoch M").c_str(), after, mix);
    row["after"]["plan_ms"] = ms;
    steps_report.push_back(row);
  }
  report["step_planning"] = steps_report;

  // (2b) Useful-work efficiency at one and two packs a rank, on mixes with 30%, 55% and 80% long
  // sequences: before issue 25 (best-fit packs, step order mixed: one pack from each cost stratum
  // a step), cost bands on best-fit packs, and now (spread packs, cost bands: the default), all
  // with explicit ranks where they help. Sequences a step: how alike the steps are.
  std::printf("\n== useful-work efficiency: 64k packs, Llama-2-7B costs; b = best fit + mixed (before), "
              "c = best fit + cost, a = spread + cost (now) ==\n");
  std::printf("%-10s %-11s %7s %7s %7s %8s %8s %8s %11s %11s %11s %8s\n", "mix", "units/ranks", "eff b", "eff a",
              "worst a", "fill b", "fill a", "fill 2nd", "seqs/st b", "seqs/st c", "seqs/st a", "plan ms");
  nlohmann::json eff_report;
  struct EffCase { int units, world; size_t seqs; };
  for (double long_fraction : {0.55, 0.3, 0.8})
    for (uint64_t mix_seed : {1, 2, 3})
      for (EffCase c : {EffCase{8, 8, 1500}, EffCase{16, 8, 1500}, EffCase{64, 64, 6000}}) {
        if (long_fraction != 0.55 && mix_seed != 1) continue;
        auto mix = longalign_like_lengths(c.seqs, long_fraction, mix_seed);
        PlanOptions po;
        po.units_per_step = c.units;
        po.seed = mix_seed;
        po.world_size = c.world;
        po.spread_short = false;
        po.step_order = StepOrder::mixed;
        Plan before = make_plan(mix, po);
        po.step_order = StepOrder::cost;
        Plan bands = make_plan(mix, po);
        po.spread_short = true;
        t0 = Clock::now();
        Plan after = make_plan(mix, po);
        const double ms = seconds_since(t0) * 1e3;
        PlanQuality qb = data::plan_quality(before, mix), qc = data::plan_quality(bands, mix),
                    qa = data::plan_quality(after, mix);
        uint64_t tokens = 0;
        for (const auto& s : mix) tokens += s.length;
        auto fill_of = [&](const Plan& p) {
          uint64_t packs = 0;
          for (const auto& st : p.steps) packs += st.units.size();
          return double(tokens) / double(packs * cap);
        };
        auto range = [](const PlanQuality& q) {
          return std::to_string(q.min_seqs_per_step) + ".." + std::to_string(q.max_seqs_per_step);
        };
        char mix_name[32], shape[32];
        std::snprintf(mix_name, sizeof mix_name, "%.0f%% #%llu", long_fraction * 100, (unsigned long long)mix_seed);
        std::snprintf(shape, sizeof shape, "%d/%d", c.units, c.world);
        std::printf("%-10s %-11s %7.3f %7.3f %7.3f %8.4f %8.4f %8.4f %11s %11s %11s %8.1f\n", mix_name, shape,
                    *qb.useful_work_efficiency, *qa.useful_work_efficiency, *qa.rank_imbalance_max, fill_of(before),
                    fill_of(after), fill_of(bands), range(qb).c_str(), range(qc).c_str(), range(qa).c_str(), ms);
        eff_report.push_back({{"long_fraction", long_fraction}, {"mix_seed", mix_seed}, {"units_per_step", c.units},
                              {"world_size", c.world}, {"sequences", c.seqs},
                              {"before", data::plan_quality_json(qb)}, {"bestfit_cost", data::plan_quality_json(qc)},
                              {"after", data::plan_quality_json(qa)}, {"fill_before", fill_of(before)},
                              {"fill", fill_of(after)}, {"explicit_ranks", plan_assigns_ranks(after)}, {"plan_ms", ms}});
      }
  report["useful_work_efficiency"] = eff_report;

  std::printf("\n== sorted batching: same mix (seed 4), batch 8, 12 micro-batches a step; imbalance at W=6, or the given W ==\n");
  std::printf("%-34s %10s %14s %12s\n", "planner", "mb ratio", "spread ratio", "imb mean");
  {
    auto mix = longalign_like_lengths(1500, 0.55, 4);
    PlanOptions so;
    so.strategy = Strategy::sort;
    so.batch_size = 8;
    so.units_per_step = 12;
    std::vector<uint32_t> order(mix.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return mix[a].length < mix[b].length; });
    std::vector<std::vector<uint32_t>> mbs;
    for (size_t i = 0; i < order.size(); i += 8)
      mbs.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + 8));
    Plan before = per_step_plan(mbs, mix, so);  // consecutive micro-batches per step (then shuffled)
    report["sort"]["before_consecutive"] = sort_quality("before: consecutive micro-batches", before, mix);
    report["sort"]["after"] = sort_quality("after: stratified micro-batches", make_plan(mix, so), mix);
    for (int w : {2, 3, 6}) {  // with the world size known: neighbouring micro-batches side by side
      so.world_size = w;
      std::string name = "after, --world-size " + std::to_string(w);
      report["sort"]["after_world_" + std::to_string(w)] = sort_quality(name.c_str(), make_plan(mix, so), mix);
    }
  }

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
