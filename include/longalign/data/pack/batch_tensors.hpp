// The bridge from the torch-free data pipeline to LibTorch: a Batch as CPU tensors.
#pragma once
#include <ATen/core/Tensor.h>

#include "longalign/data/pack/batch.hpp"

namespace longalign::data {

struct BatchTensors {
  at::Tensor input_ids;     // int64 [total]   (embedding indices)
  at::Tensor labels;        // int64 [total]   pre-shifted, -100 = ignore
  at::Tensor position_ids;  // int64 [total]
  at::Tensor cu_seqlens;    // int32 [segments + 1], the varlen attention convention
  at::Tensor weights;       // float32 [total] per-token loss weights
  int64_t max_seqlen = 0;
  int64_t num_targets = 0;
};

BatchTensors to_tensors(const Batch& b);

}  // namespace longalign::data
