// CUDA entry points of the varlen attention forward: the __global__ wrappers around the shared
// kernel source (varlen_attention_fwd.cuh) and a launcher taking plain pointers and a stream.
// No torch header here; the torch-facing wrapper is src/ops/varlen_attention_cuda.cpp.
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"

#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/kernels/varlen_attention_fwd.cuh"

namespace longalign::kernels {
namespace {

template <int D, typename E>
__global__ void __launch_bounds__(kFwdThreads) varlen_attention_fwd_kernel(VarlenAttentionParams p) {
  extern __shared__ __align__(16) char smem[];
  const int b = blockIdx.y / p.num_heads, len = p.cu_seqlens[b + 1] - p.cu_seqlens[b];
  for_each_tile<varlen_attention_fwd_block<D, E>, kFwdRows>(p, smem, len, blockIdx.x, gridDim.x, blockIdx.y);
}


template <int D, typename E>
void launch(const VarlenAttentionParams& p, cudaStream_t stream) {
  const int smem = fwd_smem_bytes<D>();
  check_cuda(cudaFuncSetAttribute(varlen_attention_fwd_kernel<D, E>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
        "raising the shared-memory limit");
  const dim3 grid(p.max_seqlen > kFwdRows ? (p.max_seqlen + kFwdRows - 1) / kFwdRows : 1, p.batch * p.num_heads);
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
