// CUDA entry points of the varlen attention backward: the __global__ wrappers around the shared
// kernel source (varlen_attention_bwd.cuh) and a launcher following the launch plan
// (varlen_attention_launch.hpp): delta preprocess, dK/dV pass (with atomic dQ by default), then
// the dQ conversion or, in deterministic mode, the dQ pass; all on one stream. No torch header.
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"

#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/kernels/varlen_attention_launch.hpp"

namespace longalign::kernels {
namespace {

// Minimum one block per SM: without it ptxas capped some D = 64 kernels at 168 registers (three
// blocks per SM) and spilled.
template <int D, typename E>
__global__ void __launch_bounds__(kBwdThreads, 1) delta_kernel(VarlenAttentionBwdParams p) {
  varlen_attention_bwd_delta_block<D, E>(p, blockIdx.x);
}
template <int D, typename E, int kPart, bool kAtomicDq>
__global__ void __launch_bounds__(kBwdThreads, 1) dkdv_kernel(VarlenAttentionBwdParams p) {
  extern __shared__ __align__(16) char smem[];
  varlen_attention_bwd_dkdv_entry<D, E, kPart, kAtomicDq>(p, smem, blockIdx.x, blockIdx.y, gridDim.y);
}
template <int D, typename E>
__global__ void __launch_bounds__(kBwdThreads, 1) dq_kernel(VarlenAttentionBwdParams p) {
  extern __shared__ __align__(16) char smem[];
  varlen_attention_bwd_dq_entry<D, E>(p, smem, blockIdx.x, blockIdx.y, gridDim.y);
}
template <typename E>
__global__ void __launch_bounds__(kBwdThreads) dq_convert_kernel(VarlenAttentionBwdParams p) {
  varlen_attention_bwd_dq_convert_block<E>(p, blockIdx.x);
}

template <int D, typename E>
struct CudaBwd {
  const VarlenAttentionBwdParams& p;
  cudaStream_t s;

  template <typename Kernel>
  void tile_pass(Kernel* kernel, Grid g, const char* what) {
    const int smem = bwd_smem_bytes<D>();
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), what);
    kernel<<<dim3(g.x, g.y), kBwdThreads, smem, s>>>(p);
    check_cuda(cudaGetLastError(), what);
  }
  void zero_dq_accum() {
    const size_t n = size_t(p.fwd.total) * p.fwd.num_heads * p.fwd.head_dim;
    check_cuda(cudaMemsetAsync(p.dq_accum, 0, n * sizeof(float), s), "zeroing dq_accum");
  }
  void delta(Grid g) {
    delta_kernel<D, E><<<dim3(g.x, g.y), kBwdThreads, 0, s>>>(p);
    check_cuda(cudaGetLastError(), "delta launch");
  }
  template <int kPart, bool kAtomicDq>
  void dkdv(Grid g) { tile_pass(dkdv_kernel<D, E, kPart, kAtomicDq>, g, "dk/dv launch"); }
  void dq(Grid g) { tile_pass(dq_kernel<D, E>, g, "dq launch"); }
  void dq_convert(Grid g) {
    dq_convert_kernel<E><<<dim3(g.x, g.y), kBwdThreads, 0, s>>>(p);
    check_cuda(cudaGetLastError(), "dq convert launch");
  }
};

template <int D, typename E>
void launch(const VarlenAttentionBwdParams& p, cudaStream_t s) {
  CudaBwd<D, E> ex{p, s};
  plan_bwd<D, E>(p, ex);
}

}  // namespace

void varlen_attention_bwd_cuda(const VarlenAttentionBwdParams& p, void* stream) {
  if (p.fwd.num_kv_heads <= 0 || p.fwd.num_heads % p.fwd.num_kv_heads != 0)
    throw std::invalid_argument("varlen_attention_bwd: num_heads must be a multiple of num_kv_heads");
  auto s = static_cast<cudaStream_t>(stream);
  switch (p.fwd.head_dim) {
    case 64: return p.fwd.dtype == 1 ? launch<64, F16>(p, s) : launch<64, Bf16>(p, s);
    case 128: return p.fwd.dtype == 1 ? launch<128, F16>(p, s) : launch<128, Bf16>(p, s);
    default: throw std::invalid_argument("varlen_attention_bwd: head_dim must be 64 or 128, got " + std::to_string(p.fwd.head_dim));
  }
}

}  // namespace longalign::kernels
