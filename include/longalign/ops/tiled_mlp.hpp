// Tiled MLP (ALST's TiledMLP): the SwiGLU MLP computed in chunks of tokens, so that its
// intermediates (gate, up, silu(gate) * up and their gradients, 4 x intermediate_size values a
// token) exist for one chunk at a time instead of for the whole micro-step. Forward keeps only
// the MLP's input; backward recomputes each chunk with grad and back-propagates that chunk's
// output gradient (parameter gradients accumulate in .grad, as activation checkpointing's do).
//
// It reaches the model as a model::MlpFn in the LayerContext (model/ does not know ops/), so the
// plain, checkpointed and ZeRO-3 layer loops all run it. LoRA dropout masks are keyed on the
// chunk too (LoraDropoutState::chunk): chunks get different masks, and a recompute (this op's
// backward, or the layer's under checkpointing) the ones of the forward. Tiled masks differ from
// an untiled run's (a generator cannot cheaply skip to a chunk's rows); without dropout the two
// are the same computation up to rounding of the matmuls' row blocking.
#pragma once
#include <cstdint>

#include "longalign/model/llama.hpp"

namespace longalign::ops {

// An MlpFn that runs the MLP `chunk_tokens` (> 0) tokens at a time. A micro-step of at most that
// many tokens is one chunk: the plain call, with the untiled dropout masks.
model::MlpFn tiled_mlp(int64_t chunk_tokens);

}  // namespace longalign::ops
