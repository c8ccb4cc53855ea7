// The batch plan: which sequences train together, organised in optimizer steps (global
// batches), with the loss weight of every sequence. Steps hold `units`: a unit is one pack
// (strategy pack) or one padded micro-batch (naive, sort). By default rank r of a data-parallel
// world of size W (W dividing units_per_step) runs units [r*k, (r+1)*k) of each step,
// k = units_per_step/W, so the same plan serves any such W without re-packing; a final step may
// hold n < units_per_step units, and rank r then runs [floor(r*n/W), floor((r+1)*n/W)). A step
// planned for one world size may instead name each unit's rank (ranks then run different numbers
// of units); at another world size the blocks apply.
//
// Loss weights. LongAlign's promise is that every sequence counts equally however it was
// batched (paper Eq. 2-4). Normalizing by each step's own sequence count M breaks it across the
// epoch: packs are either a few long sequences or ~100 short ones, so M swings tenfold between
// steps, and so does the weight of a sequence in a sparse step against one in a crowded step. The weights therefore
// use the epoch's mean per step: with M̄ = sequences / steps and T̄ = targets / steps,
//   sequence:  every target token of sequence i weighs 1 / (N_i * M̄)
//   token:     every target token weighs 1 / T̄
//   pack_mean: the paper's plain packing loss (ablations): in a step of U units, every target
//              token of unit u weighs 1 / (T_u * U), T_u the unit's targets
// The step loss is the sum over its target tokens of weight * token loss, summed (not averaged)
// over ranks and micro-steps. For `sequence` it is (1/M̄) * sum of the step's per-sequence mean
// losses: over an epoch every sequence contributes exactly 1/M̄, and a step's weights sum to
// M/M̄ (1 on average). The trainer logs the step loss divided by that sum: the mean loss.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace longalign::data {

enum class Strategy { naive, sort, pack };
enum class Weighting { sequence, token, pack_mean };
// Which packs share a step (strategy pack, 2+ ranks): `cost` groups packs of similar cost (ranks
// finish together), `mixed` draws each step's packs from across the cost range (steps alike in
// composition, ranks wait at one pack a rank). With spread packs both train alike (bench/RESULTS.md).
enum class StepOrder { mixed, cost };
Strategy parse_strategy(const std::string& s);     // UsageError on unknown names
Weighting parse_weighting(const std::string& s);
StepOrder parse_step_order(const std::string& s);
const char* to_string(Strategy s);
const char* to_string(Weighting w);
const char* to_string(StepOrder o);

// Training cost of one sequence of s tokens, forward + backward, in FLOPs: 6*P*s for the weight
// matmuls plus 7*d*L*s^2 for causal attention. Used to balance ranks; defaults are Llama-2-7B's.
struct CostModel {
  double params = 6738415616.0;  // P
  double hidden = 4096;          // d
  double layers = 32;            // L
  double flops(double tokens) const { return 6 * params * tokens + 7 * hidden * layers * tokens * tokens; }
};

struct PlanOptions {
  Strategy strategy = Strategy::pack;
  Weighting weighting = Weighting::sequence;
  int64_t max_tokens = 65536;  // pack capacity; also the longest sequence allowed
  int batch_size = 1;          // sequences per unit for naive and sort
  int units_per_step = 8;      // packs or micro-batches per optimizer step
  uint64_t seed = 42;
  StepOrder step_order = StepOrder::cost;
  bool spread_short = true;    // pack: spread_fit packs (see make_plan); false: best-fit decreasing
                               // packs, as before (for benchmarks; plan.json holds the packs)
  int world_size = 0;          // the world size to report balance for (must divide units_per_step);
                               // 0: units_per_step / 2. `sort` lays steps out for it (see make_plan).
  CostModel cost;
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
  int rank = -1;                 // the rank that runs it at the plan's world_size; -1: by blocks
};

struct PlanStep {
  std::vector<PlanUnit> units;
};

struct Plan {
  PlanOptions options;
  std::vector<PlanStep> steps;
};

// UsageError naming the option when one is out of range; make_plan calls it, and `pack` before
// any tokenizing.
void check_plan_options(const PlanOptions& opts);

// Every sequence is placed exactly once.
//   pack:  spread_fit packs with the largest reserve (of 1, 0.8, ... 0.2) that needs at most
//          0.5% more packs than best-fit decreasing and keeps a fill of 0.99 where best fit
//          reaches it (else best-fit decreasing's packs): the short
//          sequences spread over the packs rather than filling packs of their own, so packs, and
//          the steps made of them, mix long and short data. With step_order mixed, steps are
//          drawn one pack from each of units_per_step cost strata, so every step spans the cost
//          range. A step lasts as long as its busiest rank, so with step_order cost and 2+ ranks
//          (world_size, or units_per_step / 2 when it is 0) steps are cost bands instead: packs
//          sorted by cost (padding included) cut into consecutive groups of units_per_step, the
//          groups' order shuffled. Either way each step is then ordered for rank balance, and
//          with world_size >= 2 given, assigned to ranks explicitly (`rank`) where ranks running
//          different numbers of packs finish closer together than blocks do.
//   sort:  the reference's sorted batching: micro-batches of neighbouring lengths, steps made
//          of micro-batches drawn one from each length stratum, ordered for rank balance; with
//          world_size W, each micro-step gives the W ranks W neighbouring micro-batches instead
//          (balanced for that W), and a step's units/W such groups come from across the range.
// pack and sort orders balance every world size that leaves each rank 2+ units; with one unit
// per rank there is nothing to order.
//   naive: shuffled micro-batches, steps in order.
// Leftover units (fewer than units_per_step) form a final step, drawn at random. Throws
// UsageError on bad options and RuntimeError when a sequence is longer than max_tokens
// (tokenization truncates before this point).
Plan make_plan(const std::vector<SeqInfo>& seqs, const PlanOptions& opts);

// Greedy next-fit in shuffled order, closing a pack when the next sequence does not fit and
// discarding the last partial pack, as the LongAlign reference does. Kept for the benchmark.
std::vector<std::vector<uint32_t>> next_fit_reference(const std::vector<SeqInfo>& seqs, int64_t max_tokens,
                                                      uint64_t seed);

// Best-fit decreasing bin packing; returns packs of sequence indices.
std::vector<std::vector<uint32_t>> best_fit_decreasing(const std::vector<SeqInfo>& seqs, int64_t max_tokens);

// Packs whose short sequences (at most max_tokens / 16 tokens) are spread over all packs rather
// than gathered in packs of their own: the long sequences are packed best-fit decreasing into
// max_tokens less a reserve of `share` x (short tokens / the packs the data needs at least),
// then each short sequence, longest first, goes to the pack with the most room. share 0 is
// best_fit_decreasing up to the order of short sequences within a pack's room.
std::vector<std::vector<uint32_t>> spread_fit(const std::vector<SeqInfo>& seqs, int64_t max_tokens, double share);

// The units of `step` that rank `rank` of `world` trains, as micro-steps in order (see above):
// the step's `rank` fields when it has them and `world` is the plan's world_size, else blocks.
// UsageError when `world` does not divide units_per_step.
std::vector<size_t> rank_units(const Plan& plan, size_t step, int world, int rank);

// Micro-steps that `step` takes at `world`: the most units any rank runs in it.
size_t step_micro_steps(const Plan& plan, size_t step, int world);

// True when some step names its units' ranks; they are followed only at the plan's world_size.
bool plan_assigns_ranks(const Plan& plan);

// The cost of a unit under the plan's cost model: its sequences' FLOPs (a padded micro-batch's
// padding included, since it is computed).
double unit_flops(const PlanUnit& unit, const std::vector<SeqInfo>& seqs, const PlanOptions& opts);

// The time a rank spends on a unit, in FLOPs: unit_flops plus a pack's padding tokens at 6P each
// (they run through every matmul but attend to nothing).
double unit_busy_flops(const PlanUnit& unit, const std::vector<SeqInfo>& seqs, const PlanOptions& opts);

void save_plan(const Plan& plan, const std::filesystem::path& path);  // atomic
Plan load_plan(const std::filesystem::path& path);                    // RuntimeError naming the file

// Checks a loaded plan against the dataset it was made for: at least one step, options in
// range, sequence ids in range, every sequence exactly once, unit token counts and capacities
// right, every weight equal to what the plan's weighting rule gives, and a step's ranks either
// all given (each below world_size) or none. RuntimeError naming
// `where` and the first step/unit that is wrong.
void validate_plan(const Plan& plan, const std::vector<SeqInfo>& seqs, const std::string& where);

}  // namespace longalign::data
