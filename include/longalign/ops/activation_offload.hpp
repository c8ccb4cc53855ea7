// Activation offload (ALST's checkpoint offload): a checkpointed layer keeps only its input
// between forward and backward, L inputs of [tokens, hidden] in all, which at 512K tokens is the
// largest thing left on the GPU. Offloaded, each input goes to pinned host memory on a side stream
// right after its layer's forward, and backward brings it back one layer ahead of need: restoring
// layer i's input starts the copy of layer i-1's, and the compute stream waits only on an event.
// The device then holds two layers' inputs, the host all of them.
//
// On a CPU the same code copies each input into a separate host buffer, so that CI runs the path;
// results are bitwise equal to keeping the input (the copy is exact).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>

namespace longalign::ops {

struct OffloadedInput;

// One per model (its layers are offloaded in forward order and restored in reverse).
class ActivationOffload {
 public:
  ActivationOffload();
  ~ActivationOffload();
  // After a layer's forward: a host copy of its input x, linked to the previous layer's.
  std::shared_ptr<OffloadedInput> offload(const at::Tensor& x);
  // In the layer's backward: its input back on its device (waited for, so ready for the current
  // stream), and the previous layer's copy started. The host copy is released.
  at::Tensor restore(OffloadedInput& in);
  // Inputs offloaded and not yet restored (0 after every backward; for tests).
  int64_t held() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace longalign::ops
