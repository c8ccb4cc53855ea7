// Rank balancing of a step's units: a heavy/light interleave refined by local search (contiguous
// blocks), and an LPT assignment refined by moves and swaps (explicit ranks).
#include "longalign/data/pack/rank_balance.hpp"

#include <algorithm>
#include <numeric>

#include "longalign/core/rng.hpp"

namespace longalign::data {

std::vector<size_t> balanced_block_sizes(size_t units) {
  std::vector<size_t> ks;
  for (size_t k = 2; k < units; ++k)
    if (units % k == 0) ks.push_back(k);
  return ks;
}

double rank_imbalance(const std::vector<double>& costs, size_t k) {
  if (k == 0 || costs.empty()) return 1.0;
  double worst = 0, total = 0;
  size_t blocks = 0;
  for (size_t b = 0; b < costs.size(); b += k, ++blocks) {
    double s = 0;
    for (size_t i = b; i < std::min(costs.size(), b + k); ++i) s += costs[i];
    worst = std::max(worst, s);
    total += s;
  }
  return total > 0 ? worst * double(blocks) / total : 1.0;
}

namespace {

// Block sums of the current order for every block size, updated in O(blocks) per swap.
struct BlockSums {
  std::vector<size_t> ks;
  std::vector<std::vector<double>> sums;  // per block size
  double total = 0;

  BlockSums(const std::vector<double>& costs, const std::vector<size_t>& order, std::vector<size_t> sizes)
      : ks(std::move(sizes)) {
    for (size_t k : ks) {
      sums.emplace_back(order.size() / k, 0.0);
      for (size_t i = 0; i < order.size(); ++i) sums.back()[i / k] += costs[order[i]];
    }
    for (size_t i : order) total += costs[i];
  }
  // Position i's cost grows by d and position j's shrinks by d.
  void move(size_t i, size_t j, double d) {
    for (size_t q = 0; q < ks.size(); ++q) {
      sums[q][i / ks[q]] += d;
      sums[q][j / ks[q]] -= d;
    }
  }
  // The worst imbalance over all block sizes, plus their sum as a tie-break so that the search
  // keeps improving the sizes that are not the worst.
  double objective() const {
    double worst = 0, sum = 0;
    for (const auto& s : sums) {
      double r = total > 0 ? *std::max_element(s.begin(), s.end()) * double(s.size()) / total : 1.0;
      worst = std::max(worst, r);
      sum += r;
    }
    return worst + 1e-3 * sum;
  }
};

// First-improvement pairwise swaps from `order` until none helps (or a pass cap); returns the
// objective reached. O(n^2) swaps a pass, each O(blocks).
double improve_by_swaps(const std::vector<double>& costs, std::vector<size_t>& order, const std::vector<size_t>& ks) {
  const size_t n = order.size();
  BlockSums blocks(costs, order, ks);
  double best = blocks.objective();
  // Passes are capped by size: a 256-unit step would otherwise take seconds.
  const int passes = n <= 32 ? 50 : n <= 128 ? 3 : 0;
  for (int pass = 0; pass < passes; ++pass) {
    bool improved = false;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = i + 1; j < n; ++j) {
        const double d = costs[order[j]] - costs[order[i]];
        if (d == 0) continue;
        blocks.move(i, j, d);
        double o = blocks.objective();
        if (o < best - 1e-12) {
          best = o;
          improved = true;
          std::swap(order[i], order[j]);
        } else {
          blocks.move(i, j, -d);
        }
      }
    if (!improved) break;
  }
  return best;
}

}  // namespace

std::vector<size_t> balanced_order(const std::vector<double>& costs) {
  const size_t n = costs.size();
  std::vector<size_t> by_cost(n);
  std::iota(by_cost.begin(), by_cost.end(), 0);
  std::stable_sort(by_cost.begin(), by_cost.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  const auto ks = balanced_block_sizes(n);
  if (ks.empty()) return by_cost;
  // Heaviest, lightest, second heaviest, second lightest, ...: pairs start out balanced.
  std::vector<size_t> start;
  for (size_t lo = 0, hi = n; lo < hi;) {
    start.push_back(by_cost[lo++]);
    if (lo < hi) start.push_back(by_cost[--hi]);
  }
  // Swaps alone can stall on a plateau of the worst block; a few restarts from seeded random
  // orders reach the exact optimum on small steps (checked by brute force in the tests). Large
  // steps (sorted batching with many micro-batches) get one descent to bound the time.
  std::vector<size_t> best_order = start;
  double best = improve_by_swaps(costs, best_order, ks);
  Rng rng(n);
  const int restarts = n <= 32 ? 8 : 0;
  for (int r = 0; r < restarts; ++r) {
    std::vector<size_t> order = start;
    rng.shuffle(order);
    double o = improve_by_swaps(costs, order, ks);
    if (o < best - 1e-12) best = o, best_order = std::move(order);
  }
  return best_order;
}

std::vector<double> rank_loads(const std::vector<double>& costs, const std::vector<int>& rank, int world) {
  std::vector<double> load(size_t(std::max(world, 0)), 0.0);
  for (size_t u = 0; u < costs.size(); ++u) load.at(size_t(rank[u])) += costs[u];
  return load;
}

std::vector<int> balanced_assignment(const std::vector<double>& costs, int world) {
  const size_t n = costs.size(), w = size_t(std::max(world, 1));
  std::vector<size_t> by_cost(n);
  std::iota(by_cost.begin(), by_cost.end(), 0);
  std::stable_sort(by_cost.begin(), by_cost.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
  std::vector<int> rank(n, 0);
  std::vector<double> load(w, 0.0);
  for (size_t u : by_cost) {
    const size_t r = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    rank[u] = int(r);
    load[r] += costs[u];
  }
  // LPT is within 4/3 of the optimum; moving or swapping units off the busiest rank closes most
  // of the rest. Each accepted change lowers the busiest load or the number of ranks at it, so
  // the loop ends; the cap bounds the time on large steps.
  auto busiest = [&] { return size_t(std::max_element(load.begin(), load.end()) - load.begin()); };
  for (size_t iter = 0; iter < 4 * n + 16; ++iter) {
    const size_t b = busiest();
    const double top = load[b];
    size_t best_u = n, best_v = n, best_r = w;
    double best_top = top;  // the larger of the two changed loads, to beat
    for (size_t u = 0; u < n; ++u) {
      if (size_t(rank[u]) != b) continue;
      for (size_t r = 0; r < w; ++r) {
        if (r == b) continue;
        if (double t = std::max(load[b] - costs[u], load[r] + costs[u]); t < best_top - 1e-12 * top)
          best_top = t, best_u = u, best_v = n, best_r = r;
      }
      for (size_t v = 0; v < n; ++v) {
        const size_t r = size_t(rank[v]);
        if (r == b || costs[v] >= costs[u]) continue;
        const double d = costs[u] - costs[v];
        if (double t = std::max(load[b] - d, load[r] + d); t < best_top - 1e-12 * top)
          best_top = t, best_u = u, best_v = v, best_r = r;
      }
    }
    if (best_u == n) break;
    const double d = best_v == n ? costs[best_u] : costs[best_u] - costs[best_v];
    load[b] -= d, load[best_r] += d;
    rank[best_u] = int(best_r);
    if (best_v != n) rank[best_v] = int(b);
  }
  return rank;
}

}  // namespace longalign::data
