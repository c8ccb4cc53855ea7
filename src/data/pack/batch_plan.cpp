// Planner for the three batching strategies, epoch-normalized loss weights, and the plan file.
#include "longalign/data/pack/batch_plan.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/option_check.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/pack/json_fields.hpp"
#include "longalign/data/pack/rank_balance.hpp"

using nlohmann::json;

namespace longalign::data {
namespace {

// 2: epoch-normalized weights, cost model, balanced steps; 3: units may name their rank. A v2
// plan is a valid v3 plan without ranks, so both are read.
constexpr int kPlanVersion = 3;
constexpr int kOldestPlanVersion = 2;

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

// See the header for the three rules; M̄ and T̄ are means over all steps of the plan.
void assign_weights(Plan& plan, const std::vector<SeqInfo>& seqs) {
  double m = 0, t = 0;
  for (const auto& step : plan.steps)
    for (const auto& u : step.units)
      for (uint32_t i : u.seqs) m += 1, t += seqs[i].n_targets;
  const double steps = double(plan.steps.size());
  const double mean_m = m / steps, mean_t = t / steps;
  for (auto& step : plan.steps)
    for (auto& u : step.units) {
      double unit_targets = 0;
      for (uint32_t i : u.seqs) unit_targets += seqs[i].n_targets;
      u.weights.clear();
      for (uint32_t i : u.seqs) switch (plan.options.weighting) {
          case Weighting::sequence: u.weights.push_back(1.0 / (double(seqs[i].n_targets) * mean_m)); break;
          case Weighting::token: u.weights.push_back(1.0 / mean_t); break;
          case Weighting::pack_mean: u.weights.push_back(1.0 / (unit_targets * double(step.units.size()))); break;
        }
    }
}

// Steps of `per_step` units, each drawn one from every cost stratum: units sorted by cost are cut
// into per_step strata, each shuffled, and step s takes the s-th unit of every stratum. So each
// step spans the whole cost range (long and short together, never a narrow band) and holds the
// heavy/light mix that balanced_order can split evenly over ranks. The leftover units, drawn at
// random, form a final smaller step. Each step is in stratum order.
std::vector<std::vector<size_t>> stratified_steps(const std::vector<double>& cost, size_t per_step, Rng& rng) {
  const size_t n = cost.size(), full = n / per_step;
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  rng.shuffle(idx);
  std::vector<size_t> rest(idx.begin(), idx.begin() + (n - full * per_step));
  std::vector<size_t> main(idx.begin() + rest.size(), idx.end());
  std::sort(main.begin(), main.end(), [&](size_t a, size_t b) { return cost[a] != cost[b] ? cost[a] < cost[b] : a < b; });
  std::vector<std::vector<size_t>> steps(full);
  for (size_t j = 0; j < per_step; ++j) {
    std::vector<size_t> stratum(main.begin() + j * full, main.begin() + (j + 1) * full);
    rng.shuffle(stratum);
    for (size_t s = 0; s < full; ++s) steps[s].push_back(stratum[s]);
  }
  rng.shuffle(steps);
  if (!rest.empty()) steps.push_back(std::move(rest));
  return steps;
}

std::vector<std::vector<uint32_t>> chunk(const std::vector<uint32_t>& order, size_t size) {
  std::vector<std::vector<uint32_t>> out;
  for (size_t i = 0; i < order.size(); i += size)
    out.emplace_back(order.begin() + i, order.begin() + std::min(order.size(), i + size));
  return out;
}

// Sorted batching for a known world size W, as the reference runs it: every micro-step gives
// the W ranks W neighbouring micro-batches (a group), so they finish together, and a step's
// k = units/W groups are drawn from across the length range (one from each of k strata). Rank r
// runs units [r*k, (r+1)*k): its j-th micro-batch is the r-th of group j. `cost` is in length order.
std::vector<std::vector<size_t>> reference_sorted_steps(const std::vector<double>& cost, size_t per_step, size_t world,
                                                        Rng& rng) {
  std::vector<std::vector<size_t>> groups;
  std::vector<double> group_cost;
  for (size_t i = 0; i < cost.size(); i += world) {
    groups.emplace_back();
    group_cost.push_back(0);
    for (size_t u = i; u < std::min(cost.size(), i + world); ++u) groups.back().push_back(u), group_cost.back() += cost[u];
  }
  std::vector<size_t> short_group;  // the longest micro-batches, when fewer than W remain
  if (!groups.empty() && groups.back().size() < world) {
    short_group = groups.back();
    groups.pop_back();
    group_cost.pop_back();
  }
  const size_t k = per_step / world;
  std::vector<std::vector<size_t>> steps, drawn = stratified_steps(group_cost, k, rng);
  std::vector<size_t> rest = short_group;
  for (const auto& gs : drawn) {
    if (gs.size() < k) {  // the leftover groups join the final, smaller step
      for (size_t g : gs) rest.insert(rest.end(), groups[g].begin(), groups[g].end());
      continue;
    }
    // Rank r takes member r of even groups and member W-1-r of odd ones, so no rank always gets
    // the longest micro-batch of every group.
    steps.emplace_back();
    for (size_t r = 0; r < world; ++r)
      for (size_t j = 0; j < gs.size(); ++j) steps.back().push_back(groups[gs[j]][j % 2 ? world - 1 - r : r]);
  }
  // At most k-1 groups plus a short one: fewer units than a step holds.
  if (!rest.empty()) steps.push_back(std::move(rest));
  return steps;
}

// Steps of `per_step` units of similar cost: units sorted by cost, heaviest first, cut into
// consecutive groups (which, for groups of a fixed size, minimises the sum of the groups'
// heaviest costs: the time ranks spend waiting), the groups' order shuffled. The remainder, the
// lightest units, forms a final smaller step.
std::vector<std::vector<size_t>> cost_banded_steps(const std::vector<double>& cost, size_t per_step, Rng& rng) {
  std::vector<size_t> by_cost(cost.size());
  std::iota(by_cost.begin(), by_cost.end(), 0);
  std::stable_sort(by_cost.begin(), by_cost.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  std::vector<std::vector<size_t>> steps;
  for (size_t i = 0; i + per_step <= by_cost.size(); i += per_step)
    steps.emplace_back(by_cost.begin() + i, by_cost.begin() + i + per_step);
  rng.shuffle(steps);
  if (by_cost.size() % per_step) steps.emplace_back(by_cost.end() - by_cost.size() % per_step, by_cost.end());
  return steps;
}

// How a step's units are laid out for `world` ranks: `order` lists them so that blocks give the
// ranks; `rank` is empty, or each listed unit's explicit rank.
struct Placement {
  std::vector<size_t> order;
  std::vector<int> rank;
};

double busiest_block(const std::vector<double>& cost, const std::vector<size_t>& order, size_t world) {
  double worst = 0;
  const size_t n = order.size();
  for (size_t r = 0; r < world; ++r) {
    double load = 0;
    for (size_t u = r * n / world; u < (r + 1) * n / world; ++u) load += cost[order[u]];
    worst = std::max(worst, load);
  }
  return worst;
}

// The balanced block order of the step's units (good for every world size); with `world` >= 2
// known, the explicit assignment instead when its busiest rank is lighter by more than rounding.
// An assignment that happens to give every rank its block's count is written as blocks.
Placement place_step(const std::vector<size_t>& units, const std::vector<double>& cost, int world) {
  std::vector<double> c;
  for (size_t u : units) c.push_back(cost[u]);
  Placement p;
  for (size_t k : balanced_order(c)) p.order.push_back(units[k]);
  if (world < 2) return p;
  const size_t n = units.size(), w = size_t(world);
  const std::vector<int> rank = balanced_assignment(c, world);
  const std::vector<double> loads = rank_loads(c, rank, world);
  const double assigned = *std::max_element(loads.begin(), loads.end());
  const double blocks = busiest_block(cost, p.order, w);
  if (!(assigned < blocks * (1 - 1e-9))) return p;
  std::vector<size_t> by_rank(n);
  std::iota(by_rank.begin(), by_rank.end(), 0);
  std::stable_sort(by_rank.begin(), by_rank.end(), [&](size_t a, size_t b) { return rank[a] < rank[b]; });
  p.order.clear();
  for (size_t k : by_rank) p.order.push_back(units[k]);
  bool as_blocks = true;
  for (size_t r = 0, at = 0; r < w; ++r) {
    const size_t count = size_t(std::count(rank.begin(), rank.end(), int(r)));
    as_blocks = as_blocks && at == r * n / w && at + count == (r + 1) * n / w;
    at += count;
  }
  if (!as_blocks)
    for (size_t k : by_rank) p.rank.push_back(rank[k]);
  return p;
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
  if (s == "pack_mean") return Weighting::pack_mean;
  throw UsageError("unknown loss weighting '" + s + "'; use sequence, token or pack_mean");
}

StepOrder parse_step_order(const std::string& s) {
  if (s == "mixed") return StepOrder::mixed;
  if (s == "cost") return StepOrder::cost;
  throw UsageError("unknown step order '" + s + "'; use mixed or cost");
}

const char* to_string(StepOrder o) { return o == StepOrder::mixed ? "mixed" : "cost"; }

const char* to_string(Strategy s) { return s == Strategy::naive ? "naive" : s == Strategy::sort ? "sort" : "pack"; }
const char* to_string(Weighting w) {
  return w == Weighting::sequence ? "sequence" : w == Weighting::token ? "token" : "pack_mean";
}

double unit_busy_flops(const PlanUnit& unit, const std::vector<SeqInfo>& seqs, const PlanOptions& o) {
  double f = unit_flops(unit, seqs, o);
  if (o.strategy == Strategy::pack) f += 6 * o.cost.params * double(unit.padded_tokens - unit.tokens);
  return f;
}

double unit_flops(const PlanUnit& unit, const std::vector<SeqInfo>& seqs, const PlanOptions& o) {
  double f = 0;
  if (o.strategy == Strategy::pack) {
    for (uint32_t i : unit.seqs) f += o.cost.flops(seqs[i].length);
  } else if (!unit.seqs.empty()) {  // every segment is padded to the longest: it all computes
    f = double(unit.seqs.size()) * o.cost.flops(double(unit.padded_tokens) / double(unit.seqs.size()));
  }
  return f;
}

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

std::vector<std::vector<uint32_t>> spread_fit(const std::vector<SeqInfo>& seqs, int64_t max_tokens, double share) {
  const int64_t short_max = max_tokens / 16;
  std::vector<uint32_t> order(seqs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return seqs[a].length > seqs[b].length; });
  int64_t total = 0, short_tokens = 0;
  for (const auto& s : seqs) {
    total += s.length;
    if (s.length <= short_max) short_tokens += s.length;
  }
  const int64_t min_packs = std::max<int64_t>(1, (total + max_tokens - 1) / max_tokens);
  const int64_t reserve = int64_t(share * double(short_tokens) / double(min_packs));
  std::vector<std::vector<uint32_t>> packs;
  std::vector<int64_t> room;
  std::set<std::pair<int64_t, size_t>> open;  // (room, pack): best fit for the long sequences
  auto new_pack = [&] {
    packs.emplace_back();
    room.push_back(max_tokens);
    return packs.size() - 1;
  };
  size_t k = 0;
  for (; k < order.size() && seqs[order[k]].length > short_max; ++k) {
    const int64_t len = seqs[order[k]].length;
    auto it = open.lower_bound({len + reserve, 0});  // the tightest pack that keeps its reserve
    size_t p;
    if (it == open.end()) {
      p = new_pack();
    } else {
      p = it->second;
      open.erase(it);
    }
    packs[p].push_back(order[k]);
    room[p] -= len;
    open.insert({room[p], p});
  }
  // The short ones: the roomiest pack each (worst fit), so they spread evenly.
  std::set<std::pair<int64_t, size_t>, std::greater<>> roomiest;
  for (size_t p = 0; p < packs.size(); ++p) roomiest.insert({room[p], p});
  for (; k < order.size(); ++k) {
    const int64_t len = seqs[order[k]].length;
    size_t p;
    if (roomiest.empty() || roomiest.begin()->first < len) {
      p = new_pack();
    } else {
      p = roomiest.begin()->second;
      roomiest.erase(roomiest.begin());
    }
    packs[p].push_back(order[k]);
    room[p] -= len;
    roomiest.insert({room[p], p});
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

void check_plan_options(const PlanOptions& o) {
  if (o.max_tokens <= 0) throw UsageError("--max-tokens must be positive, got " + std::to_string(o.max_tokens));
  if (o.batch_size <= 0) throw UsageError("--batch-size must be positive, got " + std::to_string(o.batch_size));
  if (o.units_per_step <= 0)
    throw UsageError("--units-per-step must be positive, got " + std::to_string(o.units_per_step));
  if (o.world_size < 0) throw UsageError("--world-size must be positive, got " + std::to_string(o.world_size));
  if (o.world_size > 0 && o.units_per_step % o.world_size != 0)
    throw UsageError("--units-per-step " + std::to_string(o.units_per_step) + " is not a multiple of --world-size " +
                     std::to_string(o.world_size) + ": every rank must run the same number of units; use a multiple of " +
                     std::to_string(o.world_size));
  if (!(o.cost.params > 0 && o.cost.hidden > 0 && o.cost.layers > 0))
    throw UsageError("the plan's cost model needs positive parameters, hidden size and layers");
}

Plan make_plan(const std::vector<SeqInfo>& seqs, const PlanOptions& o) {
  check_plan_options(o);
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
    {
      groups = best_fit_decreasing(seqs, o.max_tokens);
      // Spread packs where they cost little fill: at most 0.5% more packs than best fit, and a
      // fill of 0.99 kept wherever best fit reaches it.
      double tokens = 0;
      for (const auto& s : seqs) tokens += double(s.length);
      auto fill = [&](size_t packs) { return tokens / (double(packs) * double(o.max_tokens)); };
      const double min_fill = std::min(0.99, fill(groups.size()));
      for (double share : {1.0, 0.8, 0.6, 0.4, 0.2}) {
        if (!o.spread_short) break;
        auto spread = spread_fit(seqs, o.max_tokens, share);
        if (double(spread.size()) <= 1.005 * double(groups.size()) && fill(spread.size()) >= min_fill) {
          groups = std::move(spread);
          break;
        }
      }
      break;
    }
    case Strategy::naive:
      rng.shuffle(order);
      groups = chunk(order, o.batch_size);
      break;
    case Strategy::sort:  // neighbouring lengths share a micro-batch; the longest may be short of B
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return seqs[a].length < seqs[b].length; });
      groups = chunk(order, o.batch_size);
      break;
  }
  std::vector<PlanUnit> units;
  std::vector<double> cost, busy;
  for (auto& g : groups) {
    units.push_back(make_unit(std::move(g), seqs, o));
    cost.push_back(unit_flops(units.back(), seqs, o));
    busy.push_back(unit_busy_flops(units.back(), seqs, o));
  }
  std::vector<std::vector<size_t>> steps;
  std::vector<std::vector<int>> ranks;  // per step: empty, or each unit's rank
  const size_t per_step = size_t(o.units_per_step);
  const int ranks_planned = o.world_size > 0 ? o.world_size : o.units_per_step / 2;
  if (o.strategy == Strategy::naive) {
    for (size_t i = 0; i < units.size(); i += per_step) {
      steps.emplace_back();
      for (size_t k = i; k < std::min(units.size(), i + per_step); ++k) steps.back().push_back(k);
    }
  } else if (o.strategy == Strategy::sort && o.world_size > 1) {
    steps = reference_sorted_steps(cost, per_step, size_t(o.world_size), rng);
  } else {
    const bool bands = o.strategy == Strategy::pack && o.step_order == StepOrder::cost && ranks_planned >= 2;
    for (const auto& st : bands ? cost_banded_steps(busy, per_step, rng) : stratified_steps(cost, per_step, rng)) {
      Placement p = place_step(st, busy, o.strategy == Strategy::pack ? o.world_size : 0);
      steps.push_back(std::move(p.order));
      ranks.push_back(std::move(p.rank));
    }
  }
  Plan plan{o, {}};
  for (size_t s = 0; s < steps.size(); ++s) {
    PlanStep step;
    for (size_t k = 0; k < steps[s].size(); ++k) {
      step.units.push_back(std::move(units[steps[s][k]]));
      if (s < ranks.size() && !ranks[s].empty()) step.units.back().rank = ranks[s][k];
    }
    plan.steps.push_back(std::move(step));
  }
  assign_weights(plan, seqs);
  return plan;
}

std::vector<size_t> rank_units(const Plan& plan, size_t step, int world, int rank) {
  const int per_step = plan.options.units_per_step;
  if (world <= 0 || rank < 0 || rank >= world) throw UsageError("invalid rank " + std::to_string(rank) + " of " + std::to_string(world));
  if (per_step % world != 0)
    throw UsageError("world size " + std::to_string(world) + " does not divide the plan's " + std::to_string(per_step) +
                     " units per step; re-pack with --units-per-step a multiple of the world size");
  const auto& units = plan.steps.at(step).units;
  std::vector<size_t> out;
  if (!units.empty() && units[0].rank >= 0 && world == plan.options.world_size) {
    for (size_t u = 0; u < units.size(); ++u)
      if (units[u].rank == rank) out.push_back(u);
    return out;
  }
  // n == per_step gives [rank*k, (rank+1)*k); a short final step is spread as evenly.
  const size_t n = units.size(), w = size_t(world), r = size_t(rank);
  for (size_t u = r * n / w; u < (r + 1) * n / w; ++u) out.push_back(u);
  return out;
}

size_t step_micro_steps(const Plan& plan, size_t step, int world) {
  size_t most = 0;
  for (int r = 0; r < world; ++r) most = std::max(most, rank_units(plan, step, world, r).size());
  return most;
}

bool plan_assigns_ranks(const Plan& plan) {
  for (const auto& s : plan.steps)
    if (!s.units.empty() && s.units[0].rank >= 0) return true;
  return false;
}

void save_plan(const Plan& plan, const std::filesystem::path& path) {
  const auto& o = plan.options;
  json steps = json::array();
  for (const auto& s : plan.steps) {
    json units = json::array();
    for (const auto& u : s.units) {
      units.push_back({{"seqs", u.seqs}, {"weights", u.weights}, {"tokens", u.tokens}, {"padded_tokens", u.padded_tokens}});
      if (u.rank >= 0) units.back()["rank"] = u.rank;
    }
    steps.push_back({{"units", std::move(units)}});
  }
  json j = {{"format", "longalign-plan"},         {"version", kPlanVersion},
            {"strategy", to_string(o.strategy)},  {"weighting", to_string(o.weighting)},
            {"max_tokens", o.max_tokens},         {"batch_size", o.batch_size},
            {"units_per_step", o.units_per_step}, {"seed", o.seed}, {"world_size", o.world_size},
            {"step_order", to_string(o.step_order)},
            {"cost_model", {{"params", o.cost.params}, {"hidden", o.cost.hidden}, {"layers", o.cost.layers}}},
            {"steps", std::move(steps)}};
  write_file_atomic(path, j.dump() + "\n");
}

Plan load_plan(const std::filesystem::path& path) {
  auto text = read_file(path);
  if (!text) throw RuntimeError("cannot read plan " + path.string() + " (missing, not a regular file, or larger than 1 GiB)");
  check_json_depth(*text, path.string());
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("format") || j["format"] != "longalign-plan")
    throw RuntimeError(path.string() + " is not a longalign plan; re-run `longalign pack`");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int64_t>() < kOldestPlanVersion ||
      j["version"].get<int64_t>() > kPlanVersion)
    throw RuntimeError(path.string() + " has plan version " + (j.contains("version") ? j["version"].dump() : "none") +
                       ", expected " + std::to_string(kOldestPlanVersion) + " to " + std::to_string(kPlanVersion) +
                       "; re-run `longalign pack`");
  Plan p;
  try {
    auto& o = p.options;
    o.strategy = parse_strategy(j.at("strategy").get<std::string>());
    o.weighting = parse_weighting(j.at("weighting").get<std::string>());
    o.max_tokens = json_integer_at<int64_t>(j, "max_tokens");
    o.batch_size = json_integer_at<int>(j, "batch_size");
    o.units_per_step = json_integer_at<int>(j, "units_per_step");
    o.seed = json_integer_at<uint64_t>(j, "seed");
    o.world_size = json_integer_at<int>(j, "world_size");
    // Plans before step orders were stratified (mixed).
    o.step_order = j.contains("step_order") ? parse_step_order(j.at("step_order").get<std::string>()) : StepOrder::mixed;
    const auto& cm = j.at("cost_model");
    o.cost = {cm.at("params").get<double>(), cm.at("hidden").get<double>(), cm.at("layers").get<double>()};
    for (const auto& s : j.at("steps")) {
      PlanStep step;
      for (const auto& u : s.at("units")) {
        PlanUnit unit;
        for (const auto& id : u.at("seqs")) unit.seqs.push_back(json_integer<uint32_t>(id, "a sequence id"));
        unit.weights = u.at("weights").get<std::vector<double>>();
        unit.tokens = json_integer_at<uint64_t>(u, "tokens");
        unit.padded_tokens = json_integer_at<uint64_t>(u, "padded_tokens");
        if (u.contains("rank")) unit.rank = json_integer_at<int>(u, "rank");
        if (unit.seqs.size() != unit.weights.size()) throw RuntimeError("a unit's seqs and weights differ in length");
        step.units.push_back(std::move(unit));
      }
      if (step.units.empty() || o.units_per_step <= 0 || step.units.size() > size_t(o.units_per_step))
        throw RuntimeError("step " + std::to_string(p.steps.size()) + " has " + std::to_string(step.units.size()) +
                           " units, not 1 to units_per_step (" + std::to_string(o.units_per_step) + ")");
      p.steps.push_back(std::move(step));
    }
  } catch (const std::exception& e) {
    throw RuntimeError("plan " + path.string() + " is corrupt: " + e.what() + "; re-run `longalign pack`");
  }
  return p;
}

void validate_plan(const Plan& plan, const std::vector<SeqInfo>& seqs, const std::string& where) {
  auto corrupt = [&](const std::string& why) {
    return RuntimeError("plan " + where + " is corrupt: " + why + "; re-run `longalign pack`");
  };
  const PlanOptions& o = plan.options;
  try {
    check_plan_options(o);
  } catch (const UsageError& e) {
    throw corrupt(e.what());
  }
  if (plan.steps.empty()) throw corrupt("it has no steps");
  std::vector<uint8_t> seen(seqs.size(), 0);
  for (size_t s = 0; s < plan.steps.size(); ++s)
    for (size_t u = 0; u < plan.steps[s].units.size(); ++u) {
      const PlanUnit& unit = plan.steps[s].units[u];
      const std::string at = "step " + std::to_string(s) + " unit " + std::to_string(u);
      if (unit.seqs.empty()) throw corrupt(at + " is empty");
      if (o.strategy != Strategy::pack && unit.seqs.size() > size_t(o.batch_size))
        throw corrupt(at + " holds " + std::to_string(unit.seqs.size()) + " sequences, over batch_size " +
                      std::to_string(o.batch_size));
      uint64_t tokens = 0, longest = 0;
      for (uint32_t i : unit.seqs) {
        if (i >= seqs.size())
          throw corrupt(at + " names sequence " + std::to_string(i) + " but the dataset has " +
                        std::to_string(seqs.size()));
        if (seen[i]++) throw corrupt("sequence " + std::to_string(i) + " appears twice (again in " + at + ")");
        if (seqs[i].n_targets == 0) throw corrupt(at + " holds sequence " + std::to_string(i) + ", which has no target");
        tokens += seqs[i].length;
        longest = std::max<uint64_t>(longest, seqs[i].length);
      }
      if ((unit.rank >= 0) != (plan.steps[s].units[0].rank >= 0))
        throw corrupt(at + (unit.rank >= 0 ? " names its rank" : " names no rank") + " but unit 0 of its step " +
                      (unit.rank >= 0 ? "does not" : "does"));
      if (unit.rank >= 0 && unit.rank >= o.world_size)
        throw corrupt(at + " is given to rank " + std::to_string(unit.rank) + " of a plan for world size " +
                      std::to_string(o.world_size));
      if (unit.rank < -1) throw corrupt(at + " has rank " + std::to_string(unit.rank));
      const uint64_t padded = o.strategy == Strategy::pack ? uint64_t(o.max_tokens) : longest * unit.seqs.size();
      if (unit.tokens != tokens || unit.padded_tokens != padded)
        throw corrupt(at + " records " + std::to_string(unit.tokens) + " tokens (" + std::to_string(unit.padded_tokens) +
                      " padded) but its sequences make " + std::to_string(tokens) + " (" + std::to_string(padded) + ")");
      if (longest > uint64_t(o.max_tokens) || (o.strategy == Strategy::pack && tokens > uint64_t(o.max_tokens)))
        throw corrupt(at + " holds " + std::to_string(o.strategy == Strategy::pack ? tokens : longest) +
                      " tokens, over max_tokens " + std::to_string(o.max_tokens));
    }
  for (size_t i = 0; i < seqs.size(); ++i)
    if (!seen[i]) throw corrupt("sequence " + std::to_string(i) + " of the dataset is in no step");
  Plan expect = plan;
  assign_weights(expect, seqs);
  for (size_t s = 0; s < plan.steps.size(); ++s)
    for (size_t u = 0; u < plan.steps[s].units.size(); ++u)
      for (size_t k = 0; k < plan.steps[s].units[u].weights.size(); ++k) {
        const double w = plan.steps[s].units[u].weights[k], e = expect.steps[s].units[u].weights[k];
        if (!std::isfinite(w) || !(std::abs(w - e) <= 1e-9 * e))
          throw corrupt("step " + std::to_string(s) + " unit " + std::to_string(u) + " gives sequence " +
                        std::to_string(plan.steps[s].units[u].seqs[k]) + " weight " + format_number(w) + ", but " +
                        to_string(o.weighting) + " weighting gives " + format_number(e));
      }
}

}  // namespace longalign::data
