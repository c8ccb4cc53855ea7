// `longalign attention-self-check` (hidden): the child process behind `attention.backend: auto`.
// It checks the project's CUDA attention kernel against the reference op and times it beside
// FlashAttention-2 on one device, then prints one report line; the parent (a trainer, generator or
// evaluator) reads it. Run by hand it shows what `auto` would decide on this machine.
#include "commands.hpp"
#include "longalign/ops/cuda_kernel_self_check.hpp"

#include <iostream>

namespace longalign::cli {

void add_attention_self_check(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("attention-self-check",
                                 "Check and time the project's CUDA attention kernel on one GPU (run by attention.backend auto)");
  cmd->group("");  // hidden from --help: an internal step, harmless to run by hand
  struct Args {
    int device = 0;
    std::string dtype = "bf16";
    int64_t head_dim = 128, heads = 32, kv_heads = 8;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--device", a->device, "CUDA device index")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--dtype", a->dtype, "bf16 or fp16")->capture_default_str()->check(CLI::IsMember({"bf16", "fp16"}));
  cmd->add_option("--head-dim", a->head_dim, "64 or 128")->capture_default_str()->check(CLI::IsMember({64, 128}));
  cmd->add_option("--heads", a->heads, "Query heads")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--kv-heads", a->kv_heads, "Key/value heads (divides --heads)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->callback([&action, a] {
    action = [a] {
      const auto r = ops::run_attention_self_check(a->device, a->dtype == "fp16" ? at::kHalf : at::kBFloat16, a->head_dim,
                                                   a->heads, a->kv_heads);
      std::cout << ops::format_self_check_report(r) << std::endl;
      return 0;
    };
  });
}

}  // namespace longalign::cli
