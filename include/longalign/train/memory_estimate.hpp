// Per-GPU (and, with the optimizer offloaded, per-host) memory estimate for a training
// configuration at a ZeRO stage and world size, and the "does it fit" table that `longalign plan`
// and `train --dry-run` print. Counts are analytic, from the model shape and the token budget.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "longalign/model/llama_config.hpp"

namespace longalign::train {

struct TrainConfig;

// Host memory a rank needs beyond its offloaded optimizer state: the process itself (libtorch,
// the CUDA context's host side, cuBLAS/NCCL libraries: 2-3 GiB resident) and the pinned buffers
// that stream gradients to the host and updated weights back (bucket-sized, double-buffered).
constexpr double kHostOverheadPerRank = 4.0 * double(1 << 30);

struct MemoryInputs {
  int64_t tokens = 65536;      // tokens of one micro-step (a pack, or batch x padded length)
  bool checkpointing = true;
  int64_t param_bytes = 2;     // 2 for bf16 weights, 4 for fp32, 8 for fp64
  int world_size = 1;
  // 0: nothing sharded, 1: optimizer state, 2: + gradients, 3: + parameters (needs checkpointing)
  int zero_stage = 0;
  int64_t loss_chunk_tokens = 4096;
  bool offload_optimizer = false;  // fp32 master, Adam moments, gradient accumulators in host memory
  int gpus_per_node = 1;           // ranks sharing one host's memory (at most world_size count)
  int build_concurrency = 0;       // distributed.build_concurrency (start-up turns; 0: from host memory)
  // LoRA (train.lora): the frozen base stays in the weight dtype with no gradient, master or
  // moments; only `lora_trained` parameters (adapters + saved modules) get them. 0: full SFT.
  int64_t lora_trained = 0;
  int64_t lora_adapter = 0;           // the adapters' own parameters (beside the base's)
  int64_t lora_rank_per_layer = 0;    // rank x adapted projections per layer: A(x) kept per token
  // With train.lora.dropout > 0, the summed input widths of one layer's adapted projections: each
  // keeps its dropout mask and dropped input (2 values per input feature and token).
  int64_t lora_dropout_attn_width = 0, lora_dropout_mlp_width = 0;
  int64_t tiled_mlp_tokens = 0;  // train.tiled_mlp_tokens: > 0, MLP intermediates for one chunk only
  bool offload_activations = false;  // train.offload_activations: layer inputs in host memory
  int sequence_parallel = 1;  // distributed.sequence_parallel: each rank holds 1/N of the micro-step's tokens
};

struct MemoryEstimate {
  // GPU bytes per rank.
  double weights = 0, grads = 0, optimizer = 0, activations = 0, logits = 0, workspace = 0;
  double weights_gathered = 0;  // of weights: the full groups gathered at ZeRO-3 (0 below it)
  double grad_buffers = 0;      // of grads: low-precision .grad and reduce-scatter buffers, not the fp32 accumulator
  // Host bytes per rank: the offloaded optimizer's, and the offloaded layer inputs.
  double host_master = 0, host_moments = 0, host_grad_acc = 0, host_overhead = 0, host_activations = 0;
  int ranks_per_node = 1;
  bool offload = false;              // the optimizer
  bool offload_activations = false;
  std::string invalid;  // why this setting cannot run (ZeRO-3 without checkpointing); empty if it can

  double total() const { return weights + grads + optimizer + activations + logits + workspace; }
  double host_per_rank() const { return host_master + host_moments + host_grad_acc + host_overhead + host_activations; }
  bool uses_host() const { return offload || offload_activations; }
  double host_per_node() const { return host_per_rank() * ranks_per_node; }
  std::string table() const;  // GiB per row; host rows when offloaded
};

MemoryEstimate estimate_memory(const model::LlamaConfig& c, const MemoryInputs& in);

// What a plan is checked against. A size <= 0 is unknown: no verdict on that memory.
struct MemoryLimits {
  double gpu_bytes = 0;      // per GPU
  double host_bytes = 0;     // per node
  std::string host_source;   // where host_bytes came from, e.g. "--host-memory"
};

// "fits", or "does NOT fit: GPU memory ...; host memory ..." naming each memory that is short.
std::string fit_verdict(const MemoryEstimate& e, const MemoryLimits& limits);

// The longest micro-step (tokens, a multiple of 1024) with which `in` fits `limits` (GPU, and
// host per node where known and used); 0 when not even 1024 tokens fit.
int64_t max_tokens_that_fit(const model::LlamaConfig& c, MemoryInputs in, const MemoryLimits& limits);

// `plan --max-tokens`: for each ZeRO stage, the longest micro-step as configured and with the
// memory options added one after another (tiled MLP, activation offload, optimizer offload).
std::string max_tokens_plan(const model::LlamaConfig& arch, const MemoryInputs& in, const std::vector<int>& stages,
                            const MemoryLimits& limits);

// One block per activation-checkpointing setting x ZeRO stage, in `longalign plan`'s format
// (under LoRA each headline also gives full SFT's total at the same setting):
// "ZeRO-3, activation checkpointing on: 58.3 GB -> fits" and the table; ZeRO-3 rows with
// checkpointing off say why they cannot run. With the optimizer offloaded, a first line names
// the host memory checked against and where it came from. `in` gives everything but the stage
// and the checkpointing, which are taken from `stages` and `checkpointing`.
std::string memory_plan(const model::LlamaConfig& arch, MemoryInputs in, const std::vector<int>& stages,
                        const std::vector<bool>& checkpointing, const MemoryLimits& limits);

// The estimate's inputs from a train config (tokens per micro-step, dtype, loss chunk, ZeRO
// stage, offload, checkpointing) at a world size; gpus_per_node 0 means min(world_size, 8).
// dtype auto counts as bf16 (a GPU run).
MemoryInputs memory_inputs(const TrainConfig& cfg, int world_size, int gpus_per_node = 0);

// Start-up: every rank builds the whole model on the host in fp32, with a 16-bit load buffer,
// before the parallelism pass moves it to its GPU or keeps its ZeRO-3 shard.
constexpr double kStartupBytesPerParam = 6;
// How many ranks of a node do that at once: `configured` (distributed.build_concurrency) when > 0,
// else as many copies as half of host_bytes holds (at least 1); 0 when host_bytes is unknown
// (<= 0) and nothing is configured: all at once.
int build_ranks_at_once(double host_bytes, int64_t params, int configured);
// One line for plan and --dry-run: the start-up copy's size and, with host_bytes known, how many
// of ranks_per_node build at once and in how many waves.
std::string startup_line(int64_t params, int ranks_per_node, double host_bytes, int configured);

// The host memory this process may use, in bytes: MemTotal (/proc/meminfo), or the cgroup's
// limit where that is lower; 0 when neither can be read.
double host_memory_total();

}  // namespace longalign::train
