// ZeRO-3 parameter sharding; see the header. The module's Parameters stay the autograd leaves
// the layers use: gathering swaps views of the gathered buffer into them (set_data), releasing
// swaps empty tensors back, so the layer code is the single-device code unchanged.
//
// On a GPU the collectives run on the worker thread's own stream, so that NCCL never waits for
// the compute queued on the default stream (which it would if both shared it, and the prefetch
// would then hide nothing). Each job first waits for an event recorded on the submitting
// thread's stream when it was queued (the shard or gradient it reads is complete), and ends by
// synchronizing its stream, so a finished job's results are ready for any stream.
#include "longalign/train/sharded_model.hpp"

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "longalign/core/error.hpp"
#include "longalign/ops/lm_loss.hpp"

namespace longalign::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Runs collectives on one background thread in submission order (the same on every rank, since
// every rank submits the same sequence). After a failure the rest fail at once with the same
// error (the one naming the dead peer) instead of each waiting out the timeout.
class CommWorker {
 public:
  // `cuda_device` >= 0: the thread works on that GPU (a new thread's current device is 0), on
  // a stream of its own.
  explicit CommWorker(int cuda_device) : cuda_device_(cuda_device), thread_([this] {
    if (cuda_device_ >= 0) {
      const auto d = static_cast<c10::DeviceIndex>(cuda_device_);
      c10::cuda::set_device(d);
      c10::cuda::setCurrentCUDAStream(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, d));
    }
    run();
  }) {}
  ~CommWorker() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // In order: every job runs at once on the submitting thread instead (see the header).
  void run_in_order() { in_order_ = true; }

  // Runs `fn` after the work queued so far on the caller's current stream.
  std::shared_future<void> submit(std::function<void()> fn) {
    if (in_order_) {
      std::promise<void> done;
      try {
        fn();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
      return done.get_future().share();
    }
    if (cuda_device_ >= 0) {
      auto ready = std::make_shared<at::cuda::CUDAEvent>();
      ready->record(c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(cuda_device_)));
      fn = [ready, inner = std::move(fn)] {
        const auto stream = c10::cuda::getCurrentCUDAStream();
        ready->block(stream);
        inner();
        stream.synchronize();
      };
    }
    Job job{std::move(fn), {}};
    std::shared_future<void> f = job.done.get_future().share();
    {
      std::lock_guard lk(mu_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_all();
    return f;
  }

 private:
  struct Job {
    std::function<void()> fn;
    std::promise<void> done;
  };

  void run() {
    std::exception_ptr failed;
    for (;;) {
      Job job;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      if (failed) {
        job.done.set_exception(failed);
        continue;
      }
      try {
        job.fn();
        job.done.set_value();
      } catch (...) {
        failed = std::current_exception();
        job.done.set_exception(failed);
      }
    }
  }

  int cuda_device_;
  bool in_order_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: it starts running in the constructor
};

struct Group {
  // The module's Parameters, and what their emptied tensors no longer say: name, shape, size,
  // start in the flat group.
  std::vector<at::Tensor> params;
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<int64_t> numels, offsets;
  int64_t numel = 0, shard = 0;
  at::Tensor shard_w, grad_shard;  // this rank's slice [rank x shard, (rank + 1) x shard)
  at::Tensor full;                 // the gathered buffer, while requested
  std::shared_future<void> ready;
};

}  // namespace

struct ShardedModel::Impl {
  model::LlamaForCausalLMImpl& m;
  std::shared_ptr<Collectives> ch;
  int world, rank;
  at::Device device;
  at::ScalarType dtype, reduce_dtype;
  bool tied;
  std::vector<Group> groups;  // 0: embedding, 1..L: layers, L + 1: head
  CommWorker worker{device.is_cuda() ? int(device.has_index() ? device.index() : c10::cuda::current_device()) : -1};
  std::deque<std::shared_future<void>> scatters;

  Impl(model::LlamaForCausalLMImpl& m_, std::shared_ptr<Collectives> c, at::Device dev, at::ScalarType dt)
      : m(m_), ch(std::move(c)), world(ch->world()), rank(ch->rank()), device(dev), dtype(dt),
        // CPU sums in fp64 so that rank-order sums round once (the replicated path's convention).
        reduce_dtype(dev.is_cuda() ? at::kFloat : at::kDouble), tied(!m_.lm_head) {}

  int head() const { return int(groups.size()) - 1; }
  int layers() const { return int(groups.size()) - 2; }

  at::Tensor empty_param() const { return at::empty({0}, at::TensorOptions().dtype(dtype).device(device)); }

  // Starts the all-gather of group g unless already under way. A world of one holds the whole
  // group already: its shard is the gathered buffer (no second copy of the weights).
  void request(int g) {
    Group& G = groups[size_t(g)];
    if (G.full.defined()) return;
    if (world == 1) {
      G.full = G.shard_w;
      std::promise<void> done;
      done.set_value();
      G.ready = done.get_future().share();
      return;
    }
    G.full = at::empty({G.shard * world}, at::TensorOptions().dtype(dtype).device(device));
    at::Tensor full = G.full, shard = G.shard_w;
    G.ready = worker.submit([this, full, shard]() mutable { ch->all_gather(full, shard); });
  }

  // Waits for group g's weights and puts them into the module.
  void acquire(int g) {
    request(g);
    Group& G = groups[size_t(g)];
    G.ready.get();
    torch::NoGradGuard ng;
    for (size_t i = 0; i < G.params.size(); ++i)
      G.params[i].set_data(G.full.narrow(0, G.offsets[i], G.numels[i]).view(G.shapes[i]));
  }

  void release(int g) {
    Group& G = groups[size_t(g)];
    torch::NoGradGuard ng;
    for (auto& p : G.params) {
      p.set_data(empty_param());
      if (p.grad().defined()) p.mutable_grad().reset();
    }
    G.full = at::Tensor();
    G.ready = {};
  }

  // Before a full-size gradient buffer is made: at most one other stays in flight, so two such
  // buffers exist at a time (one reducing while the next layer's backward fills the other).
  void make_room() {
    while (!scatters.empty()) {
      auto f = scatters.front();
      if (scatters.size() < 2 && f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) break;
      scatters.pop_front();
      f.get();
    }
  }

  // Hands `flat` (the group's whole gradient, reduce dtype; made after make_room()) to the
  // owners of its shards.
  void scatter(int g, at::Tensor flat) {
    Group& G = groups[size_t(g)];
    at::Tensor acc = G.grad_shard;
    const int64_t n = G.shard;
    scatters.push_back(worker.submit([this, flat, acc, n]() mutable {
      at::Tensor out = flat.narrow(0, 0, n);  // a world of one: the whole buffer is its own
      if (world > 1) {
        out = at::empty({n}, flat.options());
        ch->reduce_scatter_sum(out, flat);
      }
      torch::NoGradGuard ng;
      acc.add_(out.to(acc.device(), acc.scalar_type()));
    }));
  }

  // A zeroed full-size (padded) gradient buffer of group g, in the reduce dtype, once there is room.
  at::Tensor new_flat(int g) {
    make_room();
    return at::zeros({groups[size_t(g)].shard * world}, at::TensorOptions().dtype(reduce_dtype).device(device));
  }

  // The module's gradients of group g (as left by a backward), flattened, then cleared.
  at::Tensor flat_grads(int g) {
    at::Tensor flat = new_flat(g);
    Group& G = groups[size_t(g)];
    torch::NoGradGuard ng;
    for (size_t i = 0; i < G.params.size(); ++i) {
      at::Tensor& p = G.params[i];
      if (!p.grad().defined()) continue;
      flat.narrow(0, G.offsets[i], p.grad().numel()).copy_(p.grad().reshape({-1}));
      p.mutable_grad().reset();
    }
    return flat;
  }

  // The module's gradients of group g (as left by a backward) handed to the owners of their
  // shards, then cleared. A world of one owns everything: each .grad is added to the accumulator
  // as it is (the same roundings as through the flat buffer), without the two full-size fp32
  // buffers of the group, which on one GPU are gigabytes (Llama-3.1's 128K-token vocabulary makes
  // the head 525M parameters).
  void reduce_grads(int g) {
    if (world > 1) {
      scatter(g, flat_grads(g));
      return;
    }
    make_room();
    Group& G = groups[size_t(g)];
    std::vector<std::pair<int64_t, at::Tensor>> parts;
    for (size_t i = 0; i < G.params.size(); ++i) {
      at::Tensor& p = G.params[i];
      if (!p.grad().defined()) continue;
      parts.emplace_back(G.offsets[i], p.grad().reshape({-1}));
      p.mutable_grad().reset();
    }
    at::Tensor acc = G.grad_shard;
    scatters.push_back(worker.submit([parts = std::move(parts), acc]() mutable {
      torch::NoGradGuard ng;
      // add_ widens the low-precision gradient as it adds: no full-precision temporary.
      for (auto& [offset, grad] : parts) acc.narrow(0, offset, grad.numel()).add_(grad.to(acc.device()));
    }));
  }

  void finish() {
    while (!scatters.empty()) {
      auto f = scatters.front();
      scatters.pop_front();
      f.get();
    }
  }
};

namespace {

struct Call : torch::CustomClassHolder {
  ShardedModel::Impl* impl = nullptr;
  int group = 0;
  model::LayerContext ctx;
  at::Tensor ids, labels, weights;
  int64_t chunk = 0;
  std::shared_ptr<ops::ActivationOffload> offload;  // layers: where their inputs wait (null: saved)
  std::shared_ptr<ops::OffloadedInput> input;
};

c10::intrusive_ptr<Call> call_of(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<Call>(ctx->saved_data["call"].toCapsule());
}

// Embedding lookup. `anchor` is an empty tensor that requires grad: without an input that does,
// autograd would never call backward (the token ids do not).
struct ShardedEmbedding : torch::autograd::Function<ShardedEmbedding> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& anchor, c10::intrusive_ptr<Call> call) {
    auto& s = *call->impl;
    s.acquire(0);
    s.request(1);
    at::Tensor out = torch::embedding(s.m.model->embed_tokens->weight, call->ids);
    s.release(0);
    ctx->saved_data["call"] = c10::IValue::make_capsule(call);
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto call = call_of(ctx);
    auto& s = *call->impl;
    if (!s.groups[0].params[0].requires_grad()) return {at::Tensor(), at::Tensor()};  // frozen embedding (LoRA)
    const auto& shape = s.groups[0].shapes[0];
    at::Tensor flat = s.new_flat(0);
    flat.narrow(0, 0, shape[0] * shape[1]).view({shape[0], shape[1]}).index_add_(0, call->ids, grad_out[0].to(s.reduce_dtype));
    s.scatter(0, flat);
    return {at::Tensor(), at::Tensor()};
  }
};

// One decoder layer: forward without keeping activations, backward by recomputing them.
struct ShardedLayer : torch::autograd::Function<ShardedLayer> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, c10::intrusive_ptr<Call> call) {
    auto& s = *call->impl;
    const int g = call->group;
    s.acquire(g);
    s.request(g + 1);  // the next layer, or the head
    if (call->offload) call->input = call->offload->offload(x);
    else ctx->save_for_backward({x});
    at::Tensor out = s.m.model->layers[size_t(g - 1)]->as<model::LlamaDecoderLayerImpl>()->forward(x, call->ctx);
    s.release(g);
    ctx->saved_data["call"] = c10::IValue::make_capsule(call);
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto call = call_of(ctx);
    auto& s = *call->impl;
    const int g = call->group;
    s.acquire(g);
    if (g > 1) s.request(g - 1);
    at::Tensor x = (call->offload ? call->offload->restore(*call->input) : ctx->get_saved_variables()[0])
                       .detach()
                       .requires_grad_(true);
    {
      // Backward needs the recomputed output's graph, not its values: its [tokens x hidden]
      // buffer is freed before backward runs (the layer ends in a residual add, which keeps
      // neither operand nor result).
      torch::AutoGradMode enable(true);
      at::Tensor out = s.m.model->layers[size_t(g - 1)]->as<model::LlamaDecoderLayerImpl>()->forward(x, call->ctx);
      torch::autograd::Edge root = torch::autograd::impl::gradient_edge(out);
      TORCH_CHECK(root.function, "a recomputed ZeRO-3 layer has no graph to run backward through");
      out.reset();
      torch::autograd::Engine::get_default_engine().execute({root}, {grad_out[0]}, /*keep_graph=*/false,
                                                            /*create_graph=*/false, /*accumulate_grad=*/true, {});
    }
    s.reduce_grads(g);
    s.release(g);
    return {x.grad(), at::Tensor()};
  }
};

// Final norm, LM head and weighted loss, with their gradient computed at once (see the header).
struct ShardedHead : torch::autograd::Function<ShardedHead> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& h, c10::intrusive_ptr<Call> call) {
    auto& s = *call->impl;
    const int g = s.head();
    s.acquire(g);
    if (s.tied) s.acquire(0);
    if (s.layers() > 0) s.request(s.layers());  // the first layer backward needs
    at::Tensor hd = h.detach().requires_grad_(true), loss;
    {
      torch::AutoGradMode enable(true);
      loss = ops::weighted_lm_loss(s.m.model->norm(hd), s.m.lm_head_weight(), call->labels, call->weights, call->chunk);
      loss.backward();
    }
    s.reduce_grads(g);
    if (s.tied) s.reduce_grads(0);
    s.release(g);
    if (s.tied) s.release(0);
    ctx->save_for_backward({hd.grad()});
    return loss.detach();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    // Parameter gradients were taken for d(loss) = 1, which is what loss.backward() passes.
    TORCH_CHECK(grad_out[0].item<double>() == 1.0, "the ZeRO-3 loss must be the root of backward");
    return {ctx->get_saved_variables()[0], at::Tensor()};
  }
};

}  // namespace

ShardedModel::ShardedModel(model::LlamaForCausalLMImpl& m, std::shared_ptr<Collectives> channel, at::Device device,
                           at::ScalarType dtype, bool offload_grads, bool in_order)
    : impl_(std::make_unique<Impl>(m, std::move(channel), device, dtype)) {
  Impl& s = *impl_;
  if (in_order) s.worker.run_in_order();
  const int64_t n_layers = m.config().num_hidden_layers;
  s.groups.resize(size_t(n_layers + 2));
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    size_t g;
    if (name.rfind("model.embed_tokens.", 0) == 0) g = 0;
    else if (name.rfind("model.layers.", 0) == 0) g = 1 + std::stoul(name.substr(13));
    else g = size_t(n_layers + 1);  // model.norm, lm_head
    Group& G = s.groups[g];
    G.params.push_back(p.value());
    G.names.push_back(name);
    G.shapes.push_back(p.value().sizes().vec());
    G.numels.push_back(p.value().numel());
    G.offsets.push_back(G.numel);
    G.numel += G.numels.back();
  }
  torch::NoGradGuard ng;
  // Gradient accumulators and the flat copy the shards come from: fp32, or fp64 in fp64 runs.
  const auto acc = at::promote_types(dtype, at::kFloat);
  const auto grad_opts = at::TensorOptions().dtype(acc).device(offload_grads ? at::kCPU : device);
  for (auto& G : s.groups) {
    G.shard = (G.numel + s.world - 1) / s.world;
    at::Tensor flat = at::zeros({G.shard * s.world}, G.params.front().options().dtype(acc));
    for (size_t i = 0; i < G.params.size(); ++i)
      flat.narrow(0, G.offsets[i], G.numels[i]).copy_(G.params[i].reshape({-1}));
    G.shard_w = flat.narrow(0, G.shard * s.rank, G.shard).to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
    G.grad_shard = at::zeros({G.shard}, grad_opts.pinned_memory(offload_grads && device.is_cuda()));
    for (auto& p : G.params) p.set_data(s.empty_param());  // the full copy is freed group by group
  }
}

ShardedModel::~ShardedModel() = default;

std::vector<ParamPiece> ShardedModel::pieces() const {
  const Impl& s = *impl_;
  std::vector<ParamPiece> out;
  for (const Group& G : s.groups) {
    const int64_t lo = G.shard * s.rank, hi = lo + G.shard;
    for (size_t i = 0; i < G.params.size(); ++i) {
      if (!G.params[i].requires_grad()) continue;  // frozen (LoRA's base): no optimizer state
      const int64_t n = G.numels[i];
      const int64_t b = std::max(lo, G.offsets[i]), e = std::min(hi, G.offsets[i] + n);
      if (b >= e) continue;
      out.push_back({G.names[i], G.shard_w.narrow(0, b - lo, e - b), b - G.offsets[i], n, G.shapes[i].size() >= 2,
                     G.grad_shard.narrow(0, b - lo, e - b)});
    }
  }
  return out;
}

double ShardedModel::forward_backward(const model::PackedInput& in, const at::Tensor& labels, const at::Tensor& weights,
                                      int64_t loss_chunk_tokens, const model::AttentionFn& attention,
                                      const model::MlpFn& mlp, const std::shared_ptr<ops::ActivationOffload>& offload) {
  Impl& s = *impl_;
  auto make = [&](int g) {
    auto c = c10::make_intrusive<Call>();
    c->impl = &s;
    c->group = g;
    return c;
  };
  auto ec = make(0);
  ec->ids = in.input_ids;
  at::Tensor anchor = torch::empty({0}, torch::TensorOptions().device(s.device).requires_grad(true));
  at::Tensor h = ShardedEmbedding::apply(anchor, ec);
  const model::LayerContext lctx = s.m.layer_context(in, s.dtype, attention, mlp);
  for (int g = 1; g <= s.layers(); ++g) {
    auto c = make(g);
    c->ctx = lctx;
    c->offload = offload;
    h = ShardedLayer::apply(h, c);
  }
  auto hc = make(s.head());
  hc->labels = labels;
  hc->weights = weights;
  hc->chunk = loss_chunk_tokens;
  at::Tensor loss = ShardedHead::apply(h, hc);
  loss.backward();
  return loss.item<double>();
}

void ShardedModel::finish() { impl_->finish(); }

void ShardedModel::for_each_group_gathered(const std::function<void()>& visit) {
  Impl& s = *impl_;
  for (int g = 0; g < int(s.groups.size()); ++g) {
    s.acquire(g);
    visit();
    s.release(g);
  }
}

}  // namespace longalign::train
