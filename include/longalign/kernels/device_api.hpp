// The one header through which kernels reach thread indices, barriers, warp collectives, tensor
// cores and async copies. Under nvcc each function is the real intrinsic or PTX; compiled as
// host C++ (no __CUDACC__) the same names are implemented by the CPU execution harness
// (kernels/cpu_harness.hpp), which runs one host thread per CUDA thread. Kernel sources written
// against this header therefore run, unchanged, in CI without a GPU.
//
// Fragment layouts follow the PTX ISA for mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// and ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16, with g = lane / 4 and t = lane % 4:
// (the .f16 variant has the same layouts)
//   A 16x16 (4 x b32, 2 bf16 each, low half first): a0=(g, 2t..2t+1) a1=(g+8, 2t..) a2=(g, 2t+8..) a3=(g+8, 2t+8..)
//   B 16x8  (2 x b32):                              b0=(k=2t..2t+1, n=g)  b1=(k=2t+8..2t+9, n=g)
//   C/D 16x8 (4 x f32):                             d0=(g, 2t) d1=(g, 2t+1) d2=(g+8, 2t) d3=(g+8, 2t+1)
//   ldmatrix x4: lanes 8i..8i+7 give the row addresses of matrix i; lane l receives r[i] =
//   matrix i (row l/4, cols 2(l%4), 2(l%4)+1), or with .trans (rows 2(l%4), 2(l%4)+1, col l/4).
#pragma once
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define LA_DEVICE __device__ __forceinline__
#define LA_NO_UNROLL _Pragma("unroll 1")  // keeps a loop's iterations from sharing registers
#else
#define LA_DEVICE inline
#define LA_NO_UNROLL
#endif

namespace longalign::kernels {

#ifdef __CUDACC__
LA_DEVICE int thread_x() { return threadIdx.x; }
LA_DEVICE int block_x() { return blockIdx.x; }
LA_DEVICE int block_y() { return blockIdx.y; }
LA_DEVICE void sync_threads() { __syncthreads(); }
LA_DEVICE float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }

LA_DEVICE void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}

LA_DEVICE void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
LA_DEVICE float f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }
LA_DEVICE uint16_t f32_to_f16(float f) { return __half_as_ushort(__float2half_rn(f)); }

// 2^x in one MUFU.EX2 (flushing subnormal results to zero: probabilities below 2^-126 are 0
// to the softmax anyway); exp2f adds range handling around it.
LA_DEVICE float exp2_fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

LA_DEVICE void ldmatrix_x4(uint32_t r[4], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

LA_DEVICE void ldmatrix_x4_trans(uint32_t r[4], const void* smem_row) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem_row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Asynchronous global -> shared copies. With valid == false nothing is read and the destination
// is zero-filled (src-size 0), so tiles past a sequence's end need no separate store. The source
// must still be a mapped address; callers pass a row of the same sequence.
LA_DEVICE void cp_async_16(void* smem, const void* gmem, bool valid) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(gmem), "r"(valid ? 16 : 0));
}
LA_DEVICE void cp_async_4(void* smem, const void* gmem, bool valid) {
  const uint32_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(addr), "l"(gmem), "r"(valid ? 4 : 0));
}
LA_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// One 16-byte load and store (both addresses 16-byte aligned).
LA_DEVICE void copy_16(void* dst, const void* src) { *static_cast<uint4*>(dst) = *static_cast<const uint4*>(src); }
LA_DEVICE void atomic_add_f32(float* addr, float v) { atomicAdd(addr, v); }
// Waits until at most N of this thread's committed groups are still in flight. Other threads'
// copies become visible only after their own wait and a barrier.
template <int N>
LA_DEVICE void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }
#else
// Implemented by the CPU harness (src/kernels/cpu_harness.cpp).
int thread_x();
int block_x();
int block_y();
void sync_threads();
float shfl_xor(float v, int mask);
void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
inline float exp2_fast(float x) { return std::exp2(x); }
void ldmatrix_x4(uint32_t r[4], const void* smem_row);
void ldmatrix_x4_trans(uint32_t r[4], const void* smem_row);
// The harness fills the destination with NaN bytes at issue and copies at the wait that covers
// the group, so reading a tile before its wait, or refilling a buffer other threads still read,
// shows up in CI as it could on a GPU.
void cp_async_16(void* smem, const void* gmem, bool valid);
void cp_async_4(void* smem, const void* gmem, bool valid);
void cp_async_commit();
void cp_async_wait_group(int n);
void copy_16(void* dst, const void* src);
void atomic_add_f32(float* addr, float v);
template <int N>
inline void cp_async_wait() { cp_async_wait_group(N); }
#endif

}  // namespace longalign::kernels
