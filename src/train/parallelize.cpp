// The two data-parallel shapes behind ParallelModel; see the header.
#include "longalign/train/parallelize.hpp"

#include <torch/torch.h>

#include <limits>

#include "longalign/model/lora.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/activation_checkpoint.hpp"
#include "longalign/ops/lm_loss.hpp"
#include "longalign/ops/tiled_mlp.hpp"
#include "longalign/train/overlapped_all_reduce.hpp"
#include "longalign/train/sequence_parallel.hpp"
#include "longalign/train/sharded_model.hpp"

namespace longalign::train {
namespace {

// A world of one, so that ZeRO-3's code path (and its memory layout) also runs on one GPU.
class SingleRank final : public Collectives {
 public:
  int rank() const override { return 0; }
  int world() const override { return 1; }
  void all_reduce_sum(at::Tensor&) override {}
  void reduce_sum(at::Tensor&, int) override {}
  void broadcast(at::Tensor&, int) override {}
  void all_gather(at::Tensor& full, const at::Tensor& shard) override { full.view(-1).copy_(shard.reshape({-1})); }
  void reduce_scatter_sum(at::Tensor& shard, const at::Tensor& full) override {
    shard.view(-1).copy_(full.reshape({-1}));
  }
  void all_to_all(at::Tensor& out, const at::Tensor& in) override { out.view(-1).copy_(in.reshape({-1})); }
  void barrier() override {}
  std::shared_ptr<Collectives> split() override { return std::make_shared<SingleRank>(); }
  std::shared_ptr<Collectives> subgroup(int, int) override { return std::make_shared<SingleRank>(); }
};

// The tensors a checkpoint keeps: the HF weights, or for LoRA the adapter under PEFT's names.
model::NamedTensors saved_state(model::LlamaForCausalLMImpl& m, bool lora, at::ScalarType dtype) {
  return lora ? model::adapter_state(m, dtype) : model::hf_state(m, dtype);
}

// Keys LoRA dropout masks on (optimizer step, micro-step of this rank), so that a layer
// recomputed in backward draws the mask of its forward (lora_linear.hpp).
class DropoutClock {
 public:
  DropoutClock(model::LlamaForCausalLMImpl& m, Collectives* comm) : state_(model::lora_dropout_state(m)) {
    if (state_) state_->rank = comm ? comm->rank() : 0;
  }
  void tick(int64_t step) {
    if (!state_) return;
    state_->micro = state_->step == step ? state_->micro + 1 : 0;
    state_->step = step;
  }

 private:
  std::shared_ptr<model::LoraDropoutState> state_;
};

// Parameters that train: all of them, or under LoRA the adapters and saved modules.
std::vector<std::pair<std::string, at::Tensor>> trainable(model::LlamaForCausalLMImpl& m) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (auto& p : m.named_parameters())
    if (p.value().requires_grad()) named.emplace_back(p.key(), p.value());
  return named;
}

// What this rank computes of a micro-batch: all of it, or its sequence-parallel slice.
MicroBatch own_share(const MicroBatch& b, const ParallelOptions& o) {
  if (!o.sequence_group) return b;
  return slice_for_rank(b, o.sequence_group->world(), o.sequence_group->rank());
}

// The options a wrapper runs with: attention through the sequence-parallel exchange if asked.
ParallelOptions resolved(ParallelOptions o) {
  if (o.sequence_group && o.sequence_group->world() > 1) o.attention = ulysses_attention(o.attention, o.sequence_group);
  return o;
}

// ZeRO 0-2: every rank holds the whole model.
class Replicated final : public ParallelModel {
 public:
  Replicated(model::LlamaForCausalLM m, Collectives* comm, const ParallelOptions& o)
      : m_(std::move(m)), comm_(comm), o_(resolved(o)), lora_(model::has_lora(*m_)), clock_(*m_, comm) {
    m_->to(o.device, o.dtype);
    opt_ = std::make_unique<AdamW>(trainable(*m_), o.adam);
    if (comm && o.zero >= 1) opt_->shard(comm->world(), comm->rank(), o.zero);
    // Without gradient sharding, gradients are all-reduced in buckets while backward runs.
    // Under sequence parallelism, one bucket: it is complete only once backward (and its
    // exchanges on the sequence group's communicator) is done, so NCCL sees the two
    // communicators' calls in the same order on every rank (CPU runs do the same, so that CI
    // runs this path).
    if (comm && !opt_->grads_sharded())
      overlap_ = std::make_unique<OverlappedAllReduce>(
          *opt_, o.channel ? o.channel : comm->split(),
          o.sequence_group ? std::numeric_limits<int64_t>::max() : int64_t(o.bucket_mb * (1 << 20)));
    if (o.activation_checkpointing)
      runner_ = ops::checkpointed_layers(o.offload_activations ? std::make_shared<ops::ActivationOffload>() : nullptr);
    if (o.tiled_mlp_tokens > 0) mlp_ = ops::tiled_mlp(o.tiled_mlp_tokens);
  }

  bool lockstep() const override { return opt_->grads_sharded(); }

  double micro_step(const MicroBatch& whole, bool last) override {
    if (overlap_ && last) overlap_->arm();  // the last backward of this step
    clock_.tick(opt_->steps_taken());
    const MicroBatch b = own_share(whole, o_);
    at::Tensor h = m_->hidden_states(b.in, o_.attention, runner_, mlp_);
    at::Tensor loss = ops::weighted_lm_loss(h, m_->lm_head_weight(), b.labels, b.weights, o_.loss_chunk_tokens);
    loss.backward();
    if (opt_->grads_sharded()) opt_->reduce_grads_to_owners(*comm_);
    else if (!overlap_ || !last) opt_->accumulate_grads();
    return loss.item<double>();
  }

  void idle_micro_step() override { opt_->reduce_grads_to_owners(*comm_); }

  void finish_gradients(bool had_units) override {
    if (!overlap_) return;
    if (!had_units) overlap_->arm();  // no unit this step: contribute the zero accumulators
    overlap_->wait();
  }

  void after_update() override {
    if (opt_->sharded()) opt_->sync_params(*comm_);
  }

  void emit_weights(at::ScalarType dtype, const TensorSink& sink) override {
    if (comm_ && comm_->rank() != 0) return;
    for (auto& [name, t] : saved_state(*m_, lora_, dtype)) sink(name, t);
  }

 private:
  model::LlamaForCausalLM m_;
  Collectives* comm_;
  ParallelOptions o_;
  bool lora_;
  DropoutClock clock_;
  model::LayerRunner runner_;
  model::MlpFn mlp_;  // empty: untiled
  std::unique_ptr<OverlappedAllReduce> overlap_;
};

// ZeRO-3: weights, gradients and optimizer state sharded.
class Sharded final : public ParallelModel {
 public:
  Sharded(model::LlamaForCausalLM m, Collectives* comm, const ParallelOptions& o)
      : m_(std::move(m)), comm_(comm), o_(resolved(o)), lora_(model::has_lora(*m_)), clock_(*m_, comm),
        sharded_(*m_, o.channel ? o.channel : comm ? comm->split() : std::make_shared<SingleRank>(), o.device,
                 o.dtype, o.adam.offload, /*in_order=*/o.sequence_group != nullptr) {
    m_->to(o.device, o.dtype);  // what is left: empty parameters
    opt_ = std::make_unique<AdamW>(AdamW::over_pieces(sharded_.pieces(), o.adam));
    opt_->shard(comm ? comm->world() : 1, comm ? comm->rank() : 0, 3);
    if (o.tiled_mlp_tokens > 0) mlp_ = ops::tiled_mlp(o.tiled_mlp_tokens);
    if (o.offload_activations) offload_ = std::make_shared<ops::ActivationOffload>();
  }

  bool lockstep() const override { return true; }

  double micro_step(const MicroBatch& whole, bool) override {
    clock_.tick(opt_->steps_taken());
    const MicroBatch b = own_share(whole, o_);
    return sharded_.forward_backward(b.in, b.labels, b.weights, o_.loss_chunk_tokens, o_.attention, mlp_, offload_);
  }

  // One token, ignored by the loss: the same gathers and reduce-scatters, a zero gradient (a
  // sequence-parallel group is idle together, and exchanges its padded slices alike).
  void idle_micro_step() override {
    auto i64 = torch::TensorOptions().dtype(torch::kLong).device(o_.device);
    MicroBatch b{{torch::zeros({1}, i64), torch::zeros({1}, i64),
                  torch::tensor({0, 1}, torch::TensorOptions().dtype(torch::kInt).device(o_.device)), 1},
                 torch::full({1}, -100, i64), torch::zeros({1}, torch::TensorOptions().device(o_.device))};
    micro_step(b, false);
  }

  void finish_gradients(bool) override { sharded_.finish(); }
  void after_update() override {}  // each rank updated its own shard in place

  void emit_weights(at::ScalarType dtype, const TensorSink& sink) override {
    const bool writer = !comm_ || comm_->rank() == 0;
    sharded_.for_each_group_gathered([&] {
      if (!writer) return;
      for (auto& [name, t] : saved_state(*m_, lora_, dtype))
        if (t.numel() > 0) sink(name, t);  // parameters of other groups are empty now
    });
  }

 private:
  model::LlamaForCausalLM m_;
  Collectives* comm_;
  ParallelOptions o_;
  bool lora_;
  DropoutClock clock_;
  ShardedModel sharded_;
  model::MlpFn mlp_;  // empty: untiled
  std::shared_ptr<ops::ActivationOffload> offload_;  // null: layer inputs stay on the device
};

}  // namespace

std::unique_ptr<ParallelModel> parallelize(model::LlamaForCausalLM m, Collectives* comm, const ParallelOptions& o) {
  if (o.zero >= 3) return std::make_unique<Sharded>(std::move(m), comm, o);
  return std::make_unique<Replicated>(std::move(m), comm, o);
}

}  // namespace longalign::train
