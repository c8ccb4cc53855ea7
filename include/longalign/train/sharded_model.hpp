// ZeRO-3: the model's parameters split across ranks. They form groups (the embedding, each
// decoder layer, the head: final norm + LM head), each flattened and cut into `world` equal
// shards (the last padded); a rank keeps only its shard of every group, in the weight dtype,
// plus an fp32 gradient shard. A group's full weights exist only while it computes: all-gathered
// into a buffer just before, freed just after, and the next group's gather runs on a background
// channel while the current one computes (at most two gathered layers live). Backward recomputes
// each layer from its saved input, so activation checkpointing is part of the scheme, and each
// layer's gradient is reduce-scattered to the shards' owners as soon as it exists.
//
// The head computes its gradient in its forward (the loss is the graph's root), so the LM head is
// gathered once per micro-step, not twice.
//
// On a world of one (the long-context layout on one GPU) the shards are the whole groups: nothing
// is gathered or copied, and each .grad is added to the accumulator as backward leaves it.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "longalign/model/llama.hpp"
#include "longalign/ops/activation_offload.hpp"
#include "longalign/train/adamw.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::train {

class ShardedModel {
 public:
  // Takes the weights now in `m` (any device; the full model is read group by group), keeps
  // this rank's shards on `device` in `dtype` and leaves the module's parameters empty.
  // `channel` carries every gather and reduce-scatter (a split of the trainer's), on a background
  // thread. Gradient shards live in host memory when `offload_grads`. `in_order`: every
  // collective runs on the thread that asks for it, in program order, so that a second
  // communicator used between them (sequence parallelism's exchanges) sees the same order of
  // NCCL calls on every rank, as NCCL requires of communicators sharing a GPU; the prefetch
  // then no longer overlaps compute, which costs little where sequence parallelism pays
  // (a layer's gather is milliseconds, its compute at 512K+ tokens seconds). The trainer sets it
  // whenever sequence parallelism is on, CPU runs included, so that CI runs this path.
  ShardedModel(model::LlamaForCausalLMImpl& m, std::shared_ptr<Collectives> channel, at::Device device,
               at::ScalarType dtype, bool offload_grads, bool in_order = false);
  ~ShardedModel();

  // This rank's shard, parameter by parameter, with the gradient shards as accumulators.
  std::vector<ParamPiece> pieces() const;

  // One micro-batch, forward and backward; returns its weighted loss. Collective: a rank with no
  // micro-batch passes a dummy one with zero weights so that every rank gathers alike.
  // `mlp`: the layers' MLP runner (empty: plain; see ops/tiled_mlp.hpp). `offload`: where the
  // layers' saved inputs wait for backward (null: on the device; ops/activation_offload.hpp).
  double forward_backward(const model::PackedInput& in, const at::Tensor& labels, const at::Tensor& weights,
                          int64_t loss_chunk_tokens, const model::AttentionFn& attention, const model::MlpFn& mlp = {},
                          const std::shared_ptr<ops::ActivationOffload>& offload = nullptr);
  // Waits for the reduce-scatters still in flight (before the gradients are read); rethrows the
  // first collective failure.
  void finish();
  // Collective: runs `visit` once per group on every rank, that group's parameters gathered into
  // the module (the others empty). For writing the weights without the whole model on one rank.
  void for_each_group_gathered(const std::function<void()>& visit);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace longalign::train
