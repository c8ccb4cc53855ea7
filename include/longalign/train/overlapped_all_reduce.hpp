// Data-parallel gradient all-reduce overlapped with backward. Parameters are grouped into
// buckets of about `bucket_bytes` in reverse registration order (the order backward produces
// their gradients). During the last micro-step of a step, a gradient hook adds each fresh
// gradient to its fp32 accumulator; when a bucket is complete it is handed to a background
// thread that all-reduces it on a separate channel while backward continues. Buckets are
// launched strictly in index order, so every rank issues the same collectives in the same
// order; a rank without a unit in a step launches them all from its (zero) accumulators.
#pragma once
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <c10/core/Device.h>

#include "longalign/train/adamw.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::train {

class OverlappedAllReduce {
 public:
  OverlappedAllReduce(AdamW& opt, std::shared_ptr<Collectives> channel, int64_t bucket_bytes = 25 << 20);
  ~OverlappedAllReduce();

  void arm();   // before the backward of a rank's last micro-step of the step
  void wait();  // after it: every bucket summed over ranks into the accumulators

 private:
  void on_grad(size_t param, const at::Tensor& g);
  void launch_ready();  // under mu_: launch complete buckets in index order
  void work();

  AdamW& opt_;
  std::shared_ptr<Collectives> channel_;
  std::vector<std::vector<size_t>> buckets_;  // parameter indices
  std::vector<size_t> bucket_of_;
  std::vector<int> missing_;                  // per bucket: parameters not yet arrived
  std::vector<at::Tensor> flat_;              // per bucket: the message, then the sum
  struct ReadyEvents;                         // per bucket on a GPU: message assembled (CUDA events)
  std::unique_ptr<ReadyEvents> ready_;
  c10::DeviceIndex cuda_device_ = -1;         // the parameters' GPU; -1 on CPU
  size_t next_launch_ = 0, done_ = 0;
  bool armed_ = false, stop_ = false;
  std::exception_ptr error_;
  std::deque<size_t> queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread worker_;
};

}  // namespace longalign::train
