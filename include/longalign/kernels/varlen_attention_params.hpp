// The plain interface of the varlen attention kernels: pointers and strides, no framework
// types. Offsets are 64-bit throughout (64k tokens x 32 heads x 128 dims is close to 2^31).
#pragma once
#include <cstdint>

namespace longalign::kernels {

struct VarlenAttentionParams {
  const uint16_t* q;  // bf16 or fp16 (see dtype) [total, num_heads, head_dim]
  const uint16_t* k;  // [total, num_kv_heads, head_dim], same type as q
  const uint16_t* v;  // [total, num_kv_heads, head_dim], same type as q
  uint16_t* o;        // [total, num_heads, head_dim], same type as q
  float* lse;         // fp32 [num_heads, total]: natural-log sum of exp of the scaled scores
  const int32_t* cu_seqlens;  // [batch + 1] starting offsets; sequence b is rows cu[b]..cu[b+1]
  int64_t q_row_stride, k_row_stride, v_row_stride, o_row_stride;  // elements between tokens
  int64_t q_head_stride, k_head_stride, v_head_stride, o_head_stride;
  int64_t total;  // tokens
  int batch, num_heads, num_kv_heads, head_dim, max_seqlen;
  float scale;  // softmax scale (usually 1/sqrt(head_dim))
  int dtype = 0;  // element type of q, k, v, o (and the gradients): 0 bf16, 1 fp16
};

// Backward: the forward's inputs plus dO, its saved lse, the preprocessed delta and the outputs.
struct VarlenAttentionBwdParams {
  VarlenAttentionParams fwd;  // q, k, v, o (read), lse (read), shapes and strides
  const uint16_t* dout;       // [total, num_heads, head_dim], type and strides as o
  float* delta;               // fp32 [num_heads, total]: rowsum(dO * O), written by the preprocess
  uint16_t* dq;               // type and layout as q
  uint16_t* dk;               // type and layout as k (already summed over each GQA group)
  uint16_t* dv;               // type and layout as v
  // fp32 workspace, [total, num_heads, head_dim] contiguous (q must be too): with it, dQ is
  // accumulated with atomics inside the dK/dV pass (fast, order of fp32 additions varies run to
  // run); nullptr selects the deterministic separate dQ pass.
  float* dq_accum = nullptr;
};

}  // namespace longalign::kernels
