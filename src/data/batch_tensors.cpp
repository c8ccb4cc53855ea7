// Copies a Batch's vectors into owned CPU tensors (the Batch may be freed afterwards).
#include "longalign/data/batch_tensors.hpp"

#include <ATen/ATen.h>

namespace longalign::data {
namespace {

template <typename T>
at::Tensor copy_of(const std::vector<T>& v, at::ScalarType src, at::ScalarType dst) {
  auto t = at::from_blob(const_cast<T*>(v.data()), {static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(src));
  return t.to(dst, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

BatchTensors to_tensors(const Batch& b) {
  BatchTensors t;
  t.input_ids = copy_of(b.input_ids, at::kInt, at::kLong);
  t.labels = copy_of(b.labels, at::kInt, at::kLong);
  t.position_ids = copy_of(b.position_ids, at::kInt, at::kLong);
  t.cu_seqlens = copy_of(b.cu_seqlens, at::kInt, at::kInt);
  t.weights = copy_of(b.weights, at::kFloat, at::kFloat);
  t.max_seqlen = b.max_seqlen;
  t.num_targets = b.num_targets;
  return t;
}

}  // namespace longalign::data
