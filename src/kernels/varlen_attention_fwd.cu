// CUDA entry points of the varlen attention forward: the __global__ wrappers around the shared
// kernel source (varlen_attention_fwd.cuh) and a launcher taking plain pointers and a stream.
// No torch header here; the torch-facing wrapper is src/ops/varlen_attention_cuda.cpp.
#include <stdexcept>
#include <string>

#include "launch_helpers.cuh"

#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/kernels/varlen_attention_fwd.cuh"

namespace longalign::kernels {
namespace {

template <int D, typename E>
__global__ void __launch_bounds__(kFwdThreads) varlen_attention_fwd_kernel(VarlenAttentionParams p) {
  extern __shared__ __align__(16) char smem[];
  // Grid: x = (sequence, head), y = query tile, the last tiles (most keys under the causal mask)
  // first, so the long blocks start early and short ones fill in behind them.
  const int b = blockIdx.x / p.num_heads, len = p.cu_seqlens[b + 1] - p.cu_seqlens[b];
  for_each_tile<varlen_attention_fwd_block<D, E>, kFwdRows>(p, smem, len, gridDim.y - 1 - blockIdx.y, gridDim.y,
                                                             blockIdx.x);
}


template <int D, typename E>
void launch(const VarlenAttentionParams& p, cudaStream_t stream) {
  const int smem = fwd_smem_bytes<D>();
  check_cuda(cudaFuncSetAttribute(varlen_attention_fwd_kernel<D, E>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
        "raising the shared-memory limit");
  // (sequence, head) pairs can exceed grid.y's 65535 (many short sequences x heads), so they
  // go in x; tiles in y are capped, and the tile loop covers any beyond the cap.
  const dim3 grid(p.batch * p.num_heads, tile_blocks(p.max_seqlen, kFwdRows));
  varlen_attention_fwd_kernel<D, E><<<grid, kFwdThreads, smem, stream>>>(p);
  check_cuda(cudaGetLastError(), "launch");
}

}  // namespace

void varlen_attention_fwd_cuda(const VarlenAttentionParams& p, void* stream) {
  if (p.num_kv_heads <= 0 || p.num_heads % p.num_kv_heads != 0)
    throw std::invalid_argument("varlen_attention_fwd: num_heads must be a multiple of num_kv_heads");
  auto s = static_cast<cudaStream_t>(stream);
  switch (p.head_dim) {
    case 64: return p.dtype == 1 ? launch<64, F16>(p, s) : launch<64, Bf16>(p, s);
    case 128: return p.dtype == 1 ? launch<128, F16>(p, s) : launch<128, Bf16>(p, s);
    default: throw std::invalid_argument("varlen_attention_fwd: head_dim must be 64 or 128, got " + std::to_string(p.head_dim));
  }
}

}  // namespace longalign::kernels
