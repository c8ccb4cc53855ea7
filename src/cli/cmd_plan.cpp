// `longalign plan`: per-GPU memory of a training config at a world size and ZeRO stage, and
// whether it fits a given GPU memory.
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
double parse_bytes(const std::string& s) {
  const std::string usage = "--gpu-memory " + s + " is not a memory size: use a positive number with GB, GiB, MB or TB, e.g. 80GB";
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
  if (!(v > 0) || v * scale > 1e15) throw UsageError(out_of_range("--gpu-memory", s, "> 0 and <= 1000TB"));
  return v * scale;
}

}  // namespace

void add_plan(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("plan", "Estimate per-GPU memory of a training config and say whether it fits");
  struct Flags {
    std::string config, gpu_memory = "80GB";
    std::vector<std::string> sets;
    int world = 1;
    std::vector<int> zero;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("-c,--config", f->config, "Training YAML")->required();
  cmd->add_option("--set", f->sets, "Override a key: --set data.max_tokens=32768");
  cmd->add_option("--world-size", f->world, "Number of GPUs (data-parallel ranks)")
      ->capture_default_str()
      ->check(int_range(1, kMaxRanks));
  cmd->add_option("--gpu-memory", f->gpu_memory, "Memory per GPU, e.g. 80GB, 141GB, 24GiB")->capture_default_str();
  cmd->add_option("--zero", f->zero, "ZeRO stages to show (default: 0 1 2)")->check(int_range(0, 2));
  cmd->footer("Example: longalign plan --config configs/llama7b_64k.yaml --world-size 8 --gpu-memory 80GB");
  cmd->callback([&action, f] {
    action = [f] {
      const double gpu = parse_bytes(f->gpu_memory);
      check_input_file(f->config, "--config");
      auto cfg = train::load_train_config(f->config, f->sets);
      std::vector<int> stages = f->zero.empty() ? std::vector<int>{0, 1, 2} : f->zero;
      const auto& d = cfg.data.plan;
      train::MemoryInputs in;
      in.tokens = d.strategy == data::Strategy::pack ? d.max_tokens : d.max_tokens * d.batch_size;
      in.param_bytes = cfg.optim.dtype == "fp32" ? 4 : 2;
      in.loss_chunk_tokens = cfg.optim.loss_chunk_tokens;
      in.world_size = f->world;
      std::printf("%s: %.2f B parameters, %lld tokens per micro-step, %s weights, world size %d, %.0f GB per GPU\n",
                  f->config.c_str(), cfg.model.arch.num_parameters() / 1e9, (long long)in.tokens,
                  in.param_bytes == 2 ? "bf16" : "fp32", f->world, gpu / 1e9);
      for (int ckpt : {1, 0}) {
        in.checkpointing = ckpt == 1;
        for (int z : stages) {
          in.zero_stage = z;
          auto e = train::estimate_memory(cfg.model.arch, in);
          std::printf("\nZeRO-%d, activation checkpointing %s: %.1f GB -> %s\n%s", z, ckpt ? "on" : "off", e.total() / 1e9,
                      e.total() <= gpu ? "fits" : "does NOT fit", e.table().c_str());
        }
      }
      return 0;
    };
  });
}

}  // namespace longalign::cli
