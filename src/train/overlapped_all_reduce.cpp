// Gradient hooks + an all-reduce thread; see the header. Messages are fp64 so the rank-order sum
// rounds once, as in the non-overlapped path. On a GPU the thread issues the collectives from a
// stream of its own, after an event recorded where each bucket was assembled: on the default
// stream they would order backward's later kernels behind every bucket's all-reduce.
#include "longalign/train/overlapped_all_reduce.hpp"

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include "longalign/core/log.hpp"

namespace longalign::train {

struct OverlappedAllReduce::ReadyEvents {
  std::vector<std::shared_ptr<at::cuda::CUDAEvent>> of_bucket;
};

OverlappedAllReduce::OverlappedAllReduce(AdamW& opt, std::shared_ptr<Collectives> channel, int64_t bucket_bytes)
    : opt_(opt), channel_(std::move(channel)) {
  const size_t n = opt_.num_params();
  bucket_of_.resize(n);
  int64_t bytes = bucket_bytes;
  for (size_t k = n; k-- > 0;) {
    if (bytes >= bucket_bytes) buckets_.emplace_back(), bytes = 0;
    buckets_.back().push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += opt_.param(k).numel() * 4;
  }
  missing_.resize(buckets_.size());
  flat_.resize(buckets_.size());
  ready_ = std::make_unique<ReadyEvents>();
  ready_->of_bucket.resize(buckets_.size());
  if (n > 0 && opt_.param(0).is_cuda()) cuda_device_ = opt_.param(0).device().index();
  for (size_t k = 0; k < n; ++k) {
    at::Tensor p = opt_.param(k);
    p.register_hook([this, k](const at::Tensor& g) {
      on_grad(k, g);
      return at::Tensor();  // keep g: autograd still accumulates it, and wait() clears it
    });
  }
  worker_ = std::thread([this] {
    if (cuda_device_ >= 0) {  // a new thread's current device is 0, and its stream the default one
      c10::cuda::set_device(cuda_device_);
      c10::cuda::setCurrentCUDAStream(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, cuda_device_));
    }
    work();
  });
}

OverlappedAllReduce::~OverlappedAllReduce() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void OverlappedAllReduce::arm() {
  std::lock_guard lk(mu_);
  for (size_t b = 0; b < buckets_.size(); ++b) missing_[b] = int(buckets_[b].size());
  next_launch_ = done_ = 0;
  armed_ = true;
}

void OverlappedAllReduce::on_grad(size_t k, const at::Tensor& g) {
  std::lock_guard lk(mu_);
  if (!armed_) return;
  torch::NoGradGuard ng;
  opt_.grad_accumulator(k).add_(g.detach().to(opt_.grad_accumulator(k).device(), opt_.grad_accumulator(k).scalar_type()));
  if (--missing_[bucket_of_[k]] == 0) launch_ready();
}

void OverlappedAllReduce::launch_ready() {
  while (next_launch_ < buckets_.size() && missing_[next_launch_] == 0) {
    std::vector<at::Tensor> parts;
    for (size_t k : buckets_[next_launch_]) parts.push_back(opt_.grad_accumulator(k).flatten().to(torch::kDouble));
    flat_[next_launch_] = torch::cat(parts);
    if (cuda_device_ >= 0) {  // assembled on the caller's stream (backward's, or wait()'s)
      auto& ev = ready_->of_bucket[next_launch_];
      ev = std::make_shared<at::cuda::CUDAEvent>();
      ev->record(c10::cuda::getCurrentCUDAStream(cuda_device_));
    }
    queue_.push_back(next_launch_++);
  }
  cv_.notify_all();
}

void OverlappedAllReduce::work() {
  for (;;) {
    size_t b;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      b = queue_.front();
      queue_.pop_front();
    }
    try {
      // After a failure the run is over: the remaining buckets would each wait out the timeout.
      bool failed;
      {
        std::lock_guard lk(mu_);
        failed = error_ != nullptr;
      }
      if (!failed && cuda_device_ >= 0) {
        const auto stream = c10::cuda::getCurrentCUDAStream(cuda_device_);
        ready_->of_bucket[b]->block(stream);
        channel_->all_reduce_sum(flat_[b]);
        stream.synchronize();  // the sum is complete before wait() reads it on another stream
      } else if (!failed) {
        channel_->all_reduce_sum(flat_[b]);
      }
    } catch (...) {
      std::lock_guard lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    {
      std::lock_guard lk(mu_);
      ++done_;
    }
    cv_.notify_all();
  }
}

void OverlappedAllReduce::wait() {
  std::unique_lock lk(mu_);
  const size_t during_backward = next_launch_;
  // Parameters that received no gradient this time (or all of them, on a rank without a unit).
  for (auto& m : missing_) m = 0;
  launch_ready();
  cv_.wait(lk, [&] { return done_ == buckets_.size(); });
  armed_ = false;
  if (error_) std::rethrow_exception(error_);
  log::debug("gradient all-reduce: " + std::to_string(during_backward) + " of " + std::to_string(buckets_.size()) +
             " buckets launched during backward");
  torch::NoGradGuard ng;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t off = 0;
    for (size_t k : buckets_[b]) {
      at::Tensor& acc = opt_.grad_accumulator(k);
      acc.copy_(flat_[b].narrow(0, off, acc.numel()).view_as(acc));
      off += acc.numel();
    }
    flat_[b] = at::Tensor();
    ready_->of_bucket[b].reset();
  }
  for (size_t k = 0; k < opt_.num_params(); ++k) {
    at::Tensor p = opt_.param(k);
    if (p.grad().defined()) p.mutable_grad().reset();  // already counted through the hook
  }
}

}  // namespace longalign::train
