// Activation offload; see the header. Stream discipline on a GPU: the device-to-host copy runs
// on the side stream after an event from the compute stream (the input is complete), and the
// input's memory is recorded on the side stream so the caching allocator does not hand it out
// before the copy ends. The host-to-device copy runs on the same side stream (so after the
// first), into memory recorded on the compute stream, which waits on the copy's event.
#include "longalign/ops/activation_offload.hpp"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

namespace longalign::ops {

struct OffloadedInput {
  at::Tensor host;    // the copy, until restored
  at::Tensor device;  // a restore in flight (GPU), until restored
  std::optional<at::cuda::CUDAEvent> ready;  // the restore's copy done (GPU)
  std::weak_ptr<OffloadedInput> prev;        // the layer before in forward: next in backward
  c10::Device where{at::kCPU};
  bool restored = false;
};

struct ActivationOffload::Impl {
  std::weak_ptr<OffloadedInput> last;
  std::optional<c10::cuda::CUDAStream> side;
  int64_t held = 0;

  c10::cuda::CUDAStream side_stream(c10::Device d) {
    if (!side) side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, d.index());
    return *side;
  }

  void start_restore(OffloadedInput& in) {
    if (in.restored || in.device.defined() || !in.where.is_cuda()) return;
    const auto compute = c10::cuda::getCurrentCUDAStream(in.where.index());
    const auto s = side_stream(in.where);
    c10::cuda::CUDAStreamGuard guard(s);
    in.device = at::empty(in.host.sizes(), in.host.options().device(in.where).pinned_memory(false));
    in.device.copy_(in.host, /*non_blocking=*/true);
    in.device.record_stream(compute);  // freed by compute-stream work
    in.ready.emplace();
    in.ready->record(s);
  }
};

ActivationOffload::ActivationOffload() : impl_(std::make_unique<Impl>()) {}
ActivationOffload::~ActivationOffload() = default;

std::shared_ptr<OffloadedInput> ActivationOffload::offload(const at::Tensor& x) {
  auto in = std::make_shared<OffloadedInput>();
  in->where = x.device();
  if (auto last = impl_->last.lock(); last && !last->restored) in->prev = last;  // same forward
  if (!x.is_cuda()) {
    in->host = x.clone(at::MemoryFormat::Contiguous);
  } else {
    const auto compute = c10::cuda::getCurrentCUDAStream(x.device().index());
    const auto s = impl_->side_stream(x.device());
    at::cuda::CUDAEvent produced;
    produced.record(compute);
    produced.block(s);
    c10::cuda::CUDAStreamGuard guard(s);
    in->host = at::empty(x.sizes(), x.options().device(at::kCPU).pinned_memory(true));
    in->host.copy_(x, /*non_blocking=*/true);
    x.record_stream(s);
  }
  impl_->last = in;
  ++impl_->held;
  return in;
}

at::Tensor ActivationOffload::restore(OffloadedInput& in) {
  TORCH_CHECK(!in.restored, "ActivationOffload: an input restored twice");
  at::Tensor x;
  if (!in.where.is_cuda()) {
    x = in.host;
  } else {
    impl_->start_restore(in);  // not prefetched: the last layer, or a step without order
    in.ready->block(c10::cuda::getCurrentCUDAStream(in.where.index()));
    x = in.device;
  }
  in.host.reset();
  in.device.reset();
  in.restored = true;
  --impl_->held;
  if (auto prev = in.prev.lock()) impl_->start_restore(*prev);
  return x;
}

int64_t ActivationOffload::held() const { return impl_->held; }

}  // namespace longalign::ops
