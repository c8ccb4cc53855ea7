// Memory model. Weights in param_bytes; the low-precision .grad of one micro-step plus the fp32
// gradient accumulator; fp32 master + two Adam moments (master aliases the weights in fp32).
// Activations per token and layer, in the weight dtype: what autograd keeps for RMSNorm (plus
// its fp32 upcast), q/k/v, attention output, the SwiGLU intermediates and residuals.
#include "longalign/train/memory_estimate.hpp"

#include <cstdio>

namespace longalign::train {

MemoryEstimate estimate_memory(const model::LlamaConfig& c, const MemoryInputs& in) {
  const double n = double(c.num_parameters()), pb = double(in.param_bytes), w = double(in.world_size);
  const double kv = double(c.num_key_value_heads * c.resolved_head_dim());
  const double h = double(c.hidden_size), inter = double(c.intermediate_size), t = double(in.tokens);
  MemoryEstimate e;
  e.weights = n * pb;
  const double grad_acc = n * 4.0 / (in.zero_stage >= 2 ? w : 1.0);
  e.grads = n * pb + grad_acc;
  const double master = in.param_bytes == 4 ? 0.0 : n * 4.0;
  e.optimizer = (master + n * 8.0) / (in.zero_stage >= 1 ? w : 1.0);
  const double per_token_layer = pb * (10 * h + 2 * kv + 4 * inter) + 4.0 * 2 * h;
  const double full_layer = t * per_token_layer;
  e.activations = in.checkpointing ? double(c.num_hidden_layers) * t * h * pb + full_layer
                                   : double(c.num_hidden_layers) * full_layer;
  e.logits = 2.0 * double(in.loss_chunk_tokens) * double(c.vocab_size) * 4.0;  // logits + softmax grad, fp32
  e.workspace = 1.5 * (1 << 30) + t * h * pb * 4;  // CUDA context, allocator slack, embedding/norm outputs
  return e;
}

std::string MemoryEstimate::table() const {
  char buf[512];
  const double g = 1 << 30;
  std::snprintf(buf, sizeof buf,
                "  weights      %8.2f GiB\n  gradients    %8.2f GiB\n  optimizer    %8.2f GiB\n"
                "  activations  %8.2f GiB\n  logits chunk %8.2f GiB\n  workspace    %8.2f GiB\n  total        %8.2f GiB\n",
                weights / g, grads / g, optimizer / g, activations / g, logits / g, workspace / g, total() / g);
  return buf;
}

}  // namespace longalign::train
