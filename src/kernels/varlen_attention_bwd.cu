// CUDA entry points of the varlen attention backward: delta preprocess, dK/dV pass and dQ pass
// (varlen_attention_bwd.cuh), launched in that order on one stream. No torch header here.
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"

#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/kernels/varlen_attention_bwd.cuh"

namespace longalign::kernels {
namespace {

template <int D>
__global__ void __launch_bounds__(kBwdThreads) delta_kernel(VarlenAttentionBwdParams p) {
  varlen_attention_bwd_delta_block<D>(p, blockIdx.x);
}
template <int D>
__global__ void __launch_bounds__(kBwdThreads) dkdv_kernel(VarlenAttentionBwdParams p) {
  extern __shared__ __align__(16) char smem[];
  varlen_attention_bwd_dkdv_block<D>(p, smem, blockIdx.x, blockIdx.y);
}
template <int D>
__global__ void __launch_bounds__(kBwdThreads) dq_kernel(VarlenAttentionBwdParams p) {
  extern __shared__ __align__(16) char smem[];
  varlen_attention_bwd_dq_block<D>(p, smem, blockIdx.x, blockIdx.y);
}


template <int D>
void launch(const VarlenAttentionBwdParams& p, cudaStream_t s) {
  const auto& f = p.fwd;
  const int smem = bwd_smem_bytes<D>(), tiles = (f.max_seqlen + kBwdTile - 1) / kBwdTile;
  check_cuda(cudaFuncSetAttribute(dkdv_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "smem limit");
  check_cuda(cudaFuncSetAttribute(dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "smem limit");
  const int64_t rows = f.total * f.num_heads;
  delta_kernel<D><<<unsigned((rows + kBwdThreads - 1) / kBwdThreads), kBwdThreads, 0, s>>>(p);
  check_cuda(cudaGetLastError(), "delta launch");
  dkdv_kernel<D><<<dim3(tiles, f.batch * f.num_kv_heads), kBwdThreads, smem, s>>>(p);
  check_cuda(cudaGetLastError(), "dk/dv launch");
  dq_kernel<D><<<dim3(tiles, f.batch * f.num_heads), kBwdThreads, smem, s>>>(p);
  check_cuda(cudaGetLastError(), "dq launch");
}

}  // namespace

void varlen_attention_bwd_cuda(const VarlenAttentionBwdParams& p, void* stream) {
  if (p.fwd.num_kv_heads <= 0 || p.fwd.num_heads % p.fwd.num_kv_heads != 0)
    throw std::invalid_argument("varlen_attention_bwd: num_heads must be a multiple of num_kv_heads");
  auto s = static_cast<cudaStream_t>(stream);
  switch (p.fwd.head_dim) {
    case 64: return launch<64>(p, s);
    case 128: return launch<128>(p, s);
    default: throw std::invalid_argument("varlen_attention_bwd: head_dim must be 64 or 128, got " + std::to_string(p.fwd.head_dim));
  }
}

}  // namespace longalign::kernels
