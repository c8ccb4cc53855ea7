// Reference varlen attention and the backend dispatch between the project's CUDA kernels
// (`cuda`, and `auto` on CUDA once they pass their self-check), PyTorch's FlashAttention-2 varlen
// op (`flash`, and `auto`'s fallback on CUDA) and the reference.
#include "longalign/ops/varlen_attention.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <limits>
#include <mutex>
#include <set>
#include <string>

#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#ifdef LONGALIGN_HAVE_CUDA_KERNELS
#include "longalign/ops/cuda_kernel_self_check.hpp"
#include "longalign/ops/varlen_attention_cuda.hpp"
#endif

namespace longalign::ops {

AttentionBackend parse_attention_backend(const std::string& s) {
  if (s == "auto") return AttentionBackend::automatic;
  if (s == "cuda") return AttentionBackend::cuda;
  if (s == "reference") return AttentionBackend::reference;
  if (s == "flash") return AttentionBackend::flash;
  throw UsageError("unknown attention backend '" + s + "'; use auto, cuda, flash or reference");
}

void check_cu_seqlens(const at::Tensor& cu_host, int64_t total) {
  const at::Tensor c = cu_host.contiguous();
  const int32_t* p = c.data_ptr<int32_t>();
  const int64_t n = c.numel();
  if (p[0] != 0 || p[n - 1] != total)
    throw RuntimeError("varlen_attention: cu_seqlens must run from 0 to the total tokens (" + std::to_string(total) + ")");
  for (int64_t i = 1; i < n; ++i)
    if (p[i] < p[i - 1]) throw RuntimeError("varlen_attention: cu_seqlens decreases at index " + std::to_string(i));
}

void check_varlen_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu) {
  auto fail = [](const std::string& m) { throw RuntimeError("varlen_attention: " + m); };
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3) fail("q, k and v must be [total, heads, head_dim]");
  if (k.sizes() != v.sizes()) fail("k and v must have the same shape");
  if (q.size(0) != k.size(0) || q.size(2) != k.size(2)) fail("q and k differ in total tokens or head_dim");
  if (q.size(1) % k.size(1) != 0) fail("query heads must be a multiple of key/value heads (GQA)");
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type()) fail("q, k, v dtypes differ");
  if (q.device() != k.device() || q.device() != v.device()) fail("q, k, v are on different devices");
  if (cu.dim() != 1 || cu.scalar_type() != at::kInt || cu.size(0) < 2) fail("cu_seqlens must be int32 [B+1]");
  // Contents are checked here only where that costs nothing: reading a GPU tensor would stall
  // the GPU on every layer and every recompute. Batches are checked once on the host before
  // upload (data::to_tensors).
  if (cu.is_cpu()) check_cu_seqlens(cu, q.size(0));
}

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// One sequence's heads in the compute precision: [H, L, D], kv repeated over each query group.
struct SeqView {
  at::Tensor q, k, v;
};
SeqView seq_view(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t s, int64_t len) {
  const int64_t groups = q.size(1) / k.size(1);
  const auto acc = at::promote_types(q.scalar_type(), at::kFloat);
  return {q.narrow(0, s, len).transpose(0, 1).to(acc), k.narrow(0, s, len).repeat_interleave(groups, 1).transpose(0, 1).to(acc),
          v.narrow(0, s, len).repeat_interleave(groups, 1).transpose(0, 1).to(acc)};
}

// Scaled causal scores of query rows [r0, r0 + rows) against keys [0, r0 + rows): [H, rows, keys].
at::Tensor block_scores(const SeqView& sv, int64_t r0, int64_t rows, double scale) {
  const int64_t keys = r0 + rows;
  at::Tensor scores = at::matmul(sv.q.narrow(1, r0, rows), sv.k.narrow(1, 0, keys).transpose(1, 2)) * scale;
  at::Tensor qi = at::arange(r0, r0 + rows, at::TensorOptions().device(sv.q.device())).unsqueeze(1);
  at::Tensor ki = at::arange(0, keys, at::TensorOptions().device(sv.q.device())).unsqueeze(0);
  return scores.masked_fill(ki > qi, -std::numeric_limits<double>::infinity());
}

// Forward keeps q, k, v, the output and the log-sum-exp of each row, as FlashAttention does;
// backward recomputes each block's probabilities. Autograd on the plain ops would keep every
// block's scores and probabilities: O(length^2 x heads) per sequence.
struct ReferenceAttention : torch::autograd::Function<ReferenceAttention> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu, double scale, int64_t block_rows) {
    const int32_t* c = cu.data_ptr<int32_t>();
    const auto acc = at::promote_types(q.scalar_type(), at::kFloat);
    at::Tensor out = at::empty(q.sizes(), q.options().dtype(acc));
    at::Tensor lse = at::empty({q.size(0), q.size(1)}, q.options().dtype(acc));
    for (int64_t b = 0; b + 1 < cu.size(0); ++b) {
      const int64_t s = c[b], len = c[b + 1] - c[b];
      if (len == 0) continue;
      const SeqView sv = seq_view(q, k, v, s, len);
      for (int64_t r0 = 0; r0 < len; r0 += block_rows) {
        const int64_t rows = std::min(block_rows, len - r0);
        at::Tensor scores = block_scores(sv, r0, rows, scale);
        at::Tensor o = at::matmul(at::softmax(scores, -1), sv.v.narrow(1, 0, r0 + rows));  // [H, rows, D]
        out.narrow(0, s + r0, rows).copy_(o.transpose(0, 1));
        lse.narrow(0, s + r0, rows).copy_(at::logsumexp(scores, -1).transpose(0, 1));
      }
    }
    out = out.to(q.scalar_type());
    ctx->save_for_backward({q, k, v, cu, out, lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["block_rows"] = block_rows;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &cu = saved[3], &out = saved[4], &lse = saved[5];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t block_rows = ctx->saved_data["block_rows"].toInt();
    const int32_t* c = cu.data_ptr<int32_t>();
    const auto acc = lse.scalar_type();
    const int64_t hq = q.size(1), hkv = k.size(1), d = q.size(2);
    at::Tensor gq = at::zeros(q.sizes(), q.options().dtype(acc));
    at::Tensor gk = at::zeros(k.sizes(), k.options().dtype(acc)), gv = at::zeros(v.sizes(), v.options().dtype(acc));
    const at::Tensor g = grad_out[0];
    for (int64_t b = 0; b + 1 < cu.size(0); ++b) {
      const int64_t s = c[b], len = c[b + 1] - c[b];
      if (len == 0) continue;
      const SeqView sv = seq_view(q, k, v, s, len);
      at::Tensor dk = at::zeros({hq, len, d}, sv.k.options()), dv = at::zeros({hq, len, d}, sv.v.options());
      for (int64_t r0 = 0; r0 < len; r0 += block_rows) {
        const int64_t rows = std::min(block_rows, len - r0), keys = r0 + rows;
        at::Tensor p = at::exp(block_scores(sv, r0, rows, scale) -
                               lse.narrow(0, s + r0, rows).transpose(0, 1).unsqueeze(-1));  // [H, rows, keys]
        at::Tensor go = g.narrow(0, s + r0, rows).transpose(0, 1).to(acc);                  // [H, rows, D]
        at::Tensor o = out.narrow(0, s + r0, rows).transpose(0, 1).to(acc);
        dv.narrow(1, 0, keys).add_(at::matmul(p.transpose(1, 2), go));
        at::Tensor dp = at::matmul(go, sv.v.narrow(1, 0, keys).transpose(1, 2));
        at::Tensor ds = p * (dp - (go * o).sum(-1, /*keepdim=*/true)) * scale;
        gq.narrow(0, s + r0, rows).copy_(at::matmul(ds, sv.k.narrow(1, 0, keys)).transpose(0, 1));
        dk.narrow(1, 0, keys).add_(at::matmul(ds.transpose(1, 2), sv.q.narrow(1, r0, rows)));
      }
      // Each kv head's gradient is the sum over its query group.
      gk.narrow(0, s, len).copy_(dk.view({hkv, hq / hkv, len, d}).sum(1).transpose(0, 1));
      gv.narrow(0, s, len).copy_(dv.view({hkv, hq / hkv, len, d}).sum(1).transpose(0, 1));
    }
    return {gq.to(q.scalar_type()), gk.to(k.scalar_type()), gv.to(v.scalar_type()), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor varlen_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale,
                                      int64_t block_rows) {
  check_varlen_inputs(q, k, v, cu_seqlens);
  // The reference reads the lengths on the host anyway, so it checks them wherever they live.
  at::Tensor cu = cu_seqlens.to(at::kCPU).contiguous();
  check_cu_seqlens(cu, q.size(0));
  return ReferenceAttention::apply(q, k, v, cu, scale, block_rows);
}

namespace {

bool flash_supports(const at::Tensor& q) {
  return q.is_cuda() && (q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf) && q.size(2) % 8 == 0 &&
         q.size(2) <= 256;
}

// PyTorch's FlashAttention-2 varlen forward; its autograd formula supplies the backward.
at::Tensor flash_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu,
                           int64_t max_seqlen, double scale) {
  check_varlen_inputs(q, k, v, cu);
  at::Tensor c = cu.to(q.device());
  auto out = at::_flash_attention_forward(q.contiguous(), k.contiguous(), v.contiguous(), c, c, max_seqlen, max_seqlen,
                                          /*dropout_p=*/0.0, /*is_causal=*/true, /*return_debug_mask=*/false, scale);
  return std::get<0>(out);
}

#ifdef LONGALIGN_HAVE_CUDA_KERNELS
// Whether the kernel serves q's device and shape at all; a device it cannot serve is said once
// (per device and head_dim), not per layer.
bool kernel_serves(const at::Tensor& q) {
  const std::string problem = cuda_kernel_support_problem(q);
  if (problem.empty()) return true;
  static std::mutex mu;
  static std::set<std::pair<int, int64_t>> said;
  const std::lock_guard<std::mutex> lock(mu);
  if (said.insert({q.get_device(), q.size(2)}).second)
    log::info("attention kernel not used on " + q.device().str() + ": " + problem +
              "; attention.backend auto uses FlashAttention-2");
  return false;
}
#endif

}  // namespace

AttentionBackend resolve_auto_backend(const at::Tensor& q, int64_t kv_heads, bool deterministic) {
  if (!q.is_cuda() || (q.scalar_type() != at::kBFloat16 && q.scalar_type() != at::kHalf))
    return AttentionBackend::reference;
#ifdef LONGALIGN_HAVE_CUDA_KERNELS
  if (kernel_serves(q)) {
    const KernelVerdict v = cuda_kernel_verdict(q, kv_heads);
    // FlashAttention-2 ignores `deterministic`: with it, a correct kernel wins even if slower.
    const bool use = v.use_kernel || (deterministic && v.correct);
    static std::mutex mu;
    static std::set<std::tuple<int, int, int64_t, int64_t, int64_t, bool>> said;
    const std::lock_guard<std::mutex> lock(mu);
    if (said.insert({q.get_device(), int(q.scalar_type()), q.size(2), q.size(1), kv_heads, deterministic}).second) {
      std::string line = "attention kernel self-check (" + std::string(q.scalar_type() == at::kHalf ? "fp16" : "bf16") +
                         ", head_dim " + std::to_string(q.size(2)) + ", " + std::to_string(q.size(1)) + "/" +
                         std::to_string(kv_heads) + " heads, " + q.device().str() + "): " + v.message;
      if (use) log::info(line + (v.use_kernel ? "" : " (attention.deterministic: kept although slower)") +
                         "; attention.backend auto uses the project's kernel");
      else if (v.correct) log::info(line + "; attention.backend auto uses FlashAttention-2, the faster here");
      else log::warn(line + "; attention.backend auto uses FlashAttention-2. Please report this.");
    }
    if (use) return AttentionBackend::cuda;
  }
#endif
  (void)kv_heads, (void)deterministic;
  return flash_supports(q) ? AttentionBackend::flash : AttentionBackend::reference;
}

at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale, AttentionBackend backend,
                            bool deterministic) {
  switch (backend) {
    case AttentionBackend::cuda:
#ifdef LONGALIGN_HAVE_CUDA_KERNELS
      return varlen_attention_cuda(q, k, v, cu_seqlens, max_seqlen, scale, deterministic);
#else
      throw UsageError("attention.backend: cuda requested, but this build has no CUDA kernels (no CUDA toolkit at "
                       "build time); use auto, flash or reference");
#endif
    case AttentionBackend::flash:
      if (!flash_supports(q))
        throw UsageError("attention.backend: flash needs CUDA bf16/fp16 tensors with head_dim a multiple of 8, <= 256");
      return flash_attention(q, k, v, cu_seqlens, max_seqlen, scale);
    case AttentionBackend::automatic:  // resolves to one of the others
      return varlen_attention(q, k, v, cu_seqlens, max_seqlen, scale, resolve_auto_backend(q, k.size(1), deterministic),
                              deterministic);
    case AttentionBackend::reference:
      break;
  }
  return varlen_attention_reference(q, k, v, cu_seqlens, max_seqlen, scale);
}

}  // namespace longalign::ops
