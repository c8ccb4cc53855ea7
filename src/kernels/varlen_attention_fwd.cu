// CUDA entry point of the varlen attention forward: the __global__ wrapper around the shared
// kernel source (varlen_attention_fwd.cuh) and a launcher taking plain pointers and a stream,
// following the launch plan (varlen_attention_launch.hpp). No torch header here; the
// torch-facing wrapper is src/ops/varlen_attention_cuda.cpp.
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"

#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/kernels/varlen_attention_launch.hpp"

namespace longalign::kernels {
namespace {

template <int D, typename E>
__global__ void __launch_bounds__(kFwdThreads) varlen_attention_fwd_kernel(VarlenAttentionParams p) {
  extern __shared__ __align__(16) char smem[];
  varlen_attention_fwd_entry<D, E>(p, smem, blockIdx.x, blockIdx.y, gridDim.y);
}

template <int D, typename E>
struct CudaFwd {
  const VarlenAttentionParams& p;
  cudaStream_t stream;
  void fwd(Grid g) {
    const int smem = fwd_smem_bytes<D>();
    check_cuda(cudaFuncSetAttribute(varlen_attention_fwd_kernel<D, E>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem),
               "raising the shared-memory limit");
    varlen_attention_fwd_kernel<D, E><<<dim3(g.x, g.y), kFwdThreads, smem, stream>>>(p);
    check_cuda(cudaGetLastError(), "launch");
  }
};

template <int D, typename E>
void launch(const VarlenAttentionParams& p, cudaStream_t stream) {
  CudaFwd<D, E> ex{p, stream};
  plan_fwd(p, ex);
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
