// The tiled MLP's autograd Function; see the header. Like activation_checkpoint.cpp, the module
// travels to backward in a capsule, and the parameters are not inputs of the Function. Backward
// recomputes each chunk against detached aliases of the trainable parameters, sums the chunks'
// gradients, and hands each parameter its sum through one final backward: a parameter's gradient
// hooks must fire once per backward, as for an untiled MLP (the overlapped all-reduce counts them
// to know when a bucket is complete; a hook per chunk would send partial gradients).
#include "longalign/ops/tiled_mlp.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace longalign::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The LoRA dropout state the MLP's adapters share (null without adapters).
std::shared_ptr<model::LoraDropoutState> dropout_state(model::LlamaMLPImpl& m) {
  for (auto* p : m.projections())
    if (p->dropout_state()) return p->dropout_state();
  return nullptr;
}

// Keys LoRA dropout on the chunk for a scope, restoring the previous key after it (a layer
// recomputed by checkpointing runs this op again inside the outer backward).
class ChunkKey {
 public:
  ChunkKey(const std::shared_ptr<model::LoraDropoutState>& s, int64_t key) : s_(s) {
    if (!s_) return;
    saved_ = s_->chunk;
    s_->chunk = key;
  }
  ~ChunkKey() {
    if (s_) s_->chunk = saved_;
  }
  ChunkKey(const ChunkKey&) = delete;
  ChunkKey& operator=(const ChunkKey&) = delete;

 private:
  std::shared_ptr<model::LoraDropoutState> s_;
  int64_t saved_ = 0;
};

int64_t chunks_of(int64_t t, int64_t n) { return (t + n - 1) / n; }

// Rows [c * n, ...) of x, and their dropout key: 1 + c when there are several chunks.
at::Tensor chunk_rows(const at::Tensor& x, int64_t c, int64_t n) {
  const int64_t s = c * n;
  return x.narrow(0, s, std::min(n, x.size(0) - s));
}

// The MLP chunk by chunk into one output; records a graph only if the caller's grad mode does.
at::Tensor run_chunks(model::LlamaMLPImpl& m, const at::Tensor& x, int64_t n) {
  const auto state = dropout_state(m);
  const int64_t k = chunks_of(x.size(0), n);
  at::Tensor out;
  for (int64_t c = 0; c < k; ++c) {
    at::Tensor y;
    {
      ChunkKey key(state, c + 1);
      y = m.forward(chunk_rows(x, c, n));
    }
    if (!out.defined()) out = at::empty({x.size(0), y.size(1)}, y.options());
    out.narrow(0, c * n, y.size(0)).copy_(y);
  }
  return out;
}

// The MLP's trainable parameter members (weights, biases, adapters): what forward reads.
std::vector<at::Tensor*> trainable_members(model::LlamaMLPImpl& m) {
  std::vector<at::Tensor*> out;
  for (auto* p : m.projections()) {
    auto& lin = *p;
    for (at::Tensor* t : {&lin.weight, &lin.bias})
      if (t->defined() && t->requires_grad()) out.push_back(t);
    if (lin.has_adapter())
      for (at::Tensor* t : {&lin.lora_A->weight, &lin.lora_B->weight})
        if (t->requires_grad()) out.push_back(t);
  }
  return out;
}

// Swaps the members for detached aliases (same storage, no hooks) for a scope.
class Aliased {
 public:
  explicit Aliased(const std::vector<at::Tensor*>& members) : members_(members) {
    for (at::Tensor* t : members_) {
      aliases_.push_back(t->detach().requires_grad_(true));
      std::swap(*t, aliases_.back());  // aliases_ now holds the parameter, the member its alias
    }
  }
  ~Aliased() {
    for (size_t i = 0; i < members_.size(); ++i) std::swap(*members_[i], aliases_[i]);
  }
  Aliased(const Aliased&) = delete;
  Aliased& operator=(const Aliased&) = delete;
  at::Tensor alias(size_t i) const { return *members_[i]; }

 private:
  std::vector<at::Tensor*> members_;
  std::vector<at::Tensor> aliases_;
};

struct MlpCall : torch::CustomClassHolder {
  model::LlamaMLPImpl* mlp = nullptr;
  int64_t chunk = 0;
  bool input_grad = true;  // false: x was given grad only so that this node runs (its gradient is dropped)
};

struct TiledMlp : torch::autograd::Function<TiledMlp> {
  // Runs with grad mode off (autograd Functions' forward does): nothing but x is kept.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, c10::intrusive_ptr<MlpCall> call) {
    ctx->save_for_backward({x});
    ctx->saved_data["call"] = c10::IValue::make_capsule(call);
    return run_chunks(*call->mlp, x, call->chunk);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto call = c10::static_intrusive_pointer_cast<MlpCall>(ctx->saved_data["call"].toCapsule());
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor& g = grad_out[0];
    if (!g.defined()) return {at::Tensor(), at::Tensor()};
    auto& m = *call->mlp;
    const auto state = dropout_state(m);
    const bool want_x = call->input_grad && ctx->needs_input_grad(0);
    at::Tensor gx = want_x ? at::empty_like(x) : at::Tensor();
    const int64_t n = call->chunk, k = chunks_of(x.size(0), n);
    const std::vector<at::Tensor*> members = trainable_members(m);
    std::vector<at::Tensor> sums(members.size());
    for (int64_t c = 0; c < k; ++c) {
      at::Tensor xc = chunk_rows(x, c, n).detach();
      if (want_x) xc.requires_grad_(true);
      torch::AutoGradMode enable(true);
      Aliased aliased(members);
      at::Tensor yc;
      {
        ChunkKey key(state, c + 1);
        yc = m.forward(xc);
      }
      std::vector<at::Tensor> inputs;
      if (want_x) inputs.push_back(xc);
      for (size_t i = 0; i < members.size(); ++i) inputs.push_back(aliased.alias(i));
      if (inputs.empty() || !yc.requires_grad()) continue;
      // A chunk's graph (and its intermediates) is freed by its gradient before the next exists.
      const auto grads = torch::autograd::grad({yc}, inputs, {chunk_rows(g, c, n)}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true);
      size_t at = 0;
      if (want_x) gx.narrow(0, c * n, xc.size(0)).copy_(grads[at++]);
      for (size_t i = 0; i < members.size(); ++i, ++at)
        if (grads[at].defined()) sums[i] = sums[i].defined() ? sums[i].add_(grads[at]) : grads[at];
    }
    // d/dp sum(p * G) = G exactly: each parameter receives its summed gradient in one accumulation.
    torch::AutoGradMode enable(true);
    at::Tensor total;
    for (size_t i = 0; i < members.size(); ++i)
      if (sums[i].defined()) {
        at::Tensor term = (*members[i] * sums[i]).sum();
        total = total.defined() ? total + term : term;
      }
    if (total.defined()) torch::autograd::backward({total});
    return {gx, at::Tensor()};
  }
};

}  // namespace

model::MlpFn tiled_mlp(int64_t chunk_tokens) {
  if (chunk_tokens <= 0) throw std::invalid_argument("tiled_mlp: chunk_tokens must be positive");
  return [chunk_tokens](model::LlamaMLPImpl& m, const at::Tensor& x) -> at::Tensor {
    if (x.size(0) <= chunk_tokens) return m.forward(x);
    bool params_train = false;
    for (const auto& p : m.parameters()) params_train = params_train || p.requires_grad();
    // No graph wanted (checkpointing's or ZeRO-3's first forward, evaluation, a frozen MLP on a
    // frozen input): chunks alone already bound the intermediates.
    if (!torch::GradMode::is_enabled() || (!x.requires_grad() && !params_train)) return run_chunks(m, x, chunk_tokens);
    auto call = c10::make_intrusive<MlpCall>();
    call->mlp = &m;
    call->chunk = chunk_tokens;
    call->input_grad = x.requires_grad();
    // Autograd runs this node only if its input needs grad: a frozen input (LoRA's frozen
    // embedding and attention) gets grad here so that the adapters' gradients are computed.
    const at::Tensor in = x.requires_grad() ? x : x.detach().requires_grad_(true);
    return TiledMlp::apply(in, call);
  };
}

}  // namespace longalign::ops
