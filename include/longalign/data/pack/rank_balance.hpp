// Orders the units of one optimizer step so that data-parallel ranks finish together. Rank r
// of W runs the contiguous block [r*k, (r+1)*k), k = units/W, and a unit's cost is not its token
// count (attention grows with the square of each sequence's length), so the order matters: it
// is chosen to make every block equally expensive for every W that leaves a rank 2+ units.
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

}  // namespace longalign::data
