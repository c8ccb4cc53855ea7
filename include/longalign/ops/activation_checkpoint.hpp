// Activation checkpointing per decoder layer. LibTorch C++ has no torch.utils.checkpoint, so
// this is a custom autograd Function: forward runs the layer without recording a graph and
// keeps only its input; backward re-runs the layer with grad enabled and back-propagates
// through the recomputed graph (parameter gradients accumulate as usual).
#pragma once
#include <memory>

#include "longalign/model/llama.hpp"
#include "longalign/ops/activation_offload.hpp"

namespace longalign::ops {

// A LayerRunner for LlamaForCausalLM::hidden_states that checkpoints every layer; with
// `offload`, each layer's input waits for backward in host memory (activation_offload.hpp).
model::LayerRunner checkpointed_layers(std::shared_ptr<ActivationOffload> offload = nullptr);

}  // namespace longalign::ops
