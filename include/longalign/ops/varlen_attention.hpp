// The one attention op of the project: causal attention within each packed sequence.
//   q [total, Hq, D]; k, v [total, Hkv, D] with Hq % Hkv == 0 (GQA);
//   cu_seqlens int32 [B+1] (sequence b is rows cu[b]..cu[b+1]); returns o [total, Hq, D].
// `varlen_attention` dispatches: `cuda` is the project's kernel (CUDA bf16/fp16, head_dim 64/128; built
// when the CUDA toolkit is present); `auto` takes that kernel where it serves the device and shape
// and its one-time self-check found it correct and at least as fast as FlashAttention-2
// (cuda_kernel_self_check.hpp), else PyTorch's bundled FlashAttention-2 varlen op on CUDA, else
// the reference. The reference doubles as the test oracle.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace longalign::ops {

enum class AttentionBackend { automatic, cuda, flash, reference };
AttentionBackend parse_attention_backend(const std::string& s);  // auto | cuda | flash | reference

// Per sequence, in query blocks of `block_rows`, computed in fp32 (fp64 for fp64 inputs); never
// materializes a total x total mask. Differentiable, keeping for backward what FlashAttention
// keeps (q, k, v, the output, each row's log-sum-exp) and recomputing the probabilities there.
at::Tensor varlen_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale,
                                      int64_t block_rows = 1024);

// Shape/dtype/device validation with errors naming the argument; cu_seqlens' contents too when it
// is on the host (never a device-to-host copy).
void check_varlen_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu_seqlens);

// cu_seqlens (int32, on the host) runs from 0 to total without decreasing.
void check_cu_seqlens(const at::Tensor& cu_host, int64_t total);

// What `auto` means for tensors like q (device, dtype, head_dim, heads) with kv_heads: cuda,
// flash or reference, decided once per shape and logged in one line with the self-check's
// measurements. With deterministic, a kernel found correct is kept even where slower, since
// FlashAttention-2 ignores the flag. Trainers call it up front so that all ranks can agree.
AttentionBackend resolve_auto_backend(const at::Tensor& q, int64_t kv_heads, bool deterministic);

// deterministic: where the project's kernel runs, its backward computes dQ without atomics
// (bitwise reproducible, slower). The reference is deterministic anyway; flash ignores it.
at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale,
                            AttentionBackend backend = AttentionBackend::automatic, bool deterministic = false);

}  // namespace longalign::ops
