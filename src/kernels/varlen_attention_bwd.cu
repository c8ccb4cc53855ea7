// CUDA entry points of the varlen attention backward: delta preprocess, dK/dV pass and dQ pass
// (varlen_attention_bwd.cuh), launched in that order on one stream. No torch header here.
#include <stdexcept>
#include <string>

#include "launch_helpers.cuh"

#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/kernels/varlen_attention_bwd.cuh"

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
  // Grid as in the forward; here the first key tiles carry the most queries, so tile = y.
  const int b = blockIdx.x / p.fwd.num_kv_heads, len = p.fwd.cu_seqlens[b + 1] - p.fwd.cu_seqlens[b];
  for_each_tile<varlen_attention_bwd_dkdv_block<D, E, kPart, kAtomicDq>, kBwdTile>(p, smem, len, blockIdx.y, gridDim.y,
                                                                                  blockIdx.x);
}
template <int D, typename E>
__global__ void __launch_bounds__(kBwdThreads, 1) dq_kernel(VarlenAttentionBwdParams p) {
  extern __shared__ __align__(16) char smem[];
  const int b = blockIdx.x / p.fwd.num_heads, len = p.fwd.cu_seqlens[b + 1] - p.fwd.cu_seqlens[b];
  for_each_tile<varlen_attention_bwd_dq_block<D, E>, kBwdTile>(p, smem, len, gridDim.y - 1 - blockIdx.y, gridDim.y,
                                                              blockIdx.x);
}
template <typename E>
__global__ void __launch_bounds__(kBwdThreads) dq_convert_kernel(VarlenAttentionBwdParams p) {
  varlen_attention_bwd_dq_convert_block<E>(p, blockIdx.x);
}

template <typename Kernel>
void launch_with_smem(Kernel* kernel, dim3 grid, int smem, cudaStream_t s, const VarlenAttentionBwdParams& p,
                      const char* what) {
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), what);
  kernel<<<grid, kBwdThreads, smem, s>>>(p);
  check_cuda(cudaGetLastError(), what);
}

unsigned blocks_for(int64_t n) { return unsigned((n + kBwdThreads - 1) / kBwdThreads); }

// Deterministic: delta, dK/dV (no atomics), then the dQ pass. Otherwise dQ is accumulated in
// fp32 with atomics by the dK/dV blocks (no second recomputation of S and dP) and converted.
template <int D, typename E>
void launch(const VarlenAttentionBwdParams& p, cudaStream_t s) {
  const auto& f = p.fwd;
  const int smem = bwd_smem_bytes<D>(), tiles = tile_blocks(f.max_seqlen, kBwdTile);
  const bool atomic_dq = p.dq_accum != nullptr;
  const int64_t q_elems = f.total * f.num_heads * f.head_dim;
  if (atomic_dq) check_cuda(cudaMemsetAsync(p.dq_accum, 0, size_t(q_elems) * sizeof(float), s), "zeroing dq_accum");
  delta_kernel<D, E><<<blocks_for(f.total * f.num_heads), kBwdThreads, 0, s>>>(p);
  check_cuda(cudaGetLastError(), "delta launch");
  const dim3 grid(f.batch * f.num_kv_heads, tiles);
  if constexpr (dkdv_split<D, E>()) {
    launch_with_smem(dkdv_kernel<D, E, kDvOnly, false>, grid, smem, s, p, "dv launch");
    if (atomic_dq) launch_with_smem(dkdv_kernel<D, E, kDkOnly, true>, grid, smem, s, p, "dk+dq launch");
    else launch_with_smem(dkdv_kernel<D, E, kDkOnly, false>, grid, smem, s, p, "dk launch");
  } else {
    if (atomic_dq) launch_with_smem(dkdv_kernel<D, E, kDkDv, true>, grid, smem, s, p, "dk/dv+dq launch");
    else launch_with_smem(dkdv_kernel<D, E, kDkDv, false>, grid, smem, s, p, "dk/dv launch");
  }
  if (atomic_dq) {
    dq_convert_kernel<E><<<blocks_for(q_elems), kBwdThreads, 0, s>>>(p);
    check_cuda(cudaGetLastError(), "dq convert launch");
  } else {
    launch_with_smem(dq_kernel<D, E>, dim3(f.batch * f.num_heads, tiles), smem, s, p, "dq launch");
  }
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
