// Reentrant checkpointing: the layer and its context travel to backward in a capsule, since
// autograd Functions only save tensors and IValues. The layers are deterministic (no dropout),
// so no RNG state needs replaying.
#include "longalign/ops/activation_checkpoint.hpp"

#include <torch/torch.h>

namespace longalign::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct LayerCall : torch::CustomClassHolder {
  model::LlamaDecoderLayerImpl* layer;
  model::LayerContext ctx;
  std::shared_ptr<ActivationOffload> offload;  // null: the input is saved as it is
  std::shared_ptr<OffloadedInput> input;       // offloaded: the input's host copy
};

struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  // `params` are passed only so autograd knows the output depends on them.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, c10::intrusive_ptr<LayerCall> call,
                            const variable_list& params) {
    if (call->offload) call->input = call->offload->offload(x);  // copied while the layer computes
    else ctx->save_for_backward({x});
    at::Tensor out = call->layer->forward(x, call->ctx);
    ctx->saved_data["call"] = c10::IValue::make_capsule(call);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto call = c10::static_intrusive_pointer_cast<LayerCall>(ctx->saved_data["call"].toCapsule());
    at::Tensor x = (call->offload ? call->offload->restore(*call->input) : ctx->get_saved_variables()[0])
                       .detach()
                       .requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = call->layer->forward(x, call->ctx);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    variable_list grads = {x.grad()};
    grads.resize(1 + call->layer->parameters().size() + 1);  // no grads for call/params: the inner pass did it
    return grads;
  }
};

}  // namespace

model::LayerRunner checkpointed_layers(std::shared_ptr<ActivationOffload> offload) {
  return [offload](model::LlamaDecoderLayerImpl& layer, const at::Tensor& x, const model::LayerContext& ctx) {
    if (!torch::GradMode::is_enabled()) return layer.forward(x, ctx);
    auto call = c10::make_intrusive<LayerCall>();
    call->layer = &layer;
    call->ctx = ctx;
    call->offload = offload;
    // Autograd sees only `x` as this Function's input (a vector of parameters does not count),
    // so an input without grad (LoRA's frozen embedding) would leave the layer out of backward.
    const at::Tensor in = x.requires_grad() ? x : x.detach().requires_grad_(true);
    return CheckpointedLayer::apply(in, call, layer.parameters());
  };
}

}  // namespace longalign::ops
