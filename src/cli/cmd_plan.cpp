// `longalign plan`: per-GPU memory of a training config at a world size for ZeRO stages 0-3,
// with and without activation checkpointing, and whether it fits a given GPU memory; with the
// optimizer offloaded, the host memory per node as well, checked against --host-memory.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/option_check.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/train/memory_estimate.hpp"
#include "longalign/train/train_config.hpp"
#include "options.hpp"

namespace longalign::cli {
namespace {

// "80GB", "24GiB", "80" (GB): a positive, finite size. Anything else is refused with the
// forms that work, rather than surfacing a bare std::stod failure.
double parse_bytes(const std::string& flag, const std::string& s) {
  const std::string usage = flag + " " + s + " is not a memory size: use a positive number with GB, GiB, MB or TB, e.g. 80GB";
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v)) throw UsageError(usage);
  std::string unit = end;
  for (auto& ch : unit) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  double scale = 0;
  if (unit.empty() || unit == "GB" || unit == "G") scale = 1e9;
  else if (unit == "GIB") scale = double(1 << 30);
  else if (unit == "TB") scale = 1e12;
  else if (unit == "MB" || unit == "M") scale = 1e6;
  if (scale == 0) throw UsageError(usage);
  if (!(v > 0) || v * scale > 1e15) throw UsageError(out_of_range(flag, s, "> 0 and <= 1000TB"));
  return v * scale;
}

}  // namespace

void add_plan(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("plan", "Estimate per-GPU (and offloaded host) memory of a training config and say whether it fits");
  struct Flags {
    std::string config, gpu_memory = "80GB", host_memory;
    std::vector<std::string> sets;
    int world = 1, gpus_per_node = 0;
    std::vector<int> zero;
    bool max_tokens = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("-c,--config", f->config, "Training YAML")->required();
  cmd->add_option("--set", f->sets, "Override a key: --set data.max_tokens=32768");
  cmd->add_option("--world-size", f->world, "Number of GPUs (ranks; with distributed.sequence_parallel N, each N share a pack)")
      ->capture_default_str()
      ->check(int_range(1, kMaxRanks));
  cmd->add_option("--gpu-memory", f->gpu_memory, "Memory per GPU, e.g. 80GB, 141GB, 24GiB")->capture_default_str();
  cmd->add_option("--zero", f->zero, "ZeRO stages to show (default: 0 1 2 3)")->check(int_range(0, 3));
  cmd->add_option("--gpus-per-node", f->gpus_per_node,
                  "Ranks sharing one host's memory, for the offloaded optimizer (default: min(world size, 8))")
      ->check(int_range(1, kMaxRanks));
  cmd->add_option("--host-memory", f->host_memory,
                  "Host memory per node for the offloaded optimizer, e.g. 512GB (default: not checked, only shown)");
  cmd->add_flag("--max-tokens", f->max_tokens,
                "Instead: the longest micro-step that fits, per ZeRO stage, as configured and with the tiled MLP, "
                "activation offload, optimizer offload and sequence parallelism over a node added in turn");
  cmd->footer("Examples:\n  longalign plan --config configs/llama7b_64k.yaml --world-size 8 --gpu-memory 80GB\n"
              "  longalign plan --config configs/llama7b_64k.yaml --set distributed.offload_optimizer=true --host-memory 256GB\n"
              "  longalign plan --config configs/llama31_8b_128k.yaml --max-tokens --world-size 1 --host-memory 1TB\n"
              "  longalign plan --config configs/llama31_8b_128k.yaml --set distributed.sequence_parallel=8 "
              "--set data.max_tokens=4194304 --world-size 8 --zero 3 --host-memory 2TB");
  cmd->callback([&action, f] {
    action = [f] {
      const double gpu = parse_bytes("--gpu-memory", f->gpu_memory);
      train::MemoryLimits limits;
      limits.gpu_bytes = gpu;
      if (!f->host_memory.empty()) {
        limits.host_bytes = parse_bytes("--host-memory", f->host_memory);
        limits.host_source = "--host-memory";
      }
      check_input_file(f->config, "--config");
      auto cfg = train::load_train_config(f->config, f->sets);
      const std::vector<int> stages = f->zero.empty() ? std::vector<int>{0, 1, 2, 3} : f->zero;
      train::MemoryInputs in = train::memory_inputs(cfg, f->world, f->gpus_per_node);
      // Host memory is checked only against --host-memory: a plan is often made on a login node
      // or laptop, whose memory says nothing of the GPU nodes' (train --dry-run, which runs on the
      // training machine, checks that machine's).
      std::printf("%s: %.2f B parameters, %lld tokens per micro-step, %s weights, world size %d, %.0f GB per GPU\n",
                  f->config.c_str(), cfg.model.arch.num_parameters() / 1e9, (long long)in.tokens,
                  in.param_bytes == 2 ? "bf16" : in.param_bytes == 8 ? "fp64" : "fp32", f->world, gpu / 1e9);
      if (f->max_tokens)
        std::printf("%s", train::max_tokens_plan(cfg.model.arch, in, stages, limits).c_str());
      else
        std::printf("%s", train::memory_plan(cfg.model.arch, in, stages, {true, false}, limits).c_str());
      return 0;
    };
  });
}

}  // namespace longalign::cli
