// RoPE frequencies and rotation; the llama3 rule follows Meta's published formula (smooth
// interpolation between the scaled low and unscaled high frequencies).
#include "longalign/model/rope.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>

namespace longalign::model {

at::Tensor rope_inv_freq(const LlamaConfig& c) {
  const int64_t d = c.rotary_dim();
  at::Tensor idx = at::arange(0, d, 2, at::kLong).to(at::kFloat);
  at::Tensor inv = 1.0 / at::pow(c.rope_theta, idx / double(d));
  const auto& s = c.rope_scaling;
  if (s.type == "linear") return inv / s.factor;
  if (s.type == "llama3") {
    const double old_len = double(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv / s.factor, inv);
    at::Tensor smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
    return at::where(medium, smoothed, scaled);
  }
  return inv;
}

std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                               at::ScalarType dtype, bool interleaved) {
  const auto acc = at::promote_types(dtype, at::kFloat);  // fp32 as HF, fp64 in fp64 runs
  at::Tensor freqs = position_ids.to(acc).unsqueeze(1) * inv_freq.to(position_ids.device(), acc).unsqueeze(0);
  at::Tensor emb = interleaved ? freqs.repeat_interleave(2, -1) : at::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

namespace {
// The partner of each dim, signed so that x * cos + partner * sin rotates every pair.
at::Tensor rotate(const at::Tensor& x, bool interleaved) {
  if (interleaved) {
    at::Tensor pairs = x.unflatten(-1, {-1, 2});
    return at::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);
  }
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}
}  // namespace

namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor rope_forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved) {
  const int64_t rot = cos.size(-1);
  if (rot == x.size(-1)) return x * cos.unsqueeze(1) + rotate(x, interleaved) * sin.unsqueeze(1);
  at::Tensor head = x.narrow(-1, 0, rot);
  at::Tensor turned = head * cos.unsqueeze(1) + rotate(head, interleaved) * sin.unsqueeze(1);
  return at::cat({turned, x.narrow(-1, rot, x.size(-1) - rot)}, -1);
}

// The rotation as one autograd Function: autograd on the ops above would keep x and rotate(x)
// (twice q's and k's size) besides the output; this keeps only cos and sin. rotate is a signed
// permutation with rotate(rotate(v)) = -v, so its transpose is -rotate and
// dx = g * cos - rotate(g * sin) on the rotated dims, g on the others.
struct Rope : torch::autograd::Function<Rope> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                            bool interleaved) {
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["interleaved"] = interleaved;
    return rope_forward(x, cos, sin, interleaved);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &cos = saved[0], &sin = saved[1];
    const bool interleaved = ctx->saved_data["interleaved"].toBool();
    const at::Tensor& g = grad_out[0];
    const int64_t rot = cos.size(-1);
    auto turn_back = [&](const at::Tensor& gh) {
      return gh * cos.unsqueeze(1) - rotate(gh * sin.unsqueeze(1), interleaved);
    };
    at::Tensor gx = rot == g.size(-1) ? turn_back(g)
                                      : at::cat({turn_back(g.narrow(-1, 0, rot)), g.narrow(-1, rot, g.size(-1) - rot)}, -1);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved) {
  return Rope::apply(x, cos, sin, interleaved);
}

}  // namespace longalign::model
