// Thin torch wrapper over the project's CUDA kernels: validates tensors, fills the plain
// parameter structs and registers an autograd Function (forward kernel; backward kernels that
// recompute P from the saved logsumexp). Compiled only when the kernels are built. Every launch
// (and cudaFuncSetAttribute, which acts on the current device) runs under a guard for the
// inputs' device, on that device's current stream.
#include "longalign/ops/varlen_attention_cuda.hpp"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include "longalign/core/error.hpp"
#include "longalign/kernels/device_support.hpp"
#include "longalign/kernels/varlen_attention.hpp"
#include "longalign/ops/varlen_attention.hpp"

namespace longalign::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

kernels::VarlenAttentionParams params(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& o,
                                      const at::Tensor& lse, const at::Tensor& cu, int64_t max_seqlen, double scale) {
  kernels::VarlenAttentionParams p{};
  p.q = reinterpret_cast<const uint16_t*>(q.data_ptr());
  p.k = reinterpret_cast<const uint16_t*>(k.data_ptr());
  p.v = reinterpret_cast<const uint16_t*>(v.data_ptr());
  p.o = reinterpret_cast<uint16_t*>(o.data_ptr());
  p.lse = lse.data_ptr<float>();
  p.cu_seqlens = cu.data_ptr<int32_t>();
  p.q_row_stride = q.stride(0), p.k_row_stride = k.stride(0), p.v_row_stride = v.stride(0), p.o_row_stride = o.stride(0);
  p.q_head_stride = q.stride(1), p.k_head_stride = k.stride(1), p.v_head_stride = v.stride(1), p.o_head_stride = o.stride(1);
  p.total = q.size(0);
  p.batch = int(cu.size(0) - 1);
  p.num_heads = int(q.size(1));
  p.num_kv_heads = int(k.size(1));
  p.head_dim = int(q.size(2));
  p.max_seqlen = int(max_seqlen);
  p.scale = float(scale);
  p.dtype = q.scalar_type() == at::kHalf ? 1 : 0;
  return p;
}

void* stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.get_device()).stream(); }

// The kernels load rows in 16-byte cp.async chunks: contiguous, with a 16-byte-aligned start
// (head_dim 64/128 then makes every row and head offset a multiple of 16 bytes).
at::Tensor dense(const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
}

struct CudaVarlenAttention : torch::autograd::Function<CudaVarlenAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                            const at::Tensor& cu, int64_t max_seqlen, double scale, bool deterministic) {
    const c10::cuda::CUDAGuard guard(q_in.device());
    at::Tensor q = dense(q_in), k = dense(k_in), v = dense(v_in);
    at::Tensor o = torch::empty_like(q);
    at::Tensor lse = torch::empty({q.size(1), q.size(0)}, q.options().dtype(torch::kFloat));
    kernels::varlen_attention_fwd_cuda(params(q, k, v, o, lse, cu, max_seqlen, scale), stream_of(q));
    ctx->save_for_backward({q, k, v, o, lse, cu});
    ctx->saved_data["max_seqlen"] = max_seqlen;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["deterministic"] = deterministic;
    return o;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto s = ctx->get_saved_variables();
    const at::Tensor &q = s[0], &k = s[1], &v = s[2], &o = s[3], &lse = s[4], &cu = s[5];
    const c10::cuda::CUDAGuard guard(q.device());
    at::Tensor dout = dense(grad[0]);
    at::Tensor dq = torch::empty_like(q), dk = torch::empty_like(k), dv = torch::empty_like(v);
    at::Tensor delta = torch::empty_like(lse);
    // Zeroed by the launcher; q is contiguous (dense), so this has q's layout, as the kernel needs.
    at::Tensor dq_accum;
    if (!ctx->saved_data["deterministic"].toBool()) dq_accum = torch::empty(q.sizes(), q.options().dtype(torch::kFloat));
    kernels::VarlenAttentionBwdParams bp{
        params(q, k, v, o, lse, cu, ctx->saved_data["max_seqlen"].toInt(), ctx->saved_data["scale"].toDouble()),
        reinterpret_cast<const uint16_t*>(dout.data_ptr()), delta.data_ptr<float>(),
        reinterpret_cast<uint16_t*>(dq.data_ptr()), reinterpret_cast<uint16_t*>(dk.data_ptr()),
        reinterpret_cast<uint16_t*>(dv.data_ptr()), dq_accum.defined() ? dq_accum.data_ptr<float>() : nullptr};
    kernels::varlen_attention_bwd_cuda(bp, stream_of(q));
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::string cuda_kernel_support_problem(const at::Tensor& q) {
  if (!q.is_cuda()) return "the tensors are not on a CUDA device";
  if (q.scalar_type() != at::kBFloat16 && q.scalar_type() != at::kHalf) return "the kernels take bf16 or fp16";
  if (q.dim() != 3 || (q.size(2) != 64 && q.size(2) != 128)) return "the kernels serve head_dim 64 and 128";
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(q.get_device());  // cached by ATen
  const int64_t optin = int64_t(p->sharedMemPerBlockOptin);
  return kernels::varlen_attention_device_problem(p->major, p->minor, optin, int(q.size(2)));
}

at::Tensor varlen_attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu,
                                 int64_t max_seqlen, double scale, bool deterministic) {
  if (const std::string problem = cuda_kernel_support_problem(q); !problem.empty())
    throw UsageError("attention.backend: cuda: " + problem + "; use auto or flash");
  check_varlen_inputs(q, k, v, cu);
  return CudaVarlenAttention::apply(q, k, v, cu.to(q.device()).contiguous(), max_seqlen, scale, deterministic);
}

}  // namespace longalign::ops
