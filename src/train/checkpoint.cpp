// Checkpoint save/load/rotate. Directory names sort by step (zero-padded), so "latest" is the
// last complete one; temp directories never match the step-NNN pattern.
#include "longalign/train/checkpoint.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/model/peft_adapter.hpp"
#include "longalign/model/safetensors_shard_writer.hpp"
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
  return t == at::kBFloat16 ? "bfloat16" : t == at::kHalf ? "float16" : t == at::kDouble ? "float64" : "float32";
}

}  // namespace

fs::path save_checkpoint(const CheckpointPaths& where, const model::LlamaConfig& arch, ParallelModel& pm,
                         const TrainerState& st, const std::string& config_yaml, at::ScalarType save_dtype,
                         uint64_t max_shard_bytes, int64_t keep_last, Collectives* comm) {
  const AdamW& opt = pm.optimizer();
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(st.step));
  fs::path final_dir = where.run_dir / "checkpoints" / name;
  fs::path staging = final_dir;
  staging += ".tmp-staging";
  const int rank = comm ? comm->rank() : 0;
  std::optional<StagedDir> out;
  if (rank == 0) {
    std::error_code ec;
    fs::remove_all(staging, ec);  // left by a crash
    out.emplace(final_dir, /*overwrite=*/true, staging);
  }
  if (comm) comm->barrier();
  if (opt.sharded()) {
    char shard[48];
    std::snprintf(shard, sizeof shard, "optimizer-%05d.safetensors", rank);
    model::write_safetensors(staging / shard, opt.state());
  } else if (rank == 0) {
    model::write_safetensors(staging / "optimizer.safetensors", opt.state());
  }
  if (where.lora) {
    model::NamedTensors adapter;  // small beside the model: held whole
    pm.emit_weights(save_dtype, [&](const std::string& name, const at::Tensor& t) { adapter.emplace_back(name, t); });
    if (rank == 0) model::write_adapter_files(staging, *where.lora, where.base_model, adapter);
  } else {
    std::optional<model::SafetensorsShardWriter> weights;
    if (rank == 0) weights.emplace(staging, max_shard_bytes);
    pm.emit_weights(save_dtype, [&](const std::string& name, const at::Tensor& t) { weights->add(name, t); });
    if (weights) weights->close();
  }
  if (comm) comm->barrier();
  if (rank == 0) {
    if (!where.lora) write_file_atomic(staging / "config.json", model::to_hf_config_json(arch, dtype_name(save_dtype)));
    nlohmann::json js = {{"step", st.step},
                         {"bad_steps", st.bad_steps},
                         {"skipped_total", st.skipped_total},
                         {"tokens_seen", st.tokens_seen},
                         {"total_steps", st.total_steps},
                         {"plan_crc32c", st.plan_crc32c},
                         {"data_crc32c", st.data_crc32c},
                         {"world_size", comm ? comm->world() : 1}};
    write_file_atomic(staging / "trainer_state.json", js.dump(2) + "\n");
    write_file_atomic(staging / "train_config.yaml", config_yaml);
    if (!where.tokenizer.empty() && fs::exists(where.tokenizer)) data::copy_tokenizer(where.tokenizer, staging);
    out->commit();
    auto all = list_checkpoints(where.run_dir);
    for (size_t i = 0; i + keep_last < all.size(); ++i) fs::remove_all(all[i]);
  }
  if (comm) comm->barrier();
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

void load_optimizer_state(const fs::path& dir, AdamW& opt) {
  std::vector<std::unique_ptr<model::SafetensorsFile>> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("optimizer", 0) == 0 && e.path().extension() == ".safetensors")
      files.push_back(std::make_unique<model::SafetensorsFile>(contained_file(dir, n, "checkpoint " + dir.string(), kUnbounded)));
  }
  if (files.empty()) throw RuntimeError("checkpoint " + dir.string() + " has no optimizer state");
  std::vector<const model::SafetensorsFile*> views;
  for (const auto& f : files) views.push_back(f.get());
  opt.load_state(views);
}

std::vector<fs::path> set_aside_later_checkpoints(const fs::path& run_dir, int64_t step) {
  std::vector<fs::path> moved;
  const std::string stamp = std::to_string(std::time(nullptr));
  for (const auto& dir : list_checkpoints(run_dir)) {
    const int64_t s = std::stoll(dir.filename().string().substr(5));
    if (s <= step) continue;
    fs::path to = dir.parent_path() / ("abandoned-" + dir.filename().string() + "-" + stamp);
    fs::rename(dir, to);
    moved.push_back(to);
  }
  return moved;
}

TrainerState read_trainer_state(const fs::path& dir) {
  const fs::path path = contained_file(dir, "trainer_state.json", "checkpoint " + dir.string(), kMaxConfigFileBytes);
  const std::string text = read_regular_file(path, "trainer state", kMaxConfigFileBytes);
  check_json_depth(text, path.string());
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) throw RuntimeError((dir / "trainer_state.json").string() + " is corrupt");
  TrainerState st;
  try {
    st.step = j.at("step").get<int64_t>();
    st.bad_steps = j.value("bad_steps", int64_t{0});
    st.skipped_total = j.value("skipped_total", int64_t{0});
    st.tokens_seen = j.value("tokens_seen", int64_t{0});
    st.total_steps = j.value("total_steps", int64_t{0});
    st.plan_crc32c = j.value("plan_crc32c", std::string());
    st.data_crc32c = j.value("data_crc32c", std::string());
  } catch (const nlohmann::json::exception& e) {
    throw RuntimeError((dir / "trainer_state.json").string() + " is corrupt: " + e.what());
  }
  if (st.step < 0 || st.bad_steps < 0 || st.skipped_total < 0 || st.tokens_seen < 0 || st.total_steps < 0)
    throw RuntimeError((dir / "trainer_state.json").string() + " is corrupt: a negative step or count");
  return st;
}

}  // namespace longalign::train
