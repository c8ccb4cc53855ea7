// The training run: data (packed or cached), resume checks, the single-device model, the
// parallelism pass (parallelize.hpp), then the loop of step functions (train_step.hpp) with
// metrics, checkpoints, non-finite-step handling and graceful SIGINT/SIGTERM.
#include "longalign/train/trainer.hpp"

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <fstream>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/model/safetensors_shard_writer.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/pack/pack_reader.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/model/lora.hpp"
#include "longalign/model/peft_adapter.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "longalign/train/checkpoint.hpp"
#include "longalign/train/lr_schedule.hpp"
#include "longalign/train/memory_estimate.hpp"
#include "longalign/train/metrics.hpp"
#include "longalign/train/parallelize.hpp"
#include "longalign/train/run_report.hpp"
#include "longalign/train/train_step.hpp"

namespace fs = std::filesystem;

namespace longalign::train {
namespace {

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) { g_signal = sig; }

// Where the training data's pack lives: the prepared pack_dir, or the run's cache.
fs::path pack_dir_for(const TrainConfig& cfg) {
  if (!cfg.data.output.empty()) return cfg.data.output;
  return cfg.output.dir / "data.pack";
}

// Packs the configured inputs unless an identical pack is already cached; returns its dir.
fs::path prepare_data(const TrainConfig& cfg) {
  if (cfg.data.tokenize.inputs.empty()) return cfg.data.output;
  data::PackOptions o = cfg.data;
  o.output = pack_dir_for(cfg);
  o.tokenize.progress = true;
  data::resolve_chat_template(o);  // before the cache key, which names the template
  if (read_file(o.output / "pack_config.json") == data::pack_config_json(o)) {
    log::info("using cached pack " + o.output.string());
    return o.output;
  }
  log::info("packing " + std::to_string(o.tokenize.inputs.size()) + " input(s) into " + o.output.string());
  o.overwrite = true;
  data::PackStats st = data::run_pack(o);
  log::info("packed " + std::to_string(st.sequences) + " sequences into " + std::to_string(st.steps) + " steps");
  return o.output;
}

// The plan step trained at global step `s`: epochs after the first visit steps in a seeded order.
size_t plan_step_for(int64_t s, size_t plan_steps, uint64_t seed) {
  const int64_t epoch = s / int64_t(plan_steps), idx = s % int64_t(plan_steps);
  if (epoch == 0) return size_t(idx);
  std::vector<size_t> order(plan_steps);
  for (size_t i = 0; i < plan_steps; ++i) order[i] = i;
  Rng(seed + uint64_t(epoch)).shuffle(order);
  return order[size_t(idx)];
}

// A checkpoint resumes this run only if it belongs to it: its step within the run, and made
// from the same plan and data (unless the user says that new data is meant).
void check_resume(const fs::path& dir, const TrainerState& saved, int64_t total, const std::string& plan_crc,
                  const std::string& data_crc, bool new_data) {
  const std::string name = "checkpoint " + dir.string();
  if (saved.step > total)
    throw UsageError(name + " is at step " + std::to_string(saved.step) + ", beyond this run's " + std::to_string(total) +
                     " steps (plan steps x train.epochs, or train.max_steps); raise train.max_steps or train.epochs, "
                     "or resume from an earlier checkpoint");
  const bool plan_differs = !saved.plan_crc32c.empty() && saved.plan_crc32c != plan_crc;
  const bool data_differs = !saved.data_crc32c.empty() && saved.data_crc32c != data_crc;
  if ((plan_differs || data_differs) && !new_data)
    throw UsageError(name + " was trained on a different " + (data_differs ? "dataset (tokens.bin CRC " : "plan (plan.json CRC ") +
                     (data_differs ? saved.data_crc32c + ", now " + data_crc : saved.plan_crc32c + ", now " + plan_crc) +
                     "); resuming would not continue that run. Pass --resume-new-data to continue from its step " +
                     std::to_string(saved.step) + " on this data anyway");
  if (plan_differs || data_differs)
    log::warn(name + " was trained on other data; continuing from its step " + std::to_string(saved.step) +
              " on this pack as asked (--resume-new-data)");
  if (saved.plan_crc32c.empty())
    log::warn(name + " does not record its plan and data (an older checkpoint); cannot check that it belongs to this run");
  if (saved.total_steps > 0 && saved.total_steps != total)
    log::warn(name + " was saved by a run of " + std::to_string(saved.total_steps) + " steps; this run has " +
              std::to_string(total) + ", so the learning-rate schedule now spans " + std::to_string(total));
}

// The run's data, packed (by rank 0) or cached, opened and verified; `arch`'s vocabulary is
// filled from the tokenizer when the config leaves it open.
struct RunData {
  fs::path pack_dir;
  data::Plan plan;
  std::optional<data::TokenDataset> ds;
  std::string plan_crc, data_crc;
};

// Start-up waves: every rank builds the whole model in fp32 (and its load buffer) before the
// parallelism pass moves it to the GPU or keeps its shard, so a node's ranks do it in
// ceil(local ranks / ranks at once) turns, at once being build_ranks_at_once's (memory_estimate.hpp;
// `plan` shows it too). Every rank must run the same number of waves (each ends in a barrier), so
// nodes with different memory agree on the most any of them needs.
int build_waves(const DistributedSection& d, const TrainRequest& req, Collectives& comm, int64_t params) {
  const double host = host_memory_total();
  int at_once = build_ranks_at_once(host, params, d.build_concurrency);
  if (at_once == 0) at_once = req.local_world;  // host memory unknown: all at once
  at::Tensor each = torch::zeros({comm.world()}, torch::kDouble);
  each[comm.rank()] = double((req.local_world + at_once - 1) / at_once);
  comm.all_reduce_sum(each);
  const int waves = int(each.max().item<double>());
  if (waves > 1 && req.local_rank == 0) {
    std::string line = startup_line(params, req.local_world, host, d.build_concurrency);
    line.pop_back();  // its newline
    log::info(line + " (distributed.build_concurrency; " + std::to_string(waves) + " waves on every node)");
  }
  return waves;
}

// `world`: the data-parallel ranks among which the plan's units are shared.
RunData load_run_data(const TrainConfig& cfg, Collectives* comm, int world, model::LlamaConfig& arch) {
  const int rank = comm ? comm->rank() : 0;
  const bool lead = rank == 0;
  RunData rd;
  // Checked by every rank before any collective, so that all of them refuse alike.
  const int units = cfg.data.tokenize.inputs.empty() ? data::load_plan(cfg.data.output / "plan.json").options.units_per_step
                                                     : cfg.data.plan.units_per_step;
  if (units % world != 0)
    throw UsageError(std::string(cfg.distributed.sequence_parallel > 1 ? "the data-parallel world size (ranks / "
                                                                         "distributed.sequence_parallel) "
                                                                       : "world size ") +
                     std::to_string(world) + " does not divide the plan's " + std::to_string(units) +
                     " units per step; set data.units_per_step to a multiple of it");
  if (lead) rd.pack_dir = prepare_data(cfg);  // one rank packs; the others wait and read it
  if (comm) comm->barrier();
  if (!lead) rd.pack_dir = pack_dir_for(cfg);
  data::Pack pack = data::open_pack(rd.pack_dir, cfg.data.verify);
  rd.ds.emplace(std::move(pack.dataset));
  rd.plan = std::move(pack.plan);
  rd.plan_crc = data::recorded_crc(rd.pack_dir, "plan.json");
  rd.data_crc = data::recorded_crc(rd.pack_dir, "tokens.bin");
  if (lead && world > 1 && rd.plan.options.strategy == data::Strategy::sort && rd.plan.options.world_size != world)
    log::warn("this sorted-batching plan was not made for " + std::to_string(world) +
              " ranks, so ranks get micro-batches of unrelated lengths and wait on each other; "
              "set data.world_size: " + std::to_string(world) + " (pack --world-size) to balance them");
  if (lead && rd.plan.options.world_size != world && data::plan_assigns_ranks(rd.plan))
    log::warn("this plan gives its packs to " + std::to_string(rd.plan.options.world_size) + " ranks, not " +
              std::to_string(world) + ": ranks run contiguous blocks of each step instead, less evenly balanced; "
              "set data.world_size: " + std::to_string(world) + " (pack --world-size) to plan for this world");
  if (arch.vocab_size == 0) arch.vocab_size = rd.ds->info().vocab_size;
  if (rd.ds->info().vocab_size > arch.vocab_size)
    throw UsageError("the dataset's tokenizer has " + std::to_string(rd.ds->info().vocab_size) +
                     " tokens but the model's vocab_size is " + std::to_string(arch.vocab_size));
  return rd;
}

// `attention.backend: auto` decided before training, the same on every rank: each rank's
// self-check may time differently near a 1.0x ratio, and ranks on different backends would train
// with different numerics. A kernel every rank chose stays; otherwise all use FlashAttention-2.
ops::AttentionBackend agreed_attention_backend(const TrainConfig& cfg, const model::LlamaConfig& arch, at::Device device,
                                               at::ScalarType dtype, Collectives* comm) {
  const auto backend = ops::parse_attention_backend(cfg.attention_backend);
  if (backend != ops::AttentionBackend::automatic || !device.is_cuda()) return backend;
  // The heads attention sees: under sequence parallelism, a rank's share after the exchange
  // (kv heads replicated up to the degree where fewer).
  const int64_t sp = cfg.distributed.sequence_parallel;
  at::Tensor probe = torch::empty({1, arch.num_attention_heads / sp, arch.resolved_head_dim()},
                                  torch::TensorOptions().device(device).dtype(dtype));
  auto mine = ops::resolve_auto_backend(probe, std::max(arch.num_key_value_heads, sp) / sp, cfg.attention_deterministic);
  if (!comm) return mine;
  at::Tensor votes = torch::tensor(std::vector<double>{mine == ops::AttentionBackend::cuda ? 1.0 : 0.0}, torch::kDouble);
  comm->all_reduce_sum(votes);
  const int for_kernel = int(votes.item<double>());
  if (for_kernel == 0 || for_kernel == comm->world()) return mine;
  if (comm->rank() == 0)
    log::warn("attention.backend auto: " + std::to_string(comm->world() - for_kernel) + " of " +
              std::to_string(comm->world()) + " ranks chose FlashAttention-2 over the project's kernel; every rank uses it");
  return ops::AttentionBackend::flash;
}

ParallelOptions parallel_options(const TrainConfig& cfg, at::Device device, at::ScalarType dtype,
                                 ops::AttentionBackend backend) {
  const auto& op = cfg.optim;
  ParallelOptions po;
  po.zero = cfg.distributed.zero;
  po.bucket_mb = cfg.distributed.bucket_mb;
  po.device = device;
  po.dtype = dtype;
  po.adam = {op.beta1, op.beta2, op.eps, op.weight_decay};
  po.adam.offload = cfg.distributed.offload_optimizer;
  po.activation_checkpointing = op.activation_checkpointing;
  po.loss_chunk_tokens = op.loss_chunk_tokens;
  po.tiled_mlp_tokens = op.tiled_mlp_tokens;
  po.offload_activations = op.offload_activations;
  const bool deterministic = cfg.attention_deterministic;
  po.attention = [backend, deterministic](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                          const at::Tensor& cu, int64_t max_len, double scale) {
    return ops::varlen_attention(q, k, v, cu, max_len, scale, backend, deterministic);
  };
  return po;
}

// A LoRA run's base model: model.path, or for a model from scratch RUN/base, which the run
// writes once (its initial weights: the adapters need a base that PEFT can load).
fs::path lora_base_dir(const TrainConfig& cfg) {
  return fs::absolute(cfg.model.path.empty() ? cfg.output.dir / "base" : cfg.model.path).lexically_normal();
}

void write_scratch_base(model::LlamaForCausalLMImpl& m, const fs::path& dir, const fs::path& tokenizer,
                        at::ScalarType dtype, uint64_t shard_bytes) {
  StagedDir out(dir, /*overwrite=*/true);
  model::write_sharded_safetensors(out.path(), model::hf_state(m, dtype), shard_bytes);
  write_file_atomic(out.path() / "config.json",
                    model::to_hf_config_json(m.config(), dtype == at::kDouble ? "float64" : dtype == at::kBFloat16 ? "bfloat16" : "float32"));
  if (!tokenizer.empty() && fs::exists(tokenizer)) data::copy_tokenizer(tokenizer, out.path());
  out.commit();
  log::info("wrote the LoRA run's base model (its initial weights) to " + dir.string());
}

// The checkpoint a LoRA run resumes holds an adapter made with this run's LoRA settings (and a
// full run's holds weights): checked before any weights load.
void check_resume_kind(const fs::path& dir, const model::LoraConfig& lora, const std::string& source) {
  const bool adapter = fs::exists(dir / "adapter_config.json");
  if (lora.enabled() && !adapter)
    throw UsageError("checkpoint " + dir.string() + " holds full weights, not a LoRA adapter; " + source +
                     " sets train.lora (remove it to resume this full fine-tuning run)");
  if (!lora.enabled() && adapter)
    throw UsageError("checkpoint " + dir.string() + " holds a LoRA adapter; " + source +
                     " must set the same train.lora to resume it");
  if (!adapter) return;
  const model::LoraConfig saved = model::read_adapter_config(dir);
  if (saved.rank != lora.rank || saved.scaling() != lora.scaling() || saved.modules_to_save != lora.modules_to_save ||
      saved.target_modules != lora.target_modules)
    throw UsageError("checkpoint " + dir.string() + " was trained with other LoRA settings (rank " + std::to_string(saved.rank) +
                     ", alpha " + std::to_string(saved.resolved_alpha()) + ", its target_modules and modules_to_save); " +
                     source + "'s train.lora must match them to resume");
}

}  // namespace

int rank_gpu_index(int local_rank) {
  const int n = int(torch::cuda::device_count());
  const int index = n == 1 ? 0 : local_rank;
  if (index >= n)
    throw UsageError("local rank " + std::to_string(local_rank) + " has no GPU of its own: " + std::to_string(n) +
                     " visible to this process; start at most one rank per GPU (--nproc-per-node " + std::to_string(n) + ")");
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
  return index;
}

bool cuda_available() { return torch::cuda::is_available(); }

TrainSummary run_training(const TrainConfig& cfg, const TrainRequest& req) {
  const auto& op = cfg.optim;
  Collectives* comm = req.comm.get();
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world() : 1;
  const bool lead = rank == 0;  // writes metrics, logs progress, owns the run directory
  const int sp = cfg.distributed.sequence_parallel;
  if (world % sp != 0 && !req.dry_run)  // a dry run's plan says the same in its rows
    throw UsageError(cfg.source + ": distributed.sequence_parallel " + std::to_string(sp) + " needs a multiple of " +
                     std::to_string(sp) + " ranks, but " + std::to_string(world) +
                     (world == 1 ? " process runs; start it with scripts/launch.sh --nproc-per-node " + std::to_string(sp)
                                 : " run; start a multiple of " + std::to_string(sp) + " processes"));
  const int dp_world = std::max(1, world / sp);
  if (lead && cfg.distributed.zero == 3 && !op.activation_checkpointing)
    log::warn("distributed.zero: 3 recomputes each layer in backward (its weights are gathered again then), so "
              "training runs with activation checkpointing although train.activation_checkpointing is false");
  if (!req.dry_run) {
    check_inputs_exist(cfg);
    check_writable_parent(cfg.output.dir / "x");
  }

  const bool cuda_ok = torch::cuda::is_available();
  if (op.device == "cuda" && !cuda_ok && !req.dry_run)
    throw UsageError(cfg.source + ": train.device is cuda but no GPU is available; use --set train.device=cpu");
  const bool use_cuda = op.device == "cuda" || (op.device == "auto" && cuda_ok);
  const torch::Device device = use_cuda && cuda_ok
                                   ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(rank_gpu_index(req.local_rank)))
                                   : torch::Device(torch::kCPU);
  // fp64 exists for exactness checks on CPU (reduction-order noise ~1e-15 instead of ~1e-7).
  if (op.dtype == "fp64" && use_cuda)
    throw UsageError(cfg.source + ": train.dtype fp64 is for CPU runs (exactness checks); use bf16 or fp32 on a GPU, "
                     "or --set train.device=cpu");
  const bool bf16 = op.dtype == "bf16" || (op.dtype == "auto" && use_cuda);
  const auto dtype = bf16 ? torch::kBFloat16 : op.dtype == "fp64" ? torch::kDouble : torch::kFloat;
  const std::string dtype_name = bf16 ? "bf16" : op.dtype == "fp64" ? "fp64" : "fp32";
  ops::parse_attention_backend(cfg.attention_backend);  // refused before any packing

  model::LlamaConfig arch = cfg.model.arch;
  std::optional<fs::path> resume_dir;
  if (!req.resume.empty()) resume_dir = resolve_checkpoint(cfg.output.dir, req.resume);
  // Weights that cannot fit the config are reported before any packing or training.
  if (!cfg.model.path.empty() && !req.dry_run) model::check_weight_shapes(cfg.model.path, arch);
  RunData rd;
  if (!req.dry_run) rd = load_run_data(cfg, comm, dp_world, arch);
  const data::Plan& plan = rd.plan;
  const fs::path& pack_dir = rd.pack_dir;
  const std::string &plan_crc = rd.plan_crc, &data_crc = rd.data_crc;
  if (arch.vocab_size == 0) arch.vocab_size = 32000;  // dry run of a scratch model before packing
  arch.validate(cfg.source);
  const model::LoraConfig& lora = op.lora;
  if (resume_dir) check_resume_kind(*resume_dir, lora, cfg.source);
  if (resume_dir && !lora.enabled()) model::check_weight_shapes(*resume_dir, arch);

  const int64_t plan_steps = int64_t(plan.steps.size());
  int64_t total = plan_steps * op.epochs;
  if (op.max_steps > 0 && (total == 0 || op.max_steps < total)) total = op.max_steps;
  LrSchedule sched{op.schedule, op.lr, op.min_lr_ratio, int64_t(std::ceil(op.warmup_ratio * double(total))), total};

  if (req.dry_run) {
    MemoryInputs mi = memory_inputs(cfg, world);
    mi.param_bytes = int(c10::elementSize(dtype));
    std::printf("# resolved configuration\n%s\n", to_yaml(cfg).c_str());
    std::printf("parameters: %lld (%.2f B)\n", (long long)arch.num_parameters(), arch.num_parameters() / 1e9);
    std::printf("device: %s, dtype: %s, steps: %lld\n", use_cuda ? "cuda" : "cpu", dtype_name.c_str(),
                (long long)total);
    const MemoryLimits limits{0, host_memory_total(), "this machine's memory (MemTotal, or the cgroup limit)"};
    std::printf("estimated memory per GPU (%lld tokens per micro-step, world size %d):\n%s", (long long)mi.tokens, world,
                memory_plan(arch, mi, {cfg.distributed.zero}, {op.activation_checkpointing}, limits).c_str());
    return {};
  }
  if (total <= 0) throw RuntimeError("the plan has no steps; nothing to train");
  std::optional<TrainerState> saved;  // the resumed checkpoint's, read once before any weights
  if (resume_dir) {
    saved = read_trainer_state(*resume_dir);
    check_resume(*resume_dir, *saved, total, plan_crc, data_crc, req.resume_new_data);
    if (saved->step == total) {
      if (lead)
        log::info("checkpoint " + resume_dir->string() + " is at step " + std::to_string(total) +
                  ", the run's last: nothing left to train");
      return {};
    }
  }

  auto build_model = [&] {
    torch::manual_seed(op.seed);
    model::LlamaForCausalLM m(arch);
    // fp64 runs hold fp64 weights from the start, so a resumed fp64 checkpoint loads unrounded.
    if (dtype == torch::kDouble) m->to(torch::kDouble);
    if (resume_dir && !lora.enabled()) model::load_hf_weights(*m, *resume_dir);
    else if (cfg.model.path.empty()) model::init_weights(*m, cfg.model.init_std, op.seed);
    else model::load_hf_weights(*m, cfg.model.path);
    if (lora.enabled()) {
      // A scratch base is rebuilt from the seed on resume; RUN/base holds the same weights. A
      // fresh run rewrites it: an earlier run in this directory may have had another seed or dtype.
      if (lead && cfg.model.path.empty() && (!resume_dir || !fs::exists(lora_base_dir(cfg) / "config.json")))
        write_scratch_base(*m, lora_base_dir(cfg), data::tokenizer_in(pack_dir), dtype,
                           uint64_t(cfg.checkpoint.max_shard_mb) << 20);
      model::attach_lora(*m, lora, op.seed, cfg.source + ": train.lora");
      if (resume_dir) {
        const fs::path f = contained_file(*resume_dir, "adapter_model.safetensors", "checkpoint " + resume_dir->string(), kUnbounded);
        model::load_adapter_state(*m, model::SafetensorsFile(f), f.string());
      }
    }
    return m;
  };
  ParallelOptions po = parallel_options(cfg, device, dtype, agreed_attention_backend(cfg, arch, device, dtype, comm));
  if (sp > 1) {
    po.sequence_group = comm->subgroup(rank / sp * sp, sp);  // consecutive ranks: one node's
    // NCCL sets a communicator up on its first collective: here, before any other thread
    // communicates, rather than in the middle of the first layer beside ZeRO-3's gathers.
    at::Tensor probe = torch::zeros({sp}, torch::TensorOptions().device(device));
    po.sequence_group->all_to_all(probe, probe.clone());
  }
  std::unique_ptr<ParallelModel> pm;
  const int waves = comm ? build_waves(cfg.distributed, req, *comm, arch.num_parameters()) : 1;
  if (waves <= 1) {
    pm = parallelize(build_model(), comm, po);
  } else {
    // The pass needs no collective once its second channel exists, so a node's ranks take turns;
    // the barrier after each wave lets the next one start as the last one's full copies are freed.
    po.channel = comm->split();
    for (int w = 0; w < waves; ++w) {
      if (req.local_rank % waves == w) pm = parallelize(build_model(), comm, po);
      try {
        comm->barrier();
      } catch (const std::exception& e) {
        throw RuntimeError(std::string(e.what()) + " (while start-up wave " + std::to_string(w + 1) + " of " +
                           std::to_string(waves) + " built its model: each wave must finish within distributed.timeout_s; "
                           "raise it, or distributed.build_concurrency if host memory allows)");
      }
    }
  }

  TrainerState st;
  st.total_steps = total;
  st.plan_crc32c = plan_crc;
  st.data_crc32c = data_crc;
  if (resume_dir) {
    load_optimizer_state(*resume_dir, pm->optimizer());
    st.step = saved->step;
    st.bad_steps = saved->bad_steps;
    st.skipped_total = saved->skipped_total;
    st.tokens_seen = saved->tokens_seen;
    log::info("resumed from " + resume_dir->string() + " at step " + std::to_string(st.step));
    if (lead)
      for (const auto& p : set_aside_later_checkpoints(cfg.output.dir, st.step))
        log::warn("a checkpoint after step " + std::to_string(st.step) + " belongs to the abandoned trajectory; kept as " +
                  p.string());
  } else if (!req.resume.empty()) {
    log::info("no checkpoint under " + cfg.output.dir.string() + "; starting fresh");
  }

  const std::string config_yaml = to_yaml(cfg);
  if (lead) {
    fs::create_directories(cfg.output.dir);
    write_file_atomic(cfg.output.dir / "train_config.yaml", config_yaml);
  }
  CheckpointPaths ckpt_paths{cfg.output.dir, data::tokenizer_in(pack_dir)};
  if (lora.enabled()) {
    ckpt_paths.lora = &lora;
    ckpt_paths.base_model = lora_base_dir(cfg).string();
  }
  const uint64_t shard_bytes = uint64_t(cfg.checkpoint.max_shard_mb) << 20;
  // report.html follows the run: rewritten at each checkpoint and at the end. A report that cannot
  // be written costs a warning, never the run.
  auto report = [&] {
    if (!lead) return;
    try {
      write_run_report(cfg.output.dir);
    } catch (const std::exception& e) {
      log::warn(std::string("could not write the run report: ") + e.what());
    }
  };
  auto save = [&] {
    auto ck = save_checkpoint(ckpt_paths, arch, *pm, st, config_yaml, dtype, shard_bytes, cfg.checkpoint.keep_last, comm);
    report();
    return ck;
  };

  g_signal = 0;
  auto old_int = std::signal(SIGINT, on_signal), old_term = std::signal(SIGTERM, on_signal);
  struct RestoreSignals {
    void (*i)(int), (*t)(int);
    ~RestoreSignals() { std::signal(SIGINT, i), std::signal(SIGTERM, t); }
  } restore{old_int, old_term};

  std::optional<MetricsSink> metrics;
  if (lead) metrics.emplace(cfg.output.dir, cfg.output.tensorboard);
  StepInputs si;
  si.plan = &plan;
  si.ds = &*rd.ds;
  si.comm = comm;
  si.sequence_parallel = sp;
  si.device = device;
  si.pad_id = std::max(0, rd.ds->info().eos_id);
  si.grad_clip = op.grad_clip;

  TrainSummary sum;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_this_run = 0;
  bool first = true;
  if (lead)
    log::info("training " + (lora.enabled() ? std::to_string(model::lora_parameter_counts(arch, lora).total()) + " of " : std::string()) +
              std::to_string(arch.num_parameters()) + " parameters" +
              (lora.enabled() ? " (LoRA rank " + std::to_string(lora.rank) + ", base frozen)" : std::string()) + " on " + (device.is_cuda() ? "cuda" : "cpu") +
              " (" + dtype_name + ") for " + std::to_string(total - st.step) + " steps" +
              (comm ? " on " + std::to_string(world) + " ranks" : "") +
              (sp > 1 ? " (" + std::to_string(dp_world) + " data-parallel x " + std::to_string(sp) + " sequence-parallel)"
                      : "") +
              (comm || cfg.distributed.zero == 3 ? ", ZeRO-" + std::to_string(cfg.distributed.zero) : "") +
              (cfg.distributed.offload_optimizer ? ", optimizer offloaded to the host" : ""));
  while (st.step < total) {
    si.plan_step = plan_step_for(st.step, size_t(plan_steps), cfg.data.plan.seed);
    si.lr = sched.at(st.step);
    si.stop_requested = g_signal != 0;
    const StepResult r = train_step(*pm, si);
    StepMetrics mt;
    mt.step = st.step + 1;
    mt.total_steps = total;
    mt.loss = r.loss;
    mt.lr = si.lr;
    mt.grad_norm = r.grad_norm;
    mt.skipped = r.skipped;
    if (r.skipped) {
      st.bad_steps += 1;
      st.skipped_total += 1;
      if (lead)
        log::warn("step " + std::to_string(st.step + 1) + ": non-finite loss or gradient; step skipped (" +
                  std::to_string(st.bad_steps) + " in a row)");
      if (st.bad_steps >= op.max_bad_steps) {
        if (metrics) metrics->close();
        auto last = resolve_checkpoint(cfg.output.dir, "latest");
        throw RuntimeError(std::to_string(st.bad_steps) + " consecutive non-finite steps; stopping. Last good checkpoint: " +
                           (last ? last->string() : std::string("none")) + ". Lower train.lr or check the data.");
      }
    } else {
      st.bad_steps = 0;
      if (first) sum.first_loss = r.loss, first = false;
      sum.last_loss = r.loss;
    }
    st.step += 1;
    st.tokens_seen += r.tokens;
    tokens_this_run += r.tokens;
    mt.tokens = st.tokens_seen;
    mt.micro_steps = r.micro_steps;
    mt.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    mt.tokens_per_s = tokens_this_run / std::max(mt.elapsed_s, 1e-9);
    if (metrics) metrics->record(mt, !req.quiet_progress && (st.step % cfg.output.log_every == 0 || st.step == total));
    sum.steps_done += 1;
    const bool due = cfg.checkpoint.every_steps > 0 && st.step % cfg.checkpoint.every_steps == 0;
    if (r.stop_requested) {
      log::warn(std::string("received ") + (g_signal == SIGTERM ? "SIGTERM" : "SIGINT") + "; saving a checkpoint");
      sum.checkpoint = save();
      sum.interrupted = true;
      break;
    }
    if (req.stop_at_step > 0 && st.step >= req.stop_at_step && st.step < total) {
      log::info("stopping after step " + std::to_string(st.step) + " as requested (--stop-at-step)");
      sum.checkpoint = save();
      sum.interrupted = true;
      break;
    }
    if (due && st.step < total) sum.checkpoint = save();
  }
  if (!sum.interrupted && cfg.checkpoint.at_end) sum.checkpoint = save();
  if (metrics) metrics->close();
  report();
  sum.skipped = st.skipped_total;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.tokens_per_s = tokens_this_run / std::max(sum.seconds, 1e-9);
  if (device.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
    sum.peak_gpu_mb = double(stats.allocated_bytes[0].peak) / (1 << 20);
  }
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) sum.peak_rss_mb = std::stod(line.substr(6)) / 1024.0;
  return sum;
}

}  // namespace longalign::train
