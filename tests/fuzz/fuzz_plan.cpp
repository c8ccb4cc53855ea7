// libFuzzer target: the batch plan loader and checker, load_plan and validate_plan
// (src/data/pack/batch_plan.cpp). The input is the text of a plan.json; it is written to a
// per-process scratch file, loaded, and validated against a fixed table of 12 sequences (the
// seed corpus holds plans made for that table, so mutations start from plans that pass). A plan
// that passes is used as the trainer uses it: each unit's cost (unit_flops) and its layout over
// data-parallel worlds of 1 to 4 ranks (rank_units).
//
// A finding is any crash, sanitizer report or hang; an exception other than
// longalign::RuntimeError / UsageError; or a validated plan that breaks batch_plan.hpp's
// contract: a unit whose seqs and weights differ in length, a step with no units or more than
// units_per_step, a sequence placed twice or not at all, or ranks whose units do not split a
// step exactly (every unit once, in range).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "longalign/data/pack/batch_plan.hpp"

using namespace longalign;
using namespace longalign::data;

namespace {

// (length, targets) of the sequences the seed plans were made for.
const std::vector<SeqInfo> kSeqs = {{5, 2}, {3, 1}, {7, 7}, {2, 1}, {9, 4}, {4, 3},
                                    {6, 5}, {1, 1}, {8, 2}, {12, 6}, {10, 9}, {3, 3}};

void check_ranks(const Plan& plan, size_t s, int world) {
  const size_t n = plan.steps[s].units.size();
  std::vector<int> seen(n, 0);
  for (int r = 0; r < world; ++r) {
    std::vector<size_t> mine;
    try {
      mine = rank_units(plan, s, world, r);
    } catch (const UsageError&) {
      return;  // world does not divide units_per_step: refused, as documented
    }
    for (size_t u : mine) {
      LONGALIGN_FUZZ_CHECK(u < n);
      seen[u] += 1;
    }
  }
  for (int c : seen) LONGALIGN_FUZZ_CHECK(c == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto path = fuzz::scratch_dir() / "plan.json";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_project_errors([&] {
    const Plan plan = load_plan(path);
    validate_plan(plan, kSeqs, "fuzz/plan.json");
    std::vector<int> placed(kSeqs.size(), 0);
    for (size_t s = 0; s < plan.steps.size(); ++s) {
      const auto& step = plan.steps[s];
      LONGALIGN_FUZZ_CHECK(!step.units.empty());
      LONGALIGN_FUZZ_CHECK(plan.options.units_per_step > 0 && step.units.size() <= size_t(plan.options.units_per_step));
      for (const auto& u : step.units) {
        LONGALIGN_FUZZ_CHECK(u.seqs.size() == u.weights.size());
        for (uint32_t i : u.seqs) {
          LONGALIGN_FUZZ_CHECK(i < kSeqs.size());
          placed[i] += 1;
        }
        LONGALIGN_FUZZ_CHECK(unit_flops(u, kSeqs, plan.options) >= 0);
      }
      for (int world = 1; world <= 4; ++world) check_ranks(plan, s, world);
    }
    for (int c : placed) LONGALIGN_FUZZ_CHECK(c == 1);
  });
  return 0;
}
