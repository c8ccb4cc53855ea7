// The memory model against figures worked out by hand for a tiny model (every term at ZeRO-1,
// ZeRO-2 with offload and ZeRO-3 with and without offload, tied and untied), the fit verdicts
// and the plan text; the 13B and 7B acceptance figures are checked through the CLI
// (plan_cli_test.sh).
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/train/memory_estimate.hpp"

using namespace longalign;
using namespace longalign::train;

namespace {

// V 1000, h 64, intermediate 128, 2 layers, 4 heads of 16, 2 KV heads (kv width 32). Per layer:
// q,o 64x64 each, k,v 32x64 each = 12288; gate, up, down 3 x 64x128 = 24576; two norms 128;
// layer = 36992. Embedding 64000; head = LM head 64000 + final norm 64 = 64064.
// n = 64000 + 2 x 36992 + 64064 = 202048.
model::LlamaConfig tiny(bool tied = false) {
  model::LlamaConfig c;
  c.vocab_size = 1000;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.tie_word_embeddings = tied;
  return c;
}

MemoryInputs inputs(int zero, int world, bool offload = false) {
  MemoryInputs in;
  in.tokens = 256;
  in.loss_chunk_tokens = 128;
  in.param_bytes = 2;
  in.zero_stage = zero;
  in.world_size = world;
  in.offload_optimizer = offload;
  in.gpus_per_node = 2;
  return in;
}

// Per token and layer, bf16 values: norm outputs and residual 3 x 64, rotated q and k, v and the
// attention output 2 x 64 + 2 x 32, gradients in flight 64 + 64 + 2 x 32, the MLP 4 x 128; fp32:
// two rstd and 4 log-sum-exps. 2 x (4 x 64 + 3 x 64 + 4 x 32) + 4 x 6 = 1176 bytes besides the
// MLP's 2 x 4 x 128 = 1024: 2200. At 256 tokens one layer is 563200; checkpointed, 2 layers'
// inputs 2 x 256 x 64 x 2 = 65536 more; not checkpointed, each layer keeps its input (32768).
constexpr double kLayerActs = 563200, kCkptInputs = 65536, kLayerInput = 32768;
constexpr double kLogits = 2.0 * 128 * 1000 * 4;                        // 1024000
constexpr double kWorkspace = 1.5 * 1073741824.0 + 256.0 * 64 * 2 * 4;  // 1610743808
// ZeRO-3 frees the recomputed layer output before its backward: three hidden-sized tensors.
constexpr double kWorkspaceZ3 = 1.5 * 1073741824.0 + 256.0 * 64 * 2 * 3;

TEST(MemoryEstimate, TinyModelParameterCount) { EXPECT_EQ(tiny().num_parameters(), 202048); }

TEST(MemoryEstimate, Zero1ByHand) {
  const double n = 202048;
  auto in = inputs(1, 4);
  in.checkpointing = false;
  const auto e = estimate_memory(tiny(), in);
  EXPECT_DOUBLE_EQ(e.weights, 2 * n);
  EXPECT_DOUBLE_EQ(e.grads, 2 * n + 4 * n);  // bf16 .grad + full fp32 accumulator (ZeRO-1 keeps it)
  EXPECT_DOUBLE_EQ(e.optimizer, (4 * n + 8 * n) / 4);
  EXPECT_DOUBLE_EQ(e.activations, 2 * (kLayerActs + kLayerInput));
  EXPECT_DOUBLE_EQ(e.logits, kLogits);
  EXPECT_DOUBLE_EQ(e.workspace, kWorkspace);
  EXPECT_EQ(e.weights_gathered, 0);
  EXPECT_EQ(e.host_per_rank(), 0);
}

// ZeRO-3 on 3 ranks. Shards: embedding ceil(64000/3) = 21334 (padded group 64002), layer
// ceil(36992/3) = 12331 (36993), head ceil(64064/3) = 21355 (64065); owned 21334 + 2 x 12331 +
// 21355 = 67351 elements.
TEST(MemoryEstimate, Zero3ByHand) {
  const auto e = estimate_memory(tiny(), inputs(3, 3));
  // Gathered, the largest phase: the head with the last layer prefetched, 64065 + 36993 = 101058
  // (embedding + layer 1: 100995; two layers: 73986).
  EXPECT_DOUBLE_EQ(e.weights_gathered, 101058.0 * 2);
  EXPECT_DOUBLE_EQ(e.weights, 67351.0 * 2 + 101058.0 * 2);
  // The head's bf16 grads (64064 x 2), two fp32 flat buffers of the largest padded group
  // (2 x 64065 x 4: one reducing, one being filled) and the in-flight fp32 output of its shard
  // (21355 x 4).
  const double buffers = 64064.0 * 2 + 2 * 64065.0 * 4 + 1 * 21355.0 * 4;
  EXPECT_DOUBLE_EQ(e.grad_buffers, buffers);
  EXPECT_DOUBLE_EQ(e.grads, buffers + 67351.0 * 4);
  EXPECT_DOUBLE_EQ(e.optimizer, 67351.0 * (4 + 8));
  EXPECT_DOUBLE_EQ(e.activations, kCkptInputs + kLayerActs);
  EXPECT_DOUBLE_EQ(e.total(), e.weights + e.grads + e.optimizer + kCkptInputs + kLayerActs + kLogits + kWorkspaceZ3);
  EXPECT_TRUE(e.invalid.empty());
}

// ZeRO-3 on one rank: the shards are the whole groups (202048 elements), nothing is gathered, and
// gradients go to the accumulator without flat buffers: at most three groups' bf16 .grad (two in
// flight, one being made; the head's is the largest: 3 x 64064 x 2 = 384384), or the embedding's
// fp32 buffer beside layer 1's .grad (64000 x 4 + 36992 x 2 = 329984), whichever is larger.
TEST(MemoryEstimate, Zero3OneRankByHand) {
  const auto e = estimate_memory(tiny(), inputs(3, 1));
  EXPECT_EQ(e.weights_gathered, 0);
  EXPECT_DOUBLE_EQ(e.weights, 202048.0 * 2);
  EXPECT_DOUBLE_EQ(e.grad_buffers, 384384.0);
  EXPECT_DOUBLE_EQ(e.grads, 384384.0 + 202048.0 * 4);
}

// Sequence parallelism, ZeRO-3: a rank computes 256 / N tokens. N = 2 (2 kv heads split): per
// slice token the layer keeps 2 x (4 x 64 + 3 x 64 + 4 x 32) + 24 as without it, plus the
// exchange's buffers 2 x (64 + 2 x 32): 1432, with the MLP 2456; 128 tokens: 314368, and 2 layer
// inputs 2 x 128 x 64 x 2 = 32768. N = 4: the 2 kv heads replicated to 4 (kv width 64 per slice
// token): 2 x (256 + 192 + 4 x 64 + 64 + 2 x 64) + 24 = 1816, with the MLP 2840; 64 tokens:
// 181760, inputs 16384. Weights shard over the whole world as without it.
TEST(MemoryEstimate, SequenceParallelByHand) {
  auto in = inputs(3, 2);
  in.sequence_parallel = 2;
  auto e = estimate_memory(tiny(), in);
  EXPECT_TRUE(e.invalid.empty()) << e.invalid;
  EXPECT_DOUBLE_EQ(e.activations, 32768.0 + 314368.0);
  EXPECT_DOUBLE_EQ(e.workspace, 1.5 * 1073741824.0 + 128.0 * 64 * 2 * 3);
  EXPECT_DOUBLE_EQ(e.weights, estimate_memory(tiny(), inputs(3, 2)).weights);
  in = inputs(3, 4);
  in.sequence_parallel = 4;
  e = estimate_memory(tiny(), in);
  EXPECT_DOUBLE_EQ(e.activations, 16384.0 + 181760.0);
  in.world_size = 6;  // not a multiple of 4
  EXPECT_NE(estimate_memory(tiny(), in).invalid.find("multiple"), std::string::npos);
  in = inputs(3, 3);
  in.sequence_parallel = 3;  // 4 heads do not split over 3
  EXPECT_NE(estimate_memory(tiny(), in).invalid.find("4 attention heads"), std::string::npos);
}

TEST(MemoryEstimate, Zero3OffloadByHand) {
  const auto e = estimate_memory(tiny(), inputs(3, 3, true));
  EXPECT_DOUBLE_EQ(e.weights, 67351.0 * 2 + 101058.0 * 2);
  EXPECT_DOUBLE_EQ(e.grads, 64064.0 * 2 + 2 * 64065.0 * 4 + 1 * 21355.0 * 4);  // no accumulator on the GPU
  EXPECT_EQ(e.optimizer, 0);
  EXPECT_DOUBLE_EQ(e.host_master, 67351.0 * 4);
  EXPECT_DOUBLE_EQ(e.host_moments, 67351.0 * 8);
  EXPECT_DOUBLE_EQ(e.host_grad_acc, 67351.0 * 4);
  EXPECT_DOUBLE_EQ(e.host_overhead, kHostOverheadPerRank);
  EXPECT_EQ(e.ranks_per_node, 2);  // --gpus-per-node 2 of 3 ranks
  EXPECT_DOUBLE_EQ(e.host_per_node(), 2 * (67351.0 * 16 + kHostOverheadPerRank));
}

// Tied: no LM head, the head group is the final norm (64); n = 64000 + 73984 + 64 = 138048. On 2
// ranks every group splits evenly: owned 32000 + 2 x 18496 + 32 = 69024 = n / 2.
TEST(MemoryEstimate, Zero3TiedByHand) {
  const auto c = tiny(true);
  ASSERT_EQ(c.num_parameters(), 138048);
  const auto e = estimate_memory(c, inputs(3, 2));
  // At the head: the norm, the embedding (the LM head) and the last layer: 64 + 64000 + 36992.
  EXPECT_DOUBLE_EQ(e.weights_gathered, 101056.0 * 2);
  EXPECT_DOUBLE_EQ(e.weights, 69024.0 * 2 + 101056.0 * 2);
  // bf16 grads at the head: norm + embedding (64064); largest group: the embedding, 64000.
  EXPECT_DOUBLE_EQ(e.grad_buffers, 64064.0 * 2 + 2 * 64000.0 * 4 + 1 * 32000.0 * 4);
  EXPECT_DOUBLE_EQ(e.optimizer, 69024.0 * 12);
}

TEST(MemoryEstimate, Zero2OffloadFp32ByHand) {
  const double n = 202048;
  auto in = inputs(2, 4, true);
  in.param_bytes = 4;
  in.gpus_per_node = 8;  // more than the world: the node holds the 4 ranks there are
  const auto e = estimate_memory(tiny(), in);
  EXPECT_DOUBLE_EQ(e.weights, 4 * n);
  EXPECT_DOUBLE_EQ(e.grads, 4 * n);  // the .grad of a micro-step; the accumulator is on the host
  EXPECT_EQ(e.optimizer, 0);
  // fp32 weights on the GPU cannot be the CPU update's master: it has its own copy.
  EXPECT_DOUBLE_EQ(e.host_master, 4 * n / 4);
  EXPECT_DOUBLE_EQ(e.host_moments, 8 * n / 4);
  EXPECT_DOUBLE_EQ(e.host_grad_acc, 4 * n / 4);
  EXPECT_EQ(e.ranks_per_node, 4);
}

TEST(MemoryEstimate, Zero0OffloadKeepsFullStateOnHost) {
  const double n = 202048;
  const auto e = estimate_memory(tiny(), inputs(0, 4, true));
  EXPECT_DOUBLE_EQ(e.host_master + e.host_moments + e.host_grad_acc, 16 * n);
  EXPECT_DOUBLE_EQ(e.grads, 2 * n);
}

TEST(MemoryEstimate, Zero3NeedsCheckpointing) {
  auto in = inputs(3, 2);
  in.checkpointing = false;
  const auto e = estimate_memory(tiny(), in);
  EXPECT_NE(e.invalid.find("activation checkpointing"), std::string::npos);
  EXPECT_DOUBLE_EQ(e.activations, kCkptInputs + kLayerActs);  // it would recompute anyway
}

TEST(MemoryEstimate, StageOutOfRangeRefused) {
  EXPECT_THROW(estimate_memory(tiny(), inputs(4, 2)), UsageError);
  EXPECT_THROW(estimate_memory(tiny(), inputs(-1, 2)), UsageError);
}

TEST(MemoryEstimate, Verdicts) {
  const auto e = estimate_memory(tiny(), inputs(3, 3, true));
  MemoryLimits ok{1e12, 1e12, "--host-memory"};
  EXPECT_EQ(fit_verdict(e, ok), "fits");
  MemoryLimits short_host{1e12, 1e9, "--host-memory"};
  EXPECT_EQ(fit_verdict(e, short_host).rfind("does NOT fit: host memory", 0), 0u) << fit_verdict(e, short_host);
  MemoryLimits short_both{1e9, 1e9, "--host-memory"};
  const std::string both = fit_verdict(e, short_both);
  EXPECT_NE(both.find("GPU memory 1.6 GB > 1.0 GB"), std::string::npos) << both;
  EXPECT_NE(both.find("host memory 8.6 GB per node > 1.0 GB"), std::string::npos) << both;
  // Without offload the host is not judged.
  EXPECT_EQ(fit_verdict(estimate_memory(tiny(), inputs(3, 3)), short_host), "fits");
}

TEST(MemoryEstimate, PlanText) {
  MemoryLimits lim{80e9, 256e9, "--host-memory"};
  const std::string s = memory_plan(tiny(), inputs(0, 3, true), {0, 3}, {true, false}, lim);
  EXPECT_NE(s.find("2 ranks per node, host memory 256.0 GB per node (--host-memory)"), std::string::npos) << s;
  EXPECT_NE(s.find("ZeRO-3, activation checkpointing on: "), std::string::npos) << s;
  EXPECT_NE(s.find("ZeRO-3, activation checkpointing off: not possible"), std::string::npos) << s;
  EXPECT_NE(s.find("ZeRO-0, activation checkpointing off: "), std::string::npos) << s;
  EXPECT_NE(s.find("per node, 2 ranks"), std::string::npos) << s;
  EXPECT_NE(s.find("-> fits"), std::string::npos) << s;
  // No offload: no host lines but the start-up line, which every plan begins with.
  const std::string g = memory_plan(tiny(), inputs(2, 3), {2}, {true}, lim);
  EXPECT_EQ(g.rfind("start-up: each rank builds the full model on the host first", 0), 0u) << g;
  EXPECT_EQ(g.find("host", g.find('\n')), std::string::npos) << g;
}

}  // namespace

// Start-up turns, worked out by hand: a 13B model is 78 GB a copy at 6 bytes a parameter.
TEST(MemoryEstimate, StartupRanksAtOnce) {
  const int64_t p13 = 13000000000;
  EXPECT_EQ(build_ranks_at_once(1e12, p13, 0), 6);     // floor(500 / 78)
  EXPECT_EQ(build_ranks_at_once(256e9, p13, 0), 1);    // floor(128 / 78)
  EXPECT_EQ(build_ranks_at_once(100e9, p13, 0), 1);    // at least one, even when one does not fit
  EXPECT_EQ(build_ranks_at_once(256e9, p13, 3), 3);    // distributed.build_concurrency wins
  EXPECT_EQ(build_ranks_at_once(0, p13, 0), 0);        // unknown host memory: all at once
  const std::string line = startup_line(p13, 8, 1e12, 0);
  EXPECT_NE(line.find("78.0 GB"), std::string::npos) << line;
  EXPECT_NE(line.find("6 of this node's 8 at a time, 2 waves, 468.0 GB"), std::string::npos) << line;
  EXPECT_NE(startup_line(p13, 8, 64e9, 0).find("does NOT fit"), std::string::npos);
  EXPECT_NE(startup_line(p13, 8, 0, 0).find("8 at once need 624.0 GB per node"), std::string::npos);
}

// LoRA on the tiny model, rank 4 on all seven projections: per layer 4 x (64+64 + 64+32 + 64+32 +
// 64+64 + 3 x (64+128)) = 4 x 992 = 3968 adapter parameters, 7936 in all; nothing saved. The
// frozen base keeps its bf16 weights and nothing else; the adapters get bf16 weights and grads,
// an fp32 accumulator, master and two moments (2 + 2 + 4 + 4 + 8 bytes).
TEST(MemoryEstimate, LoraKeepsStateForTheAdaptersOnly) {
  MemoryInputs in = inputs(0, 1);
  const MemoryEstimate full = estimate_memory(tiny(), in);
  in.lora_trained = in.lora_adapter = 7936;
  in.lora_rank_per_layer = 4 * 7;
  const MemoryEstimate e = estimate_memory(tiny(), in);
  EXPECT_DOUBLE_EQ(e.weights, (202048.0 + 7936.0) * 2);
  EXPECT_DOUBLE_EQ(e.grads, 7936.0 * (2 + 4));
  EXPECT_DOUBLE_EQ(e.optimizer, 7936.0 * (4 + 8));
  // Per token and layer, A(x) of each adapter: 4 x 7 bf16 values more than full SFT keeps.
  const double acts = 256.0 * 4 * 7 * 2;
  EXPECT_DOUBLE_EQ(e.activations - full.activations, acts);
  // What the base no longer needs: its gradient (2 + 4 bytes) and AdamW state (4 + 8 bytes) a parameter.
  EXPECT_NEAR(full.total() - e.total(), 202048.0 * 18 - 7936.0 * 20 - acts, 1e-6);
}

// The tiled MLP (train.tiled_mlp_tokens) by hand. Per token and layer the MLP part is 2 x 4 x 128
// = 1024 bytes (gate, up, silu(gate), their product), the rest 1176. Tiled in chunks of 64 of the
// 256 tokens, the MLP part counts 64 tokens.
TEST(MemoryEstimate, TiledMlpByHand) {
  MemoryInputs in = inputs(0, 1);
  in.tiled_mlp_tokens = 64;
  // Checkpointed: the layers' inputs, one layer's rest at 256 tokens, one MLP chunk.
  EXPECT_DOUBLE_EQ(estimate_memory(tiny(), in).activations, kCkptInputs + 256.0 * 1176 + 64.0 * 1024);  // 432128
  // Not checkpointed: both layers keep their input and rest (the MLP its input only, part of the
  // rest); one chunk live.
  in.checkpointing = false;
  EXPECT_DOUBLE_EQ(estimate_memory(tiny(), in).activations, 2 * 256.0 * (1176 + 128) + 64.0 * 1024);  // 733184
  // A chunk larger than the micro-step is the untiled figure.
  in.checkpointing = true;
  in.tiled_mlp_tokens = 1000;
  EXPECT_DOUBLE_EQ(estimate_memory(tiny(), in).activations, kCkptInputs + kLayerActs);
  EXPECT_NE(memory_plan(tiny(), in, {0}, {true}, {}).find("MLP tiled in chunks of 1000 tokens"), std::string::npos);
  in.tiled_mlp_tokens = 0;
  EXPECT_NE(memory_plan(tiny(), in, {0}, {true}, {}).find("MLP untiled"), std::string::npos);
}

// LoRA rank 4 on all seven projections with dropout, tiled in chunks of 64, checkpointed. Each
// adapted projection keeps its dropout mask and dropped input: attention q, k, v, o read 64 each
// (256), the MLP's gate and up 64 and down 128 (256). Rest per token: 2 x (4 x 64 + 3 x 64 + 4 x
// 32 + 28 + 2 x 256) + 4 x 6 = 2256; MLP: 2 x (4 x 128 + 2 x 256) = 2048.
TEST(MemoryEstimate, LoraDropoutTiledByHand) {
  MemoryInputs in = inputs(0, 1);
  in.lora_trained = in.lora_adapter = 7936;
  in.lora_rank_per_layer = 4 * 7;
  in.lora_dropout_attn_width = 256;
  in.lora_dropout_mlp_width = 256;
  in.tiled_mlp_tokens = 64;
  EXPECT_DOUBLE_EQ(estimate_memory(tiny(), in).activations, kCkptInputs + 256.0 * 2256 + 64.0 * 2048);  // 774144
}

// Activation offload: the layer inputs (2 x 256 x 64 x 2) move to the host, two of them stay on the
// GPU (the one being recomputed and the next, prefetched); the host pays the process overhead once.
TEST(MemoryEstimate, ActivationOffloadByHand) {
  MemoryInputs in = inputs(3, 3);
  in.offload_activations = true;
  const auto e = estimate_memory(tiny(), in);
  EXPECT_DOUBLE_EQ(e.activations, 2 * kLayerInput + kLayerActs);
  EXPECT_DOUBLE_EQ(e.host_activations, kCkptInputs);
  EXPECT_DOUBLE_EQ(e.host_per_node(), 2 * (kCkptInputs + kHostOverheadPerRank));
  EXPECT_NE(e.table().find("layer inputs"), std::string::npos) << e.table();
  // Without checkpointing (ZeRO 0-2) there is nothing to offload.
  in.zero_stage = 0;
  in.checkpointing = false;
  EXPECT_EQ(estimate_memory(tiny(), in).host_activations, 0);
}

// The longest micro-step that fits: fits at the answer, not 1024 tokens more; 0 when nothing fits.
TEST(MemoryEstimate, MaxTokensThatFit) {
  MemoryInputs in = inputs(3, 3, true);
  in.offload_activations = true;
  in.tiled_mlp_tokens = 1024;
  const MemoryLimits limits{3e9, 40e9, "--host-memory"};
  const int64_t best = max_tokens_that_fit(tiny(), in, limits);
  ASSERT_GT(best, 0);
  EXPECT_EQ(best % 1024, 0);
  auto at = [&](int64_t t) {
    MemoryInputs x = in;
    x.tokens = t;
    return estimate_memory(tiny(), x);
  };
  EXPECT_LE(at(best).total(), limits.gpu_bytes);
  EXPECT_LE(at(best).host_per_node(), limits.host_bytes);
  const auto over = at(best + 1024);
  EXPECT_TRUE(over.total() > limits.gpu_bytes || over.host_per_node() > limits.host_bytes);
  EXPECT_EQ(max_tokens_that_fit(tiny(), in, MemoryLimits{1e9, 0, ""}), 0);  // the 1.5 GiB workspace alone
  const std::string s = max_tokens_plan(tiny(), in, {3}, limits);
  EXPECT_NE(s.find("ZeRO-3"), std::string::npos) << s;
  EXPECT_NE(s.find(std::to_string(best / 1024) + "K"), std::string::npos) << s;
}
