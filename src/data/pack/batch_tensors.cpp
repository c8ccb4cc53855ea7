// Copies a Batch's vectors into owned CPU tensors (the Batch may be freed afterwards), checking
// its sequence boundaries on the way.
#include "longalign/data/pack/batch_tensors.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "longalign/core/error.hpp"

namespace longalign::data {
namespace {

template <typename T>
at::Tensor copy_of(const std::vector<T>& v, at::ScalarType src, at::ScalarType dst) {
  auto t = at::from_blob(const_cast<T*>(v.data()), {static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(src));
  return t.to(dst, /*non_blocking=*/false, /*copy=*/true);
}

// The one check of a batch's sequence boundaries, here on the host before upload, so the
// attention ops never read them back from the GPU (a stall per layer).
void check_boundaries(const Batch& b) {
  const auto& cu = b.cu_seqlens;
  const auto fail = [](const std::string& m) { throw RuntimeError("batch: cu_seqlens " + m + " (a batching bug; please report it)"); };
  if (cu.size() < 2 || cu.front() != 0) fail("must start at 0 and hold at least one sequence");
  if (size_t(cu.back()) != b.input_ids.size())
    fail("ends at " + std::to_string(cu.back()) + ", not at the batch's " + std::to_string(b.input_ids.size()) + " tokens");
  int32_t longest = 0;
  for (size_t i = 1; i < cu.size(); ++i) {
    if (cu[i] < cu[i - 1]) fail("decreases at index " + std::to_string(i));
    longest = std::max(longest, cu[i] - cu[i - 1]);
  }
  if (b.max_seqlen < longest)
    fail("holds a sequence of " + std::to_string(longest) + " tokens, over max_seqlen " + std::to_string(b.max_seqlen));
}

}  // namespace

BatchTensors to_tensors(const Batch& b) {
  check_boundaries(b);
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
