// The training loop. One optimizer step = one plan step: its units run as micro-steps on this
// process (data parallelism splits them across ranks later); each unit's loss already carries
// the epoch-normalized weights, so summing micro-step losses gives the step loss directly.
#include "longalign/train/trainer.hpp"

#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <fstream>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/batch.hpp"
#include "longalign/data/batch_tensors.hpp"
#include "longalign/data/pack_reader.hpp"
#include "longalign/data/tokenizer.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/activation_checkpoint.hpp"
#include "longalign/ops/lm_loss.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "longalign/train/checkpoint.hpp"
#include "longalign/train/lr_schedule.hpp"
#include "longalign/train/memory_estimate.hpp"
#include "longalign/train/metrics.hpp"
#include "longalign/train/overlapped_all_reduce.hpp"

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

}  // namespace

bool cuda_available() { return torch::cuda::is_available(); }

TrainSummary run_training(const TrainConfig& cfg, const TrainRequest& req) {
  const auto& op = cfg.optim;
  Collectives* comm = req.comm.get();
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->world() : 1;
  const bool lead = rank == 0;  // writes metrics, logs progress, owns the run directory
  if (!req.dry_run) {
    check_inputs_exist(cfg);
    check_writable_parent(cfg.output.dir / "x");
  }

  const bool cuda_ok = torch::cuda::is_available();
  if (op.device == "cuda" && !cuda_ok && !req.dry_run)
    throw UsageError(cfg.source + ": train.device is cuda but no GPU is available; use --set train.device=cpu");
  const bool use_cuda = op.device == "cuda" || (op.device == "auto" && cuda_ok);
  const torch::Device device = use_cuda && cuda_ok ? torch::kCUDA : torch::kCPU;
  const bool bf16 = op.dtype == "bf16" || (op.dtype == "auto" && use_cuda);
  const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  const auto backend = ops::parse_attention_backend(cfg.attention_backend);

  model::LlamaConfig arch = cfg.model.arch;
  std::optional<fs::path> resume_dir;
  if (!req.resume.empty()) resume_dir = resolve_checkpoint(cfg.output.dir, req.resume);
  // Weights that cannot fit the config are reported before any packing or training.
  if (!cfg.model.path.empty() && !req.dry_run) model::check_weight_shapes(cfg.model.path, arch);
  fs::path pack_dir;
  data::Plan plan;
  std::optional<data::TokenDataset> ds;
  std::string plan_crc, data_crc;
  if (!req.dry_run) {
    // Checked by every rank before any collective, so that all of them refuse alike.
    const int units = cfg.data.tokenize.inputs.empty() ? data::load_plan(cfg.data.output / "plan.json").options.units_per_step
                                                       : cfg.data.plan.units_per_step;
    if (units % world != 0)
      throw UsageError("world size " + std::to_string(world) + " does not divide the plan's " + std::to_string(units) +
                       " units per step; set data.units_per_step to a multiple of the world size");
    if (lead) pack_dir = prepare_data(cfg);  // one rank packs; the others wait and read it
    if (comm) comm->barrier();
    if (!lead) pack_dir = pack_dir_for(cfg);
    data::Pack pack = data::open_pack(pack_dir, cfg.data.verify);
    ds.emplace(std::move(pack.dataset));
    plan = std::move(pack.plan);
    plan_crc = data::recorded_crc(pack_dir, "plan.json");
    data_crc = data::recorded_crc(pack_dir, "tokens.bin");
    if (lead && world > 1 && plan.options.strategy == data::Strategy::sort && plan.options.world_size != world)
      log::warn("this sorted-batching plan was not made for " + std::to_string(world) +
                " ranks, so ranks get micro-batches of unrelated lengths and wait on each other; "
                "set data.world_size: " + std::to_string(world) + " (pack --world-size) to balance them");

    if (arch.vocab_size == 0) arch.vocab_size = ds->info().vocab_size;
    if (ds->info().vocab_size > arch.vocab_size)
      throw UsageError("the dataset's tokenizer has " + std::to_string(ds->info().vocab_size) +
                       " tokens but the model's vocab_size is " + std::to_string(arch.vocab_size));
  }
  if (arch.vocab_size == 0) arch.vocab_size = 32000;  // dry run of a scratch model before packing
  arch.validate(cfg.source);
  if (resume_dir) model::check_weight_shapes(*resume_dir, arch);

  const int64_t plan_steps = int64_t(plan.steps.size());
  int64_t total = plan_steps * op.epochs;
  if (op.max_steps > 0 && (total == 0 || op.max_steps < total)) total = op.max_steps;
  LrSchedule sched{op.schedule, op.lr, op.min_lr_ratio, int64_t(std::ceil(op.warmup_ratio * double(total))), total};

  if (req.dry_run) {
    MemoryInputs mi;
    mi.tokens = cfg.data.plan.strategy == data::Strategy::pack ? cfg.data.plan.max_tokens
                                                                : cfg.data.plan.max_tokens * cfg.data.plan.batch_size;
    mi.checkpointing = op.activation_checkpointing;
    mi.param_bytes = bf16 ? 2 : 4;
    mi.loss_chunk_tokens = op.loss_chunk_tokens;
    std::printf("# resolved configuration\n%s\n", to_yaml(cfg).c_str());
    std::printf("parameters: %lld (%.2f B)\n", (long long)arch.num_parameters(), arch.num_parameters() / 1e9);
    std::printf("device: %s, dtype: %s, steps: %lld\n", use_cuda ? "cuda" : "cpu", bf16 ? "bf16" : "fp32",
                (long long)total);
    std::printf("estimated memory per GPU (%lld tokens per micro-step, world size 1, no sharding):\n%s",
                (long long)mi.tokens, estimate_memory(arch, mi).table().c_str());
    return {};
  }
  if (total <= 0) throw RuntimeError("the plan has no steps; nothing to train");
  if (resume_dir) {
    const TrainerState saved = read_trainer_state(*resume_dir);
    check_resume(*resume_dir, saved, total, plan_crc, data_crc, req.resume_new_data);
    if (saved.step == total) {
      if (lead)
        log::info("checkpoint " + resume_dir->string() + " is at step " + std::to_string(total) +
                  ", the run's last: nothing left to train");
      return {};
    }
  }

  torch::manual_seed(op.seed);
  model::LlamaForCausalLM m(arch);
  if (cfg.model.path.empty()) model::init_weights(*m, cfg.model.init_std, op.seed);
  else model::load_hf_weights(*m, cfg.model.path);
  m->to(device, dtype);
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (auto& p : m->named_parameters()) named.emplace_back(p.key(), p.value());
  AdamW opt(named, {op.beta1, op.beta2, op.eps, op.weight_decay});
  if (comm && cfg.distributed.zero >= 1) opt.shard(world, rank, cfg.distributed.zero);
  // Without gradient sharding, gradients are all-reduced in buckets while backward runs.
  std::unique_ptr<OverlappedAllReduce> overlap;
  if (comm && !opt.grads_sharded())
    overlap = std::make_unique<OverlappedAllReduce>(opt, comm->split(), int64_t(cfg.distributed.bucket_mb * (1 << 20)));

  TrainerState st;
  st.total_steps = total;
  st.plan_crc32c = plan_crc;
  st.data_crc32c = data_crc;
  if (resume_dir) {
    const TrainerState saved = load_checkpoint(*resume_dir, *m, opt);
    st.step = saved.step;
    st.bad_steps = saved.bad_steps;
    st.skipped_total = saved.skipped_total;
    st.tokens_seen = saved.tokens_seen;
    log::info("resumed from " + resume_dir->string() + " at step " + std::to_string(st.step));
  } else if (!req.resume.empty()) {
    log::info("no checkpoint under " + cfg.output.dir.string() + "; starting fresh");
  }

  const std::string config_yaml = to_yaml(cfg);
  if (lead) {
    fs::create_directories(cfg.output.dir);
    write_file_atomic(cfg.output.dir / "train_config.yaml", config_yaml);
  }
  CheckpointPaths ckpt_paths{cfg.output.dir, data::tokenizer_in(pack_dir)};
  const uint64_t shard_bytes = uint64_t(cfg.checkpoint.max_shard_mb) << 20;
  auto save = [&] {
    return save_checkpoint(ckpt_paths, *m, opt, st, config_yaml, dtype, shard_bytes, cfg.checkpoint.keep_last, comm);
  };

  g_signal = 0;
  auto old_int = std::signal(SIGINT, on_signal), old_term = std::signal(SIGTERM, on_signal);
  struct RestoreSignals {
    void (*i)(int), (*t)(int);
    ~RestoreSignals() { std::signal(SIGINT, i), std::signal(SIGTERM, t); }
  } restore{old_int, old_term};

  std::optional<MetricsSink> metrics;
  if (lead) metrics.emplace(cfg.output.dir, cfg.output.tensorboard);
  const model::LayerRunner runner = op.activation_checkpointing ? ops::checkpointed_layers() : model::LayerRunner{};
  const bool deterministic = cfg.attention_deterministic;
  const model::AttentionFn attention = [backend, deterministic](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                                const at::Tensor& cu, int64_t max_len, double scale) {
    return ops::varlen_attention(q, k, v, cu, max_len, scale, backend, deterministic);
  };
  const int32_t pad_id = std::max(0, ds->info().eos_id);

  TrainSummary sum;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_this_run = 0;
  bool first = true;
  if (lead)
    log::info("training " + std::to_string(arch.num_parameters()) + " parameters on " + (device.is_cuda() ? "cuda" : "cpu") +
              " (" + (bf16 ? "bf16" : "fp32") + ") for " + std::to_string(total - st.step) + " steps" +
              (comm ? " on " + std::to_string(world) + " ranks, ZeRO-" + std::to_string(cfg.distributed.zero) : ""));
  while (st.step < total) {
    const size_t ps = plan_step_for(st.step, size_t(plan_steps), cfg.data.plan.seed);
    double loss_sum = 0;
    int64_t step_tokens = 0;
    const auto my_units = data::rank_units(plan, ps, world, rank);
    // Under ZeRO-2 gradients are reduced to their owners after every micro-step, so every rank
    // runs the same number of micro-steps (a rank short of units in a final step sends zeros).
    const size_t micro = opt.grads_sharded() ? size_t(plan.options.units_per_step / world) : my_units.size();
    for (size_t j = 0; j < micro; ++j) {
      if (j >= my_units.size()) {
        opt.reduce_grads_to_owners(*comm);
        continue;
      }
      const size_t u = my_units[j];
      if (overlap && j + 1 == my_units.size()) overlap->arm();  // the last backward of this step
      data::Batch b = data::make_batch(*ds, plan.steps[ps].units[u], plan.options.strategy, pad_id);
      data::BatchTensors t = data::to_tensors(b);
      model::PackedInput in{t.input_ids.to(device), t.position_ids.to(device), t.cu_seqlens.to(device), t.max_seqlen};
      at::Tensor h = m->hidden_states(in, attention, runner);
      at::Tensor loss = ops::weighted_lm_loss(h, m->lm_head_weight(), t.labels.to(device), t.weights.to(device),
                                              op.loss_chunk_tokens);
      loss.backward();
      if (opt.grads_sharded()) opt.reduce_grads_to_owners(*comm);
      else if (!overlap || j + 1 < my_units.size()) opt.accumulate_grads();
      loss_sum += loss.item<double>();
      step_tokens += int64_t(b.input_ids.size());
    }
    // Loss weights are global, so summing over ranks gives the step's loss and gradient; the
    // stop request travels with them so that every rank stops after the same step.
    bool stop_requested = g_signal != 0;
    if (comm) {
      std::vector<double> extras = {loss_sum, double(step_tokens), stop_requested ? 1.0 : 0.0};
      if (overlap) {
        if (my_units.empty()) overlap->arm();  // no unit this step: contribute the zero accumulators
        overlap->wait();
      }
      at::Tensor t = torch::tensor(extras, torch::kDouble);  // gradients are already reduced
      comm->all_reduce_sum(t);
      for (size_t i = 0; i < extras.size(); ++i) extras[i] = t[int64_t(i)].item<double>();
      loss_sum = extras[0];
      step_tokens = int64_t(extras[1]);
      stop_requested = extras[2] > 0;
    }
    // The weights of a step sum to M/M̄ (see batch_plan.hpp): the logged loss divides by that
    // sum, so it is the step's mean per-sequence (or per-token) loss, comparable across steps.
    double weight_sum = 0;
    for (const auto& u : plan.steps[ps].units)
      for (size_t k = 0; k < u.seqs.size(); ++k) weight_sum += u.weights[k] * (*ds)[u.seqs[k]].n_targets;
    loss_sum /= weight_sum;
    StepMetrics mt;
    mt.step = st.step + 1;
    mt.total_steps = total;
    mt.loss = loss_sum;
    mt.lr = sched.at(st.step);
    // The gradient is weight_sum times the step's mean-loss gradient. Clipping it against
    // grad_clip * weight_sum clips that mean exactly as a per-step-normalized trainer would and
    // keeps the M/M̄ scale, so a crowded step is never clipped harder for being crowded (which
    // would undo the equal weight of its sequences). The logged norm is the mean's.
    mt.grad_norm = opt.clip_grad_norm(op.grad_clip * weight_sum, comm) / weight_sum;
    if (!std::isfinite(loss_sum) || !std::isfinite(mt.grad_norm)) {
      opt.zero_grad();
      mt.skipped = true;
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
      opt.step(mt.lr);
      if (opt.sharded()) opt.sync_params(*comm);
      st.bad_steps = 0;
      if (first) sum.first_loss = loss_sum, first = false;
      sum.last_loss = loss_sum;
    }
    st.step += 1;
    st.tokens_seen += step_tokens;
    tokens_this_run += step_tokens;
    mt.tokens = st.tokens_seen;
    mt.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    mt.tokens_per_s = tokens_this_run / std::max(mt.elapsed_s, 1e-9);
    if (metrics) metrics->record(mt, !req.quiet_progress && (st.step % cfg.output.log_every == 0 || st.step == total));
    sum.steps_done += 1;
    const bool due = cfg.checkpoint.every_steps > 0 && st.step % cfg.checkpoint.every_steps == 0;
    if (stop_requested) {
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
