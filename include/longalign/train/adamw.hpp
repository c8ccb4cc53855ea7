// AdamW over fp32 master weights. Parameters may be bf16 (GPU) or fp32 (CPU); gradients of
// micro-steps are accumulated in fp32. Weight decay applies to tensors of 2+ dimensions
// (matrices, embeddings), never to norms. The update matches torch.optim.AdamW.
//
// The optimizer works on pieces: a whole parameter, or (ZeRO-3) the part of a parameter that
// lies in this rank's flat shard, [offset, offset + numel) of the parameter flattened. Its saved
// state names each piece by parameter and offset, so any world size and any ZeRO stage can load
// what any other wrote.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "longalign/model/safetensors.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::train {

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  // Master weights, moments and gradient accumulators in host memory (pinned when the
  // parameters are on a GPU); the update runs on the CPU and copies the new weights back.
  bool offload = false;
};

struct ParamPiece {
  std::string name;        // the parameter's name
  at::Tensor param;        // the piece's weights (a view into the parameter or a shard)
  int64_t offset = 0;      // where the piece starts in the parameter, flattened
  int64_t full_numel = 0;  // the whole parameter's size (0: the piece is the whole parameter)
  bool decay = true;       // weight decay applies (the parameter has 2+ dimensions)
  at::Tensor grad;         // optional: an fp32 accumulator someone else fills (ZeRO-3 shards)
};

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, AdamWConfig cfg);
  static AdamW over_pieces(std::vector<ParamPiece> pieces, AdamWConfig cfg);

  // After each micro-step's backward: moves parameter gradients into the fp32 accumulators.
  void accumulate_grads();
  // L2 norm of the accumulated gradients; scales them to `max_norm` when above (max_norm > 0).
  // When gradients are sharded each rank holds only its own: `comm` completes the norm.
  double clip_grad_norm(double max_norm, train::Collectives* comm = nullptr);
  void step(double lr);  // then clears the accumulators
  void zero_grad();

  // Data parallelism (gradients without sharding: OverlappedAllReduce). ZeRO-1: from now on this
  // rank keeps master weights and moments only for the parameters it owns (a deterministic
  // size-balanced partition) and updates only those in step(); sync_params() then broadcasts
  // every parameter from its owner. ZeRO-2 (stage 2) also drops the gradient accumulators of
  // parameters owned elsewhere: reduce_grads_to_owners() then replaces accumulate_grads() after
  // every micro-step. ZeRO-3: the pieces given are already this rank's shard (stage 3): all owned,
  // gradients arrive through the pieces' own accumulators.
  void shard(int world, int rank, int stage = 1);
  void reduce_grads_to_owners(train::Collectives& comm);
  void sync_params(train::Collectives& comm);
  bool grads_sharded() const { return stage_ >= 2; }
  bool sharded() const { return world_ > 1; }  // each rank saves its own state

  int64_t steps_taken() const { return t_; }
  // Parameters and their fp32 gradient accumulators, in registration order (for gradient sync).
  size_t num_params() const { return slots_.size(); }
  const at::Tensor& param(size_t i) const { return slots_[i].param; }
  at::Tensor& grad_accumulator(size_t i) { return slots_[i].grad; }
  // exp_avg.NAME, exp_avg_sq.NAME, master.NAME (low-precision params only) and step; a piece
  // of a parameter is saved flat as NAME@OFFSET.
  model::NamedTensors state() const;
  // Loads the owned pieces from whichever of `files` hold them (any world size or stage wrote
  // them); an element no file holds is an error naming it.
  void load_state(const std::vector<const model::SafetensorsFile*>& files);

 private:
  struct Slot {
    std::string name;
    at::Tensor param, master, grad, m, v;  // master aliases param for fp32 params on the same device
    int64_t offset = 0, full_numel = 0;
    bool decay;
    int owner = 0;
  };
  void add_slot(ParamPiece p);
  bool owns(const Slot& s) const { return s.owner == rank_; }
  std::string key(const std::string& kind, const Slot& s) const;
  std::vector<Slot> slots_;
  AdamWConfig cfg_;
  int64_t t_ = 0;
  int world_ = 1, rank_ = 0, stage_ = 0;
};

}  // namespace longalign::train
