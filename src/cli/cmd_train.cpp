// `longalign train --config FILE [--set section.key=value ...] [--resume [DIR|latest]] [--dry-run]`
#include <cstdio>

#include "commands.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/dist/dist_env.hpp"
#include "longalign/dist/collectives_factory.hpp"
#include "longalign/train/trainer.hpp"
#include "options.hpp"

namespace longalign::cli {

void add_train(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("train", "Fine-tune (or train from scratch) a Llama-architecture model");
  auto config = std::make_shared<std::string>();
  auto sets = std::make_shared<std::vector<std::string>>();
  auto req = std::make_shared<train::TrainRequest>();
  cmd->add_option("-c,--config", *config, "YAML config (configs/tiny_cpu.yaml, configs/llama7b_64k.yaml)")->required();
  cmd->add_option("--set", *sets, "Override a key: --set train.lr=1e-4 (repeatable)");
  cmd->add_option("--resume", req->resume, "Resume from a checkpoint directory, or `latest` under output.dir")
      ->expected(0, 1)
      ->default_str("latest");
  cmd->add_flag("--resume-new-data", req->resume_new_data,
                "Resume although the checkpoint was trained on another plan or dataset (continue on this data)");
  cmd->add_flag("--dry-run", req->dry_run, "Print the resolved config, parameter count and memory estimate; train nothing");
  cmd->add_flag("--no-progress", req->quiet_progress, "No per-step progress output");
  cmd->add_option("--stop-at-step", req->stop_at_step,
                  "Checkpoint and stop after this step (the LR schedule still spans the whole run)")
      ->check(int_range(1, 1000000000000));
  cmd->footer(
      "Examples:\n"
      "  longalign train --config configs/tiny_cpu.yaml\n"
      "  longalign train --config configs/llama7b_64k.yaml --dry-run\n"
      "  longalign train --config configs/tiny_cpu.yaml --set train.lr=3e-4 --resume latest");
  cmd->callback([&action, config, sets, req, cmd] {
    action = [config, sets, req, cmd] {
      if (cmd->count("--resume") && req->resume.empty()) req->resume = "latest";
      auto cfg = train::load_train_config(*config, *sets);
      check_output_path(cfg.output.dir, OutputKind::dir, cfg.source + ": output.dir");
      if (!req->resume.empty() && req->resume != "latest") check_input_dir(req->resume, "--resume");
      const dist::DistEnv env = dist::read_dist_env();
      // One process needs no collectives, unless NCCL is asked for (the GPU check runs it at
      // world size 1, since one GPU cannot host two NCCL ranks).
      if ((env.distributed() || cfg.distributed.backend == "nccl") && !req->dry_run) {
        if (env.rank > 0) log::set_level(log::Level::warn);  // rank 0 speaks for the job
        const bool cuda = cfg.optim.device == "cuda" || (cfg.optim.device == "auto" && train::cuda_available());
        req->comm = dist::make_collectives(env, cfg.distributed.backend, cuda, cfg.distributed.timeout_s);
        req->local_rank = env.local_rank, req->local_world = env.local_world_size;
      }
      auto s = train::run_training(cfg, *req);
      if (req->dry_run || env.rank > 0) return 0;
      std::printf("\n== training summary ==\nsteps %lld  skipped %lld  time %.1f s  %.0f tokens/s  peak RSS %.0f MB"
                  "  peak GPU memory %.0f MiB\n"
                  "loss %.4f (first step) -> %.4f (last step)\ncheckpoint %s%s\n",
                  (long long)s.steps_done, (long long)s.skipped, s.seconds, s.tokens_per_s, s.peak_rss_mb, s.peak_gpu_mb, s.first_loss,
                  s.last_loss,
                  s.checkpoint.string().c_str(), s.interrupted ? " (interrupted; resume with --resume)" : "");
      return 0;
    };
  });
}

}  // namespace longalign::cli
