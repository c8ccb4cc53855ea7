// ProcessGroupNCCL wrapper. Tensors on the CPU (e.g. the loss scalars) travel through the GPU.
#include "longalign/dist/nccl_collectives.hpp"

#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "longalign/core/error.hpp"
#include "longalign/train/trainer.hpp"

namespace longalign::dist {
namespace {

class NcclCollectives final : public train::Collectives {
 public:
  NcclCollectives(const DistEnv& env, double timeout_s) : rank_(env.rank), world_(env.world_size), timeout_s_(timeout_s) {
    const int gpu = train::rank_gpu_index(env.local_rank);  // the trainer picks the same one
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = env.rank == 0;
    o.numWorkers = env.world_size;
    o.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    init(store_, gpu);
  }

  // A split or subgroup: its own communicator over ranks [first, first + size) of the parent's,
  // rendezvous under a key prefix of the same store (only the members meet there).
  NcclCollectives(const NcclCollectives& parent, const std::string& prefix, int first, int size)
      : rank_(parent.rank_ - first), world_(size), timeout_s_(parent.timeout_s_), prefix_(prefix), store_(parent.store_) {
    init(c10::make_intrusive<c10d::PrefixStore>(prefix, store_), parent.device_.index());
  }

  std::shared_ptr<train::Collectives> split() override {
    return std::make_shared<NcclCollectives>(*this, prefix_ + "split" + std::to_string(splits_++), 0, world_);
  }

  std::shared_ptr<train::Collectives> subgroup(int first, int size) override {
    if (first < 0 || size < 1 || first + size > world_ || rank_ < first || rank_ >= first + size)
      throw RuntimeError("subgroup [" + std::to_string(first) + ", " + std::to_string(first + size) +
                         ") does not hold rank " + std::to_string(rank_) + " of " + std::to_string(world_));
    return std::make_shared<NcclCollectives>(
        *this, prefix_ + "group" + std::to_string(splits_++) + "/" + std::to_string(first) + "x" + std::to_string(size),
        first, size);
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }

  void all_reduce_sum(at::Tensor& t) override {
    run(t, [&](std::vector<at::Tensor>& v) { return pg_->allreduce(v); });
  }
  void reduce_sum(at::Tensor& t, int root) override {
    c10d::ReduceOptions o;
    o.rootRank = root;
    run(t, [&](std::vector<at::Tensor>& v) { return pg_->reduce(v, o); });
  }
  void broadcast(at::Tensor& t, int root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    run(t, [&](std::vector<at::Tensor>& v) { return pg_->broadcast(v, o); });
  }
  void all_gather(at::Tensor& full, const at::Tensor& shard) override {
    at::Tensor out = full.is_cuda() && full.is_contiguous() ? full : at::empty_like(full, full.options().device(device_));
    at::Tensor in = shard.to(device_).contiguous();
    wait([&] { return pg_->_allgather_base(out, in); });
    if (!out.is_same(full)) full.copy_(out);
  }
  void reduce_scatter_sum(at::Tensor& shard, const at::Tensor& full) override {
    at::Tensor out = shard.is_cuda() && shard.is_contiguous() ? shard : at::empty_like(shard, shard.options().device(device_));
    at::Tensor in = full.to(device_).contiguous();
    wait([&] { return pg_->_reduce_scatter_base(out, in); });
    if (!out.is_same(shard)) shard.copy_(out);
  }
  void all_to_all(at::Tensor& out, const at::Tensor& in) override {
    at::Tensor o = out.is_cuda() && out.is_contiguous() ? out : at::empty_like(out, out.options().device(device_));
    at::Tensor i = in.to(device_).contiguous().view(-1), o_flat = o.view(-1);
    std::vector<int64_t> even;  // empty split sizes: world equal chunks of dim 0 (flat, as promised)
    wait([&] { return pg_->alltoall_base(o_flat, i, even, even); });
    if (!o.is_same(out)) out.copy_(o);
  }
  void barrier() override { pg_->barrier()->wait(); }

 private:
  template <typename F>
  void run(at::Tensor& t, F&& op) {
    std::vector<at::Tensor> v = {t.is_cuda() ? t.contiguous() : t.to(device_)};
    wait([&] { return op(v); });
    if (!v[0].is_same(t)) t.copy_(v[0]);
  }

  template <typename F>
  void wait(F&& launch) {
    try {
      launch()->wait();
    } catch (const c10::Error& e) {
      throw RuntimeError("rank " + std::to_string(rank_) + ": NCCL collective failed or timed out: " +
                         std::string(e.what()).substr(0, 300));
    }
  }

  void init(const c10::intrusive_ptr<c10d::Store>& store, int gpu) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s_ * 1000));
    pg_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, world_, opts);
    device_ = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(gpu));
  }

  int rank_, world_;
  double timeout_s_;
  std::string prefix_;  // this communicator's keys in the store ("" for the first)
  int splits_ = 0;
  at::Device device_{at::kCUDA};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> pg_;
};

}  // namespace

std::shared_ptr<train::Collectives> make_nccl_collectives(const DistEnv& env, double timeout_s) {
  return std::make_shared<NcclCollectives>(env, timeout_s);
}

}  // namespace longalign::dist
