// The batch plan: which sequences train together, organised in optimizer steps (global
// batches), with the loss weight of every sequence. Steps hold `units`: a unit is one pack
// (strategy pack) or one padded micro-batch (naive, sort). A data-parallel world size W that
// divides a step's unit count gives each rank units/W micro-steps, so the same plan serves
// any such W without re-packing. A final step may hold fewer units; ranks left without a unit
// in it contribute zero gradient, which the global weights already account for.
//
// Loss weights (paper Eq. 2-4, made exact at any scale). For a step with sequences i = 1..M,
// N_i target tokens each and T = sum_i N_i:
//   sequence: every target token of sequence i has weight 1 / (N_i * M)
//   token:    every target token has weight 1 / T
// The step loss is sum over its target tokens of weight * token_loss, summed (not averaged)
// over ranks and micro-steps; in both modes the weights of a step sum to exactly 1.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace longalign::data {

enum class Strategy { naive, sort, pack };
enum class Weighting { sequence, token };
Strategy parse_strategy(const std::string& s);     // UsageError on unknown names
Weighting parse_weighting(const std::string& s);
const char* to_string(Strategy s);
const char* to_string(Weighting w);

struct PlanOptions {
  Strategy strategy = Strategy::pack;
  Weighting weighting = Weighting::sequence;
  int64_t max_tokens = 65536;  // pack capacity; also the longest sequence allowed
  int batch_size = 1;          // sequences per unit for naive and sort
  int units_per_step = 8;      // packs or micro-batches per optimizer step
  uint64_t seed = 42;
};

// What the planner needs of each sequence.
struct SeqInfo {
  uint32_t length;
  uint32_t n_targets;
};

struct PlanUnit {
  std::vector<uint32_t> seqs;    // dataset indices, in layout order
  std::vector<double> weights;   // per-token loss weight of each sequence's targets
  uint64_t tokens = 0;           // real tokens
  uint64_t padded_tokens = 0;    // tokens the unit occupies: the pack capacity, or B * longest
};

struct PlanStep {
  std::vector<PlanUnit> units;
};

struct Plan {
  PlanOptions options;
  std::vector<PlanStep> steps;
};

// Every sequence is placed exactly once. Throws UsageError on bad options and RuntimeError when
// a sequence is longer than max_tokens (tokenization truncates before this point).
Plan make_plan(const std::vector<SeqInfo>& seqs, const PlanOptions& opts);

// Greedy next-fit in shuffled order, closing a pack when the next sequence does not fit and
// discarding the last partial pack, as the LongAlign reference does. Kept for the benchmark.
std::vector<std::vector<uint32_t>> next_fit_reference(const std::vector<SeqInfo>& seqs, int64_t max_tokens,
                                                      uint64_t seed);

// Best-fit decreasing bin packing; returns packs of sequence indices.
std::vector<std::vector<uint32_t>> best_fit_decreasing(const std::vector<SeqInfo>& seqs, int64_t max_tokens);

// The units of `step` that rank `rank` of `world` trains, as micro-steps in order: the
// contiguous block [rank*k, (rank+1)*k) with k = units_per_step / world, clipped to the step.
// UsageError when `world` does not divide units_per_step.
std::vector<size_t> rank_units(const Plan& plan, size_t step, int world, int rank);

void save_plan(const Plan& plan, const std::filesystem::path& path);  // atomic
Plan load_plan(const std::filesystem::path& path);                    // RuntimeError naming the file

}  // namespace longalign::data
