// Error checking shared by the kernel launchers: every CUDA call and launch goes through it.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace longalign::kernels {

inline void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("varlen_attention: ") + what + ": " + cudaGetErrorString(e));
}

}  // namespace longalign::kernels
