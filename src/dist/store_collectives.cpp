// TCPStore-based collectives. Keys are namespaced by a per-process operation counter, which
// matches across ranks because every rank issues the same collectives in the same order.
// Payloads travel in chunks of kChunkBytes: the TCPStore server refuses any value over 8 MiB, and
// gradients of any real model are larger.
#include "longalign/dist/store_collectives.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstring>

#include "longalign/core/error.hpp"
#include "longalign/dist/watchdog.hpp"

namespace longalign::dist {
namespace {

class StoreCollectives final : public train::Collectives {
 public:
  // Ranks [base, base + size) of the job, numbered from 0 here; the whole job by default.
  StoreCollectives(const DistEnv& env, double timeout_s, std::string prefix = "", int base = 0, int size = 0)
      : env_(env), base_(base), rank_(env.rank - base), world_(size > 0 ? size : env.world_size), timeout_s_(timeout_s),
        prefix_(std::move(prefix)) {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = env.rank == 0 && prefix_.empty();  // split channels connect to rank 0's server
    o.numWorkers = env.world_size;
    o.waitWorkers = prefix_.empty();
    o.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    } catch (const std::exception& e) {
      throw RuntimeError("rank " + std::to_string(env.rank) + ": rendezvous at " + env.master_addr + ":" +
                         std::to_string(env.master_port) + " failed within " + std::to_string(int(timeout_s)) +
                         " s: " + first_line(e.what()));
    }
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }

  std::shared_ptr<train::Collectives> split() override {
    return std::make_shared<StoreCollectives>(env_, timeout_s_, prefix_ + "c" + std::to_string(splits_++) + "/", base_,
                                              world_);
  }

  std::shared_ptr<train::Collectives> subgroup(int first, int size) override {
    if (first < 0 || size < 1 || first + size > world_ || rank_ < first || rank_ >= first + size)
      throw RuntimeError("subgroup [" + std::to_string(first) + ", " + std::to_string(first + size) +
                         ") does not hold rank " + std::to_string(rank_) + " of " + std::to_string(world_));
    return std::make_shared<StoreCollectives>(
        env_, timeout_s_, prefix_ + "g" + std::to_string(splits_++) + "/" + std::to_string(first) + "x" + std::to_string(size) + "/",
        base_ + first, size);
  }

  void all_reduce_sum(at::Tensor& t) override {
    const std::string op = prefix_ + "ar/" + std::to_string(seq_++);
    guarded(op, [&] {
      at::Tensor c = t.detach().to(at::kCPU).contiguous();
      put(op + "/" + std::to_string(rank_), c);
      at::Tensor sum;
      for (int r = 0; r < world_; ++r) {
        at::Tensor part = r == rank_ ? c.clone() : take(op + "/" + std::to_string(r), c, r);
        sum = r == 0 ? part : sum.add_(part);
      }
      t.copy_(sum);
      finish(op, world_, -1, c);
    });
  }

  void reduce_sum(at::Tensor& t, int root) override {
    const std::string op = prefix_ + "rd/" + std::to_string(seq_++);
    guarded(op, [&] {
      at::Tensor c = t.detach().to(at::kCPU).contiguous();
      put(op + "/" + std::to_string(rank_), c);
      if (rank_ != root) return;
      at::Tensor sum;
      for (int r = 0; r < world_; ++r) {
        at::Tensor part = r == rank_ ? c.clone() : take(op + "/" + std::to_string(r), c, r);
        sum = r == 0 ? part : sum.add_(part);
      }
      t.copy_(sum);
      for (int r = 0; r < world_; ++r) remove(op + "/" + std::to_string(r), c);
    });
  }

  void broadcast(at::Tensor& t, int root) override {
    const std::string op = prefix_ + "bc/" + std::to_string(seq_++);
    guarded(op, [&] {
      at::Tensor c = t.detach().to(at::kCPU).contiguous();
      if (rank_ == root) put(op + "/" + std::to_string(root), c);
      else t.copy_(take(op + "/" + std::to_string(root), c, root));
      finish(op, 1, root, c);
    });
  }

  void all_gather(at::Tensor& full, const at::Tensor& shard) override {
    const std::string op = prefix_ + "ag/" + std::to_string(seq_++);
    guarded(op, [&] {
      at::Tensor c = shard.detach().to(at::kCPU).contiguous().view(-1);
      if (full.numel() != c.numel() * world_) throw RuntimeError("all_gather: the output is not world x the shard");
      put(op + "/" + std::to_string(rank_), c);
      at::Tensor flat = full.view(-1);
      for (int r = 0; r < world_; ++r)
        flat.narrow(0, r * c.numel(), c.numel()).copy_(r == rank_ ? c : take(op + "/" + std::to_string(r), c, r));
      finish(op, world_, -1, c);
    });
  }

  // world x shard traffic per rank, summed in rank order like all_reduce_sum.
  void reduce_scatter_sum(at::Tensor& shard, const at::Tensor& full) override {
    const std::string op = prefix_ + "rs/" + std::to_string(seq_++);
    guarded(op, [&] {
      at::Tensor c = full.detach().to(at::kCPU).contiguous().view(-1);
      const int64_t n = shard.numel();
      if (c.numel() != n * world_) throw RuntimeError("reduce_scatter: the input is not world x the shard");
      at::Tensor sum;
      exchange(op, c, n, [&](int r, const at::Tensor& part) { sum = r == 0 ? part.clone() : sum.add_(part); });
      shard.view(-1).copy_(sum);
    });
  }

  void all_to_all(at::Tensor& out, const at::Tensor& in) override {
    const std::string op = prefix_ + "aa/" + std::to_string(seq_++);
    guarded(op, [&] {
      at::Tensor c = in.detach().to(at::kCPU).contiguous().view(-1);
      if (c.numel() % world_ != 0 || out.numel() != c.numel())
        throw RuntimeError("all_to_all: the buffers are not world x a chunk of equal size");
      const int64_t n = c.numel() / world_;
      at::Tensor flat = out.view(-1);
      exchange(op, c, n, [&](int r, const at::Tensor& part) { flat.narrow(0, r * n, n).copy_(part); });
    });
  }

  void barrier() override {
    const std::string op = prefix_ + "barrier/" + std::to_string(seq_++);
    guarded(op, [&] {
      if (store_->add(op, 1) == world_) store_->set(op + "/go", std::vector<uint8_t>{1});
      peer_ = -2;  // every other rank
      store_->wait({op + "/go"});
    });
  }

 private:
  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  static constexpr size_t kChunkBytes = size_t{4} << 20;  // well under the server's 8 MiB limit

  static size_t chunks_of(const at::Tensor& c) {
    const size_t n = size_t(c.numel()) * c.element_size();
    return std::max<size_t>(1, (n + kChunkBytes - 1) / kChunkBytes);
  }

  // Store operations that wait on no peer can still hang on the store itself (rank 0's server).
  void on_store() {
    if (watch_ && base_ + rank_ != 0) watch_->waiting_for("rank 0, which hosts the store");
  }

  // `c`'s bytes under key#0, key#1, ...; every rank knows the size from the tensor's shape.
  void put(const std::string& key, const at::Tensor& c) {
    on_store();
    const auto* p = static_cast<const uint8_t*>(c.data_ptr());
    const size_t n = size_t(c.numel()) * c.element_size();
    for (size_t k = 0, chunks = chunks_of(c); k < chunks; ++k) {
      const size_t b = k * kChunkBytes, e = std::min(n, b + kChunkBytes);
      store_->set(key + "#" + std::to_string(k), std::vector<uint8_t>(p + b, p + e));
    }
  }

  // Waits for and reassembles what rank `from` put() under `key`, into a tensor like `like`.
  at::Tensor take(const std::string& key, const at::Tensor& like, int from) {
    peer_ = base_ + from;
    if (watch_) watch_->waiting_for("rank " + std::to_string(peer_) + "'s part");
    at::Tensor t = at::empty_like(like);
    auto* p = static_cast<uint8_t*>(t.data_ptr());
    const size_t n = size_t(like.numel()) * like.element_size();
    for (size_t k = 0, chunks = chunks_of(like); k < chunks; ++k) {
      const size_t b = k * kChunkBytes, e = std::min(n, b + kChunkBytes);
      std::vector<uint8_t> part = store_->get(key + "#" + std::to_string(k));
      if (part.size() != e - b) throw RuntimeError("collective size mismatch: ranks disagree on a tensor's shape");
      std::memcpy(p + b, part.data(), part.size());
    }
    return t;
  }

  // Slice s of `c` (n elements each) goes to rank s under op/rank/s; `use(r, part)` then gets,
  // in rank order, the slice rank r sent here (this rank's own from `c`). Each reader deletes
  // what it read: no rank needs another's slice for it.
  template <typename F>
  void exchange(const std::string& op, const at::Tensor& c, int64_t n, F&& use) {
    auto key = [&](int from, int to) { return op + "/" + std::to_string(from) + "/" + std::to_string(to); };
    for (int s = 0; s < world_; ++s)
      if (s != rank_) put(key(rank_, s), c.narrow(0, s * n, n));
    for (int r = 0; r < world_; ++r) use(r, r == rank_ ? c.narrow(0, r * n, n) : take(key(r, rank_), c.narrow(0, 0, n), r));
    for (int r = 0; r < world_; ++r)
      if (r != rank_) remove(key(r, rank_), c.narrow(0, 0, n));
  }

  void remove(const std::string& key, const at::Tensor& like) {
    for (size_t k = 0, chunks = chunks_of(like); k < chunks; ++k) store_->deleteKey(key + "#" + std::to_string(k));
  }

  // After everyone read: the last rank to finish deletes the payload keys.
  void finish(const std::string& op, int writers, int only_writer, const at::Tensor& like) {
    on_store();
    if (store_->add(op + "/done", 1) != world_) return;
    for (int r = 0; r < world_; ++r)
      if (writers == world_ || r == only_writer) remove(op + "/" + std::to_string(r), like);
  }

  // Runs one collective under the watchdog and turns store errors into messages that name the
  // collective and the peer it waited for.
  template <typename F>
  void guarded(const std::string& op, F&& f) {
    const std::string me = "rank " + std::to_string(base_ + rank_) + ": collective " + op;
    WatchedCollective watch(me, timeout_s_);
    watch_ = &watch;
    peer_ = -1;
    try {
      f();
      watch_ = nullptr;
    } catch (const c10::Error& e) {
      watch_ = nullptr;
      const std::string what = first_line(e.what());
      if (what.find("payload") != std::string::npos)  // the store refused a value: not a dead peer
        throw RuntimeError(me + ": the TCPStore refused a payload (" + what + ")");
      const bool lost = what.find("reset") != std::string::npos || what.find("Broken pipe") != std::string::npos ||
                        what.find("connect") != std::string::npos;
      if (lost && base_ + rank_ != 0)
        throw RuntimeError(me + ": lost the connection to rank 0, which hosts the store: rank 0 died (" + what + ")");
      const std::string peer = peer_ >= 0 ? "rank " + std::to_string(peer_) : peer_ == -2 ? "another rank" : "a peer rank";
      throw RuntimeError(me + ": " + peer + " sent nothing within " + std::to_string(int(timeout_s_)) +
                         " s (distributed.timeout_s): it died or hung (" + what + ")");
    } catch (...) {
      watch_ = nullptr;
      throw;
    }
  }

  DistEnv env_;
  int base_, rank_, world_;
  double timeout_s_;
  std::string prefix_;
  uint64_t seq_ = 0, splits_ = 0;
  int peer_ = -1;                       // the rank the current collective waits for (-2: all)
  WatchedCollective* watch_ = nullptr;  // the current collective's watch
  c10::intrusive_ptr<c10d::TCPStore> store_;
};

}  // namespace

std::shared_ptr<train::Collectives> make_store_collectives(const DistEnv& env, double timeout_s) {
  return std::make_shared<StoreCollectives>(env, timeout_s);
}

}  // namespace longalign::dist
