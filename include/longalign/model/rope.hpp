// Rotary position embedding with linear and llama3 frequency scaling, in two conventions: HF's
// rotate_half (dims i and i + rot/2 are paired; Llama, Qwen2) and interleaved pairs (2i, 2i+1;
// GLM). Only the leading rotary dims of a head turn (GLM's partial_rotary_factor); the rest
// pass through.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

#include "longalign/model/llama_config.hpp"

namespace longalign::model {

// fp32 [rotary_dim / 2] inverse frequencies after scaling.
at::Tensor rope_inv_freq(const LlamaConfig& c);

// cos and sin [T, rotary_dim] in `dtype`, computed in fp32 from int64 position_ids [T], laid
// out for the convention: [f0..fn, f0..fn] for halves, [f0, f0, f1, f1, ...] for interleaved.
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                               at::ScalarType dtype, bool interleaved = false);

// x [T, H, D] with its first cos.size(-1) dims rotated by cos/sin [T, rotary_dim]. One autograd
// Function: backward keeps only cos and sin (not x and its rotated copy), and the output is
// bitwise that of the plain ops.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, bool interleaved = false);

}  // namespace longalign::model
