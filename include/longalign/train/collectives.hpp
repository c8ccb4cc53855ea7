// What the trainer needs from data parallelism, as an interface so the single-device loop in
// train/ stays free of any communication library; dist/ provides the implementations (a
// TCPStore-based one for CPU, NCCL for GPUs). Every operation is collective: all ranks call it
// in the same order, and results are bitwise identical on all ranks.
#pragma once
#include <memory>

// at::Tensor is only forward-declared so that torch-free code (the CLI) can hold a Collectives.
namespace at {
class Tensor;
}

namespace longalign::train {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  // In-place sum over ranks, reduced in rank order (deterministic).
  virtual void all_reduce_sum(at::Tensor& t) = 0;
  // In-place sum over ranks, in rank order, valid on `root` only (other ranks' `t` is unchanged).
  virtual void reduce_sum(at::Tensor& t, int root) = 0;
  // In-place copy of `root`'s tensor to every rank.
  virtual void broadcast(at::Tensor& t, int root) = 0;
  // Every rank's `shard` (same numel everywhere) concatenated in rank order into `full`
  // (numel world x shard's); used by ZeRO-3 to rebuild a layer's weights.
  virtual void all_gather(at::Tensor& full, const at::Tensor& shard) = 0;
  // `full` (numel world x n, flat) summed over ranks in rank order; this rank's n-slice lands in
  // `shard`. ZeRO-3 hands each rank the gradient of the parameters it owns this way.
  virtual void reduce_scatter_sum(at::Tensor& shard, const at::Tensor& full) = 0;
  // `in` (flat, world x n) cut into world equal chunks: chunk r goes to rank r, and chunk r of
  // `out` (same numel) is what rank r sent here. Ulysses sequence parallelism's exchange.
  virtual void all_to_all(at::Tensor& out, const at::Tensor& in) = 0;
  virtual void barrier() = 0;
  // A second, independent channel among the same ranks (own connection and key space or
  // communicator), so a background thread can run collectives without interleaving with this
  // one's. Collective: every rank calls it at the same point.
  virtual std::shared_ptr<Collectives> split() = 0;
  // A channel among ranks [first, first + size) of this one, which must include this rank; its
  // ranks are numbered from 0. Every rank calls it at the same point, each naming its own group
  // (groups do not overlap), e.g. the sequence-parallel groups of consecutive ranks.
  virtual std::shared_ptr<Collectives> subgroup(int first, int size) = 0;
};

}  // namespace longalign::train
