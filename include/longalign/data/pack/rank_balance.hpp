// Spreads the units of one optimizer step over data-parallel ranks so that they finish together.
// A unit's cost is not its token count (attention grows with the square of each sequence's
// length), so which units a rank gets matters. Two ways: an order in which rank r of W runs the
// contiguous block [r*k, (r+1)*k), k = units/W, balanced for every W that leaves a rank 2+
// units (the plan then serves any such W); or, for one known W, an explicit assignment in which
// ranks may run different numbers of units.
#pragma once
#include <cstddef>
#include <vector>

namespace longalign::data {

// Block sizes k >= 2 that divide `units`, excluding `units` itself (one rank: nothing to balance).
std::vector<size_t> balanced_block_sizes(size_t units);

// Slowest block over the mean block when `costs`, in order, are cut into blocks of k.
double rank_imbalance(const std::vector<double>& costs, size_t k);

// A permutation of the units (indices into `costs`) that minimises the worst imbalance over
// balanced_block_sizes(costs.size()): heavy and light units interleaved, then improved by
// pairwise swaps until none helps. Deterministic.
std::vector<size_t> balanced_order(const std::vector<double>& costs);

// Each unit's rank of `world`, ranks running any number of units (none included): the heaviest
// unit first to the least loaded rank (LPT), then single moves and pairwise swaps off the
// busiest rank while they lower it. Deterministic.
std::vector<int> balanced_assignment(const std::vector<double>& costs, int world);

// Each rank's summed cost under an assignment.
std::vector<double> rank_loads(const std::vector<double>& costs, const std::vector<int>& rank, int world);

}  // namespace longalign::data
