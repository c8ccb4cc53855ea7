// The parallelism pass (torchtitan's shape): the single-device model goes in, and comes out
// wrapped in the configured data parallelism: replicated weights with gradients all-reduced
// (ZeRO-0) or reduced to the owners of their optimizer state (ZeRO-1/2), or sharded weights
// (ZeRO-3, see sharded_model.hpp), with the optimizer on the device or offloaded to the host.
// The step function sees only this interface, so a new stage is a new implementation here and
// not new branches in the loop.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>

#include "longalign/model/llama.hpp"
#include "longalign/train/adamw.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::train {

struct MicroBatch {
  model::PackedInput in;
  at::Tensor labels, weights;  // on the device
};

struct ParallelOptions {
  int zero = 0;
  double bucket_mb = 25;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  AdamWConfig adam;
  bool activation_checkpointing = true;  // ZeRO-3 recomputes every layer whatever this says
  model::AttentionFn attention;
  int64_t loss_chunk_tokens = 4096;
  int64_t tiled_mlp_tokens = 0;  // > 0: the MLP runs in chunks of this many tokens (ops/tiled_mlp.hpp)
  bool offload_activations = false;  // checkpointed layers' inputs wait in host memory
  // The pass's second channel (ZeRO-3's background gathers, ZeRO 0-1's overlapped all-reduce),
  // split from comm beforehand by every rank, so that ranks can run the pass in turns; null: the
  // pass splits it (a collective: all ranks must then run the pass at the same time).
  std::shared_ptr<Collectives> channel;
  // Ulysses sequence parallelism (sequence_parallel.hpp): this rank's group, which shares every
  // micro-batch, each rank taking its slice; null: none. Gradients still reduce over all of comm.
  std::shared_ptr<Collectives> sequence_group;
};

using TensorSink = std::function<void(const std::string& name, const at::Tensor& t)>;

class ParallelModel {
 public:
  virtual ~ParallelModel() = default;
  // Every micro-step is collective: every rank runs units_per_step / world of them, a rank short
  // of units running idle ones.
  virtual bool lockstep() const = 0;
  // Forward and backward of one micro-batch (`last`: this rank's last of the step); its loss
  // (under sequence parallelism the whole micro-batch is passed, and the loss is this rank's
  // slice's).
  virtual double micro_step(const MicroBatch& b, bool last) = 0;
  // A lockstep rank without a unit: takes part in the micro-step's collectives, adds nothing.
  virtual void idle_micro_step() = 0;
  // After this rank's micro-steps (`had_units`: at least one real one): gradients reduced to
  // where the optimizer reads them.
  virtual void finish_gradients(bool had_units) = 0;
  // After the optimizer update: every rank holds the new weights it needs.
  virtual void after_update() = 0;
  // Collective: rank 0's `sink` receives every HF-named tensor in `dtype` (under ZeRO-3 one
  // gathered group at a time, never the whole model); under LoRA only the trained tensors, under
  // PEFT's names (model/lora.hpp). Frozen parameters get no gradients and no optimizer state.
  virtual void emit_weights(at::ScalarType dtype, const TensorSink& sink) = 0;
  AdamW& optimizer() { return *opt_; }

 protected:
  std::unique_ptr<AdamW> opt_;
};

// `m` holds its initial (or checkpoint) weights, on the CPU. `comm` null: one process.
std::unique_ptr<ParallelModel> parallelize(model::LlamaForCausalLM m, Collectives* comm, const ParallelOptions& o);

}  // namespace longalign::train
