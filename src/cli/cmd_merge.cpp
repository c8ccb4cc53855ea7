// `longalign merge`: a base model plus a PEFT LoRA adapter -> one HF model directory with the
// adapter folded into the weights (what peft's merge_and_unload() gives), so that any tool that
// loads plain HF checkpoints can use the fine-tuned model.
#include <cstdio>

#include "commands.hpp"
#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/model/lora.hpp"
#include "longalign/model/peft_adapter.hpp"
#include "longalign/model/safetensors.hpp"
#include "longalign/model/weights.hpp"
#include "options.hpp"

namespace fs = std::filesystem;

namespace longalign::cli {
namespace {

at::ScalarType parse_dtype(const std::string& name, const fs::path& base) {
  if (name == "bf16") return at::kBFloat16;
  if (name == "fp16") return at::kHalf;
  if (name == "fp32") return at::kFloat;
  // auto: the dtype the base stores its weights in (its first tensor's).
  model::CheckpointTensors t(base);
  const auto names = t.names();
  return names.empty() ? at::kFloat : t.view(names.front()).scalar_type();
}

std::string hf_dtype(at::ScalarType t) {
  return t == at::kBFloat16 ? "bfloat16" : t == at::kHalf ? "float16" : t == at::kDouble ? "float64" : "float32";
}

}  // namespace

void add_merge(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("merge", "Fold a PEFT LoRA adapter into its base model: a plain HF model directory");
  struct Flags {
    std::string model, adapter, output, dtype = "auto";
    int64_t max_shard_mb = 5000;
    bool overwrite = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("-m,--model", f->model, "The base model directory (config.json + safetensors)")->required();
  cmd->add_option("--adapter", f->adapter, "PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
      ->required();
  cmd->add_option("-o,--output", f->output, "Merged HF model directory to write")->required();
  cmd->add_option("--dtype", f->dtype, "auto (the base's), bf16, fp16 or fp32")
      ->capture_default_str()
      ->check(one_of({"auto", "bf16", "fp16", "fp32"}));
  cmd->add_option("--max-shard-mb", f->max_shard_mb, "Largest safetensors shard")->capture_default_str()->check(int_range(1, 1000000));
  cmd->add_flag("--overwrite", f->overwrite, "Replace an existing output directory");
  cmd->footer("Example:\n  longalign merge --model /models/Llama-3.1-8B --adapter runs/lora/checkpoints/step-00000100 -o merged");
  cmd->callback([&action, f] {
    action = [f] {
      const fs::path base = f->model, adapter = f->adapter, out = f->output;
      check_input_dir(base, "--model");
      check_input_dir(adapter, "--adapter");
      check_input_file(base / "config.json", "--model's config.json");
      check_output_path(out, OutputKind::replaced_dir, "--output", {base / "config.json", adapter / "adapter_config.json"});
      if (fs::exists(out) && !f->overwrite) throw UsageError("--output " + f->output + " exists; pass --overwrite to replace it");
      model::read_adapter_config(adapter);  // a bad adapter is reported before the weights load
      const auto cfg = model::load_hf_config(contained_file(base, "config.json", "model directory " + base.string(), kMaxConfigFileBytes));
      model::check_weight_shapes(base, cfg);
      const at::ScalarType dtype = parse_dtype(f->dtype, base);
      // fp32 weights, the adapter's delta added in fp64 and rounded once (lora_linear.hpp).
      model::LlamaForCausalLM m(cfg);
      model::load_hf_weights(*m, base);
      model::load_adapter(*m, adapter);
      model::merge_lora(*m);
      StagedDir dir(out, f->overwrite);
      model::write_sharded_safetensors(dir.path(), model::hf_state(*m, dtype), uint64_t(f->max_shard_mb) << 20);
      write_file_atomic(dir.path() / "config.json", model::to_hf_config_json(cfg, hf_dtype(dtype)));
      // The tokenizer the adapter was trained with (our checkpoints carry it), else the base's.
      const fs::path tok = fs::exists(data::tokenizer_in(adapter)) ? data::tokenizer_in(adapter) : data::tokenizer_in(base);
      if (fs::exists(tok)) data::copy_tokenizer(tok, dir.path());
      for (const char* side : {"generation_config.json", "tokenizer_config.json", "special_tokens_map.json"})
        if (auto p = contained_file_if_present(base, side, "model directory " + base.string(), kMaxConfigFileBytes);
            p && !fs::exists(dir.path() / side))
          write_file_atomic(dir.path() / side, read_regular_file(*p, side, kMaxConfigFileBytes));
      dir.commit();
      std::printf("merged %s into %s: %s\n", adapter.string().c_str(), base.string().c_str(), out.string().c_str());
      return 0;
    };
  });
}

}  // namespace longalign::cli
