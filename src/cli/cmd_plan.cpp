// `longalign plan`: per-GPU memory of a training config at a world size and ZeRO stage, and
// whether it fits a given GPU memory.
#include <cstdio>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/train/memory_estimate.hpp"
#include "longalign/train/train_config.hpp"

namespace longalign::cli {
namespace {

double parse_bytes(const std::string& s) {
  size_t used = 0;
  double v = std::stod(s, &used);
  std::string unit = s.substr(used);
  for (auto& ch : unit) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  if (unit.empty() || unit == "GB" || unit == "G") return v * 1e9;
  if (unit == "GIB") return v * double(1 << 30);
  if (unit == "TB") return v * 1e12;
  if (unit == "MB" || unit == "M") return v * 1e6;
  throw UsageError("--gpu-memory: unknown unit in '" + s + "'; use GB, GiB or MB");
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
  cmd->add_option("--world-size", f->world, "Number of GPUs (data-parallel ranks)")->capture_default_str();
  cmd->add_option("--gpu-memory", f->gpu_memory, "Memory per GPU, e.g. 80GB, 141GB, 24GiB")->capture_default_str();
  cmd->add_option("--zero", f->zero, "ZeRO stages to show (default: 0 1 2)");
  cmd->footer("Example: longalign plan --config configs/llama7b_64k.yaml --world-size 8 --gpu-memory 80GB");
  cmd->callback([&action, f] {
    action = [f] {
      if (f->world < 1) throw UsageError("--world-size must be positive");
      auto cfg = train::load_train_config(f->config, f->sets);
      const double gpu = parse_bytes(f->gpu_memory);
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
