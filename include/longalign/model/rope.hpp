// Rotary position embedding in the HF rotate_half convention (first and second halves of
// head_dim are paired), with linear and llama3 frequency scaling.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

#include "longalign/model/llama_config.hpp"

namespace longalign::model {

// fp32 [head_dim / 2] inverse frequencies after scaling.
at::Tensor rope_inv_freq(const LlamaConfig& c);

// cos and sin [T, head_dim] in `dtype`, computed in fp32 from int64 position_ids [T].
std::pair<at::Tensor, at::Tensor> rope_cos_sin(const at::Tensor& inv_freq, const at::Tensor& position_ids,
                                               at::ScalarType dtype);

// x [T, H, D] rotated by cos/sin [T, D].
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace longalign::model
