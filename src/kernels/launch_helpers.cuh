// What the kernel launchers share: error checking (every CUDA call and launch goes through it)
// and the grid geometry.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace longalign::kernels {

inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("varlen_attention: ") + what + ": " + cudaGetErrorString(e));
}

// Blocks per (sequence, head) along grid.y: one per tile of max_seqlen, at least 1 and at most
// 65535 (grid.y's limit); kernels loop over any tiles beyond (for_each_tile).
inline unsigned tile_blocks(int max_seqlen, int rows) {
  const long long n = (static_cast<long long>(max_seqlen) + rows - 1) / rows;
  return static_cast<unsigned>(n < 1 ? 1 : n > 65535 ? 65535 : n);
}

}  // namespace longalign::kernels
