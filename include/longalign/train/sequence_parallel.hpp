// Ulysses sequence parallelism (DeepSpeed-Ulysses, arXiv 2309.14509): a group of n ranks shares
// one packed micro-batch. Each rank embeds and runs an even slice of its tokens through the
// layers; around attention an all-to-all turns [tokens / n, heads] into [tokens, heads / n] for
// q, k and v, so the varlen attention (any backend) runs unchanged over the pack's global
// cu_seqlens, and a second all-to-all brings the output back. Everything else in a layer is
// per token. Each rank's loss is its slice's targets under their sequences' weights, so the
// group's summed loss and gradients are the unsplit micro-step's: LongAlign's per-sequence
// weighting stays exact, whichever slice a sequence's tokens fall in.
#pragma once
#include <memory>

#include "longalign/model/llama.hpp"
#include "longalign/train/collectives.hpp"
#include "longalign/train/parallelize.hpp"

namespace longalign::train {

// Rank `r` of `n`'s share of a packed micro-batch: the tokens padded to a multiple of n (the pad
// tokens form one extra segment at the end, which no real token attends to and no loss counts),
// then cut into n even slices. The slice keeps the global cu_seqlens (with the pad segment) and
// max_seqlen, which attention needs after the exchange; positions stay per sequence.
MicroBatch slice_for_rank(const MicroBatch& full, int n, int r);

// Attention over this rank's slice within `group` (the sequence-parallel ranks, in slice order).
// Where the model has fewer kv heads than ranks, each is replicated so that every rank gets the
// one its q heads read (autograd sums the copies' gradients back); train_config.hpp's
// sequence_parallel_problem says which degrees a model allows.
model::AttentionFn ulysses_attention(model::AttentionFn inner, std::shared_ptr<Collectives> group);

}  // namespace longalign::train
