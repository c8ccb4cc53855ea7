// Runs kernel code written against device_api.hpp on the CPU: each block of the grid is one
// group of host threads, one per CUDA thread, sharing a per-block shared-memory buffer;
// sync_threads() is a block barrier and warp collectives exchange values among the 32 threads of
// a warp. Warps run one at a time between barriers, so a missing barrier fails deterministically. Slow and exact in structure: meant to test kernel sources on small problems in CI.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace longalign::kernels {

struct Dim2 {
  int x = 1, y = 1;
};

// ldmatrix calls and the extra shared-memory wavefronts their bank conflicts cost, summed over
// all launches since the last reset. A conflict-free tile layout keeps bank_conflicts at 0.
struct HarnessCounters {
  uint64_t ldmatrix = 0, bank_conflicts = 0;
};
HarnessCounters harness_counters();
void reset_harness_counters();

// Calls `body(shared_memory)` once per (block, thread); blocks run one after another.
void launch_on_cpu(Dim2 grid, int block_threads, size_t shared_bytes, const std::function<void(char* smem)>& body);

}  // namespace longalign::kernels
