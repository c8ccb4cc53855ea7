// Planner for the three batching strategies, global loss weights, and the plan file.
#include "longalign/data/batch_plan.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/rng.hpp"

using nlohmann::json;

namespace longalign::data {
namespace {

constexpr int kPlanVersion = 1;

PlanUnit make_unit(std::vector<uint32_t> idx, const std::vector<SeqInfo>& seqs, const PlanOptions& o) {
  PlanUnit u;
  uint64_t longest = 0;
  for (uint32_t i : idx) {
    u.tokens += seqs[i].length;
    longest = std::max<uint64_t>(longest, seqs[i].length);
  }
  u.padded_tokens = o.strategy == Strategy::pack ? uint64_t(o.max_tokens) : longest * idx.size();
  u.seqs = std::move(idx);
  return u;
}

void assign_weights(PlanStep& step, const std::vector<SeqInfo>& seqs, Weighting w) {
  uint64_t m = 0, t = 0;
  for (const auto& u : step.units)
    for (uint32_t i : u.seqs) m += 1, t += seqs[i].n_targets;
  for (auto& u : step.units) {
    u.weights.clear();
    for (uint32_t i : u.seqs)
      u.weights.push_back(w == Weighting::sequence ? 1.0 / (double(seqs[i].n_targets) * double(m)) : 1.0 / double(t));
  }
}

std::vector<std::vector<uint32_t>> chunk(const std::vector<uint32_t>& order, size_t size) {
  std::vector<std::vector<uint32_t>> out;
  for (size_t i = 0; i < order.size(); i += size)
    out.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + size));
  return out;
}

}  // namespace

Strategy parse_strategy(const std::string& s) {
  if (s == "naive") return Strategy::naive;
  if (s == "sort") return Strategy::sort;
  if (s == "pack") return Strategy::pack;
  throw UsageError("unknown strategy '" + s + "'; use pack, sort or naive");
}

Weighting parse_weighting(const std::string& s) {
  if (s == "sequence") return Weighting::sequence;
  if (s == "token") return Weighting::token;
  throw UsageError("unknown loss weighting '" + s + "'; use sequence or token");
}

const char* to_string(Strategy s) { return s == Strategy::naive ? "naive" : s == Strategy::sort ? "sort" : "pack"; }
const char* to_string(Weighting w) { return w == Weighting::sequence ? "sequence" : "token"; }

std::vector<std::vector<uint32_t>> best_fit_decreasing(const std::vector<SeqInfo>& seqs, int64_t max_tokens) {
  std::vector<uint32_t> order(seqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return seqs[a].length > seqs[b].length; });
  std::vector<std::vector<uint32_t>> packs;
  std::set<std::pair<int64_t, size_t>> open;  // (remaining capacity, pack index)
  for (uint32_t i : order) {
    int64_t len = seqs[i].length;
    auto it = open.lower_bound({len, 0});  // the tightest pack that still fits
    size_t p;
    int64_t remaining;
    if (it == open.end()) {
      p = packs.size();
      packs.emplace_back();
      remaining = max_tokens;
    } else {
      p = it->second;
      remaining = it->first;
      open.erase(it);
    }
    packs[p].push_back(i);
    if (remaining - len > 0) open.insert({remaining - len, p});
  }
  return packs;
}

std::vector<std::vector<uint32_t>> next_fit_reference(const std::vector<SeqInfo>& seqs, int64_t max_tokens,
                                                      uint64_t seed) {
  std::vector<uint32_t> order(seqs.size());
  std::iota(order.begin(), order.end(), 0);
  Rng(seed).shuffle(order);
  std::vector<std::vector<uint32_t>> packs;
  std::vector<uint32_t> cur;
  int64_t used = 0;
  for (uint32_t i : order) {
    int64_t len = seqs[i].length;
    if (len >= max_tokens) continue;  // the reference skips these
    if (used + len > max_tokens) {
      packs.push_back(std::move(cur));
      cur.clear();
      used = 0;
    }
    cur.push_back(i);
    used += len;
  }
  return packs;  // the partial last pack is discarded, as in the reference
}

Plan make_plan(const std::vector<SeqInfo>& seqs, const PlanOptions& o) {
  if (o.max_tokens <= 0) throw UsageError("--max-tokens must be positive, got " + std::to_string(o.max_tokens));
  if (o.batch_size <= 0) throw UsageError("--batch-size must be positive, got " + std::to_string(o.batch_size));
  if (o.units_per_step <= 0)
    throw UsageError("--units-per-step must be positive, got " + std::to_string(o.units_per_step));
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].length > o.max_tokens)
      throw RuntimeError("sequence " + std::to_string(i) + " has " + std::to_string(seqs[i].length) +
                         " tokens, more than max_tokens " + std::to_string(o.max_tokens) +
                         "; re-pack with a larger --max-tokens");
    if (seqs[i].n_targets == 0) throw RuntimeError("sequence " + std::to_string(i) + " has no target token");
  }
  Rng rng(o.seed);
  std::vector<std::vector<uint32_t>> groups;
  std::vector<uint32_t> order(seqs.size());
  std::iota(order.begin(), order.end(), 0);
  switch (o.strategy) {
    case Strategy::pack:
      groups = best_fit_decreasing(seqs, o.max_tokens);
      rng.shuffle(groups);
      break;
    case Strategy::naive:
      rng.shuffle(order);
      groups = chunk(order, o.batch_size);
      break;
    case Strategy::sort:
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return seqs[a].length < seqs[b].length; });
      groups = chunk(order, o.batch_size);
      break;
  }
  Plan plan{o, {}};
  for (size_t i = 0; i < groups.size(); i += o.units_per_step) {
    PlanStep step;
    for (size_t k = i; k < std::min(groups.size(), i + o.units_per_step); ++k)
      step.units.push_back(make_unit(std::move(groups[k]), seqs, o));
    assign_weights(step, seqs, o.weighting);
    plan.steps.push_back(std::move(step));
  }
  // Sorted batching keeps similar lengths within a step; shuffle the steps, not their contents.
  if (o.strategy == Strategy::sort) rng.shuffle(plan.steps);
  return plan;
}

std::vector<size_t> rank_units(const Plan& plan, size_t step, int world, int rank) {
  const int per_step = plan.options.units_per_step;
  if (world <= 0 || rank < 0 || rank >= world) throw UsageError("invalid rank " + std::to_string(rank) + " of " + std::to_string(world));
  if (per_step % world != 0)
    throw UsageError("world size " + std::to_string(world) + " does not divide the plan's " + std::to_string(per_step) +
                     " units per step; re-pack with --units-per-step a multiple of the world size");
  const size_t k = per_step / world, n = plan.steps.at(step).units.size();
  std::vector<size_t> out;
  for (size_t u = rank * k; u < std::min(n, (rank + 1) * k); ++u) out.push_back(u);
  return out;
}

void save_plan(const Plan& plan, const std::filesystem::path& path) {
  const auto& o = plan.options;
  json steps = json::array();
  for (const auto& s : plan.steps) {
    json units = json::array();
    for (const auto& u : s.units)
      units.push_back({{"seqs", u.seqs}, {"weights", u.weights}, {"tokens", u.tokens}, {"padded_tokens", u.padded_tokens}});
    steps.push_back({{"units", std::move(units)}});
  }
  json j = {{"format", "longalign-plan"},         {"version", kPlanVersion},
            {"strategy", to_string(o.strategy)},  {"weighting", to_string(o.weighting)},
            {"max_tokens", o.max_tokens},         {"batch_size", o.batch_size},
            {"units_per_step", o.units_per_step}, {"seed", o.seed},
            {"steps", std::move(steps)}};
  write_file_atomic(path, j.dump() + "\n");
}

Plan load_plan(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) throw RuntimeError("cannot read plan " + path.string());
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object() || j.value("format", "") != "longalign-plan")
    throw RuntimeError(path.string() + " is not a longalign plan; re-run `longalign pack`");
  if (j.value("version", -1) != kPlanVersion)
    throw RuntimeError(path.string() + " has plan version " + std::to_string(j.value("version", -1)) +
                       ", expected " + std::to_string(kPlanVersion) + "; re-run `longalign pack`");
  Plan p;
  try {
    auto& o = p.options;
    o.strategy = parse_strategy(j.at("strategy").get<std::string>());
    o.weighting = parse_weighting(j.at("weighting").get<std::string>());
    o.max_tokens = j.at("max_tokens").get<int64_t>();
    o.batch_size = j.at("batch_size").get<int>();
    o.units_per_step = j.at("units_per_step").get<int>();
    o.seed = j.at("seed").get<uint64_t>();
    for (const auto& s : j.at("steps")) {
      PlanStep step;
      for (const auto& u : s.at("units")) {
        PlanUnit unit;
        unit.seqs = u.at("seqs").get<std::vector<uint32_t>>();
        unit.weights = u.at("weights").get<std::vector<double>>();
        unit.tokens = u.at("tokens").get<uint64_t>();
        unit.padded_tokens = u.at("padded_tokens").get<uint64_t>();
        if (unit.seqs.size() != unit.weights.size()) throw RuntimeError("a unit's seqs and weights differ in length");
        step.units.push_back(std::move(unit));
      }
      p.steps.push_back(std::move(step));
    }
  } catch (const std::exception& e) {
    throw RuntimeError("plan " + path.string() + " is corrupt: " + e.what() + "; re-run `longalign pack`");
  }
  return p;
}

}  // namespace longalign::data
