// The `train` YAML: sections model, data, train, attention, checkpoint, output. Every key is
// validated: an unknown key names the nearest valid one, a wrong type or range names the key
// and the value. `--set section.key=value` overrides are applied before validation.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/data/pack/pack_job.hpp"
#include "longalign/model/llama_config.hpp"
#include "longalign/model/lora_config.hpp"

namespace longalign::train {

struct ModelSection {
  std::filesystem::path path;  // HF directory with pretrained weights; empty = from scratch
  model::LlamaConfig arch;     // from path/config.json, else model.preset and the YAML's keys
  double rope_theta_scale = 1.0;  // multiplies the resolved base; model.rope_theta sets it absolutely
  double init_std = 0.02;
};

struct OptimSection {
  double lr = 2e-5, min_lr_ratio = 0.0, warmup_ratio = 0.03;
  std::string schedule = "cosine";
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0, grad_clip = 1.0;
  int64_t epochs = 2, max_steps = 0;  // max_steps > 0 caps the run
  bool activation_checkpointing = true;
  std::string dtype = "auto";   // auto | fp32 | bf16 | fp64 (CPU only: exactness checks)
  std::string device = "auto";  // auto | cpu | cuda
  int64_t loss_chunk_tokens = 4096;
  // > 0: each layer's MLP runs in chunks of this many tokens (ops/tiled_mlp.hpp), so its
  // intermediates exist for one chunk, not the micro-step; 0: untiled.
  int64_t tiled_mlp_tokens = 0;
  // Checkpointed layers' saved inputs wait for backward in host memory (ops/activation_offload.hpp).
  bool offload_activations = false;
  int64_t max_bad_steps = 5;    // consecutive non-finite steps before stopping
  uint64_t seed = 42;
  // train.lora: adapters on a frozen base (rank 0: full fine-tuning); targets checked at load.
  model::LoraConfig lora;
};

struct CheckpointSection {
  int64_t every_steps = 0;  // 0: only at the end (and on SIGINT/SIGTERM)
  int64_t keep_last = 3;
  int64_t max_shard_mb = 5000;
  bool at_end = true;       // save when training ends (benchmarks turn it off)
};

struct OutputSection {
  std::filesystem::path dir = "runs/train";
  int64_t log_every = 1;
  bool tensorboard = true;
};

struct DistributedSection {
  // 0: replicated; 1: optimizer state sharded; 2: gradients sharded too; 3: parameters too
  // (each layer gathered for its forward and its backward recompute, see train/sharded_model.hpp)
  int zero = 0;
  // fp32 master weights, AdamW moments and gradient accumulators in (pinned) host memory; the
  // update runs on the CPU. Any ZeRO stage, any world size.
  bool offload_optimizer = false;
  double timeout_s = 300;    // a collective waiting longer than this fails (dead or hung peer)
  std::string backend = "auto";  // auto (NCCL on GPUs, TCPStore on CPU) | nccl | store
  double bucket_mb = 25;         // gradient all-reduce bucket size (overlapped with backward)
  // Each rank builds the whole model in fp32 on the host before moving it to its GPU or keeping
  // its ZeRO-3 shard: how many ranks of a node do so at once (0: as many as half the host memory
  // holds), so that 8 ranks of a 13B model do not need 8 x 78 GB together.
  int build_concurrency = 0;
  // Ulysses sequence parallelism: each micro-batch split over this many consecutive ranks (one
  // node's), for micro-steps longer than one GPU holds; the world must be a multiple of it.
  int sequence_parallel = 1;
};

struct TrainConfig {
  ModelSection model;
  data::PackOptions data;
  OptimSection optim;
  std::string attention_backend = "auto";
  bool attention_deterministic = false;  // the project's kernel: dQ without atomics (reproducible, slower)
  CheckpointSection checkpoint;
  OutputSection output;
  DistributedSection distributed;
  std::string source;  // the config file, for messages
};

// Loads and validates; `overrides` are "section.key=value" (value parsed as YAML). Input files
// are checked by check_inputs_exist, so that --dry-run works before the data is in place.
// `require_data: false` accepts a data section without inputs or pack_dir (`pack --config`,
// whose inputs may come from flags).
TrainConfig load_train_config(const std::filesystem::path& file, const std::vector<std::string>& overrides,
                              bool require_data = true);

// The planner's cost model (rank balancing) for a model: its parameters, hidden size, layers.
data::CostModel cost_model_for(model::LlamaConfig arch);

// The range checks of the `data:` section alone, for `pack --config` (which reads no other).
void check_data_config(const std::filesystem::path& file);

// Every file the config references (weights, tokenizer, inputs, pack_dir) exists: UsageError
// naming the key and the path otherwise.
void check_inputs_exist(const TrainConfig& c);

// Why a model with these heads cannot run at sequence-parallel degree n ("" when it can): the q
// heads must split evenly, and the kv heads either split evenly or divide n (then replicated).
std::string sequence_parallel_problem(int64_t heads, int64_t kv_heads, int n);

// The resolved configuration as YAML, as printed by --dry-run and saved with checkpoints.
std::string to_yaml(const TrainConfig& c);

}  // namespace longalign::train
