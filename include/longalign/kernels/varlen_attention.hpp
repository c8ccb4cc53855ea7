// Host API of the project's CUDA varlen attention kernels (built from src/kernels/*.cu when the
// CUDA toolkit is present): plain parameter structs, a stream, no framework types. Errors,
// launch errors included, throw std::runtime_error / std::invalid_argument.
#pragma once
#include "longalign/kernels/varlen_attention_params.hpp"

namespace longalign::kernels {

// Writes o and lse. `stream` is a cudaStream_t.
void varlen_attention_fwd_cuda(const VarlenAttentionParams& p, void* stream);
// Writes delta (scratch, [num_heads, total] fp32), dq, dk, dv.
void varlen_attention_bwd_cuda(const VarlenAttentionBwdParams& p, void* stream);

}  // namespace longalign::kernels
