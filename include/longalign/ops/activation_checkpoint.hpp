// Activation checkpointing per decoder layer. LibTorch C++ has no torch.utils.checkpoint, so
// this is a custom autograd Function: forward runs the layer without recording a graph and
// keeps only its input; backward re-runs the layer with grad enabled and back-propagates
// through the recomputed graph (parameter gradients accumulate as usual).
#pragma once
#include "longalign/model/llama.hpp"

namespace longalign::ops {

// A LayerRunner for LlamaForCausalLM::hidden_states that checkpoints every layer.
model::LayerRunner checkpointed_layers();

}  // namespace longalign::ops
