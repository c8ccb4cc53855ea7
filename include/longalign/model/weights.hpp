// Moving weights between a LlamaForCausalLM and HF model directories (safetensors, or PyTorch
// .bin to read), and the from-scratch initialization.
#pragma once
#include <filesystem>

#include "longalign/model/llama.hpp"
#include "longalign/model/safetensors.hpp"

namespace longalign::model {

// HF-style init: normal(0, std) for matrices and embeddings, ones for norms, zeros for biases.
void init_weights(LlamaForCausalLMImpl& m, double std = 0.02, uint64_t seed = 0);

// Copies every parameter from `dir` (any stored float dtype, converted; GLM's fused
// mlp.gate_up_proj split into gate_proj and up_proj; a chatglm checkpoint read under ChatGLM3's
// names, its query_key_value split into q, k and v). A missing, mis-shaped or unused tensor is
// an error naming it; only rotary inv_freq buffers and a tied model's lm_head.weight may be extra.
void load_hf_weights(LlamaForCausalLMImpl& m, const std::filesystem::path& dir);

// Fails before any work when the weights in `dir` do not fit `c`: names the first missing,
// mis-shaped or unused tensor. Reads only the safetensors headers (.bin files are read whole).
void check_weight_shapes(const std::filesystem::path& dir, const LlamaConfig& c);

// Named parameters in the checkpoint's naming (GLM's gate and up re-fused; chatglm in ChatGLM3's
// names with q, k and v re-fused), converted to `dtype` on the CPU.
NamedTensors hf_state(LlamaForCausalLMImpl& m, at::ScalarType dtype);

}  // namespace longalign::model
