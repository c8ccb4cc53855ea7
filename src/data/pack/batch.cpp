// Builds a Batch from a plan unit; see the header for the layout conventions.
#include "longalign/data/pack/batch.hpp"

#include <algorithm>
#include <string>

#include "longalign/core/error.hpp"

namespace longalign::data {

Batch make_batch(const TokenDataset& ds, const PlanUnit& unit, Strategy strategy, int32_t pad_id) {
  Batch b;
  uint32_t seg_len = 0;  // for padded strategies: the longest sequence of the unit
  if (strategy != Strategy::pack)
    for (uint32_t i : unit.seqs) seg_len = std::max(seg_len, ds[i].length);
  const int32_t vocab = ds.info().vocab_size;
  b.cu_seqlens.push_back(0);
  for (size_t k = 0; k < unit.seqs.size(); ++k) {
    SequenceView s = ds[unit.seqs[k]];
    const float w = static_cast<float>(unit.weights[k]);
    for (uint32_t t = 0; t < s.length; ++t) {
      int32_t id = s.ids[t];
      if (id < 0 || (vocab > 0 && id >= vocab))
        throw RuntimeError("dataset token " + std::to_string(id) + " in sequence " + std::to_string(unit.seqs[k]) +
                           " is outside the vocabulary of " + std::to_string(vocab) + "; the dataset is corrupt");
      bool target_next = t + 1 < s.length && s.target[t + 1];
      b.input_ids.push_back(id);
      b.position_ids.push_back(static_cast<int32_t>(t));
      const int32_t label = target_next ? s.label_at(t + 1) : kIgnoreIndex;
      if (target_next && vocab > 0 && label >= vocab)
        throw RuntimeError("dataset label " + std::to_string(label) + " in sequence " + std::to_string(unit.seqs[k]) +
                           " is outside the vocabulary of " + std::to_string(vocab) + "; the dataset is corrupt");
      b.labels.push_back(label);
      b.weights.push_back(target_next ? w : 0.0f);
      b.num_targets += target_next;
    }
    uint32_t seg = std::max(seg_len, s.length);
    for (uint32_t t = s.length; t < seg; ++t) {
      b.input_ids.push_back(pad_id);
      b.position_ids.push_back(static_cast<int32_t>(t));
      b.labels.push_back(kIgnoreIndex);
      b.weights.push_back(0.0f);
    }
    b.cu_seqlens.push_back(static_cast<int32_t>(b.input_ids.size()));
    b.max_seqlen = std::max<int32_t>(b.max_seqlen, seg);
  }
  return b;
}

}  // namespace longalign::data
