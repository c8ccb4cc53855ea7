// Checkpoint save/load/rotate. Directory names sort by step (zero-padded), so "latest" is the
// last complete one; temp directories never match the step-NNN pattern.
#include "longalign/train/checkpoint.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/model/weights.hpp"

namespace fs = std::filesystem;

namespace longalign::train {
namespace {

std::vector<fs::path> list_checkpoints(const fs::path& run_dir) {
  std::vector<fs::path> out;
  fs::path dir = run_dir / "checkpoints";
  if (!fs::exists(dir)) return out;
  static const std::regex re("step-[0-9]{8}");
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && std::regex_match(e.path().filename().string(), re) && fs::exists(e.path() / "trainer_state.json"))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string dtype_name(at::ScalarType t) {
  return t == at::kBFloat16 ? "bfloat16" : t == at::kHalf ? "float16" : "float32";
}

}  // namespace

fs::path save_checkpoint(const CheckpointPaths& where, model::LlamaForCausalLMImpl& m, const AdamW& opt,
                         const TrainerState& st, const std::string& config_yaml, at::ScalarType save_dtype,
                         uint64_t max_shard_bytes, int64_t keep_last) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(st.step));
  fs::path final_dir = where.run_dir / "checkpoints" / name;
  StagedDir out(final_dir, /*overwrite=*/true);
  write_file_atomic(out.path() / "config.json", model::to_hf_config_json(m.config(), dtype_name(save_dtype)));
  model::write_sharded_safetensors(out.path(), model::hf_state(m, save_dtype), max_shard_bytes);
  model::write_safetensors(out.path() / "optimizer.safetensors", opt.state());
  nlohmann::json js = {{"step", st.step},
                       {"bad_steps", st.bad_steps},
                       {"skipped_total", st.skipped_total},
                       {"tokens_seen", st.tokens_seen}};
  write_file_atomic(out.path() / "trainer_state.json", js.dump(2) + "\n");
  write_file_atomic(out.path() / "train_config.yaml", config_yaml);
  if (!where.tokenizer.empty() && fs::exists(where.tokenizer)) fs::copy_file(where.tokenizer, out.path() / "tokenizer.model");
  out.commit();
  auto all = list_checkpoints(where.run_dir);
  for (size_t i = 0; i + keep_last < all.size(); ++i) fs::remove_all(all[i]);
  return final_dir;
}

std::optional<fs::path> resolve_checkpoint(const fs::path& run_dir, const std::string& spec) {
  if (spec != "latest") {
    if (!fs::exists(fs::path(spec) / "trainer_state.json"))
      throw UsageError("--resume " + spec + " is not a checkpoint directory (no trainer_state.json)");
    return fs::path(spec);
  }
  auto all = list_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

TrainerState load_checkpoint(const fs::path& dir, model::LlamaForCausalLMImpl& m, AdamW& opt) {
  model::load_hf_weights(m, dir);
  opt.load_state(model::SafetensorsFile(dir / "optimizer.safetensors"));
  auto j = nlohmann::json::parse(read_file(dir / "trainer_state.json").value_or(""), nullptr, false);
  if (!j.is_object()) throw RuntimeError((dir / "trainer_state.json").string() + " is corrupt");
  TrainerState st;
  st.step = j.value("step", int64_t{0});
  st.bad_steps = j.value("bad_steps", int64_t{0});
  st.skipped_total = j.value("skipped_total", int64_t{0});
  st.tokens_seen = j.value("tokens_seen", int64_t{0});
  return st;
}

}  // namespace longalign::train
