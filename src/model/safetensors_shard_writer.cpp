// Streaming sharded safetensors output; see the header. Shards go to part files first and are
// renamed at close(), when their count is known.
#include "longalign/model/safetensors_shard_writer.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"

namespace fs = std::filesystem;

namespace longalign::model {
namespace {

fs::path part_path(const fs::path& dir, size_t i) { return dir / ("model-part-" + std::to_string(i) + ".safetensors"); }

}  // namespace

SafetensorsShardWriter::SafetensorsShardWriter(fs::path dir, uint64_t max_shard_bytes)
    : dir_(std::move(dir)), max_bytes_(max_shard_bytes) {}

void SafetensorsShardWriter::add(const std::string& name, const at::Tensor& t) {
  const uint64_t b = uint64_t(t.numel()) * t.element_size();
  if (cur_bytes_ > 0 && cur_bytes_ + b > max_bytes_) flush();
  pending_.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  cur_bytes_ += b;
  total_bytes_ += b;
}

void SafetensorsShardWriter::flush() {
  std::vector<std::string> names;
  for (const auto& [n, _] : pending_) names.push_back(n);
  write_safetensors(part_path(dir_, written_.size()), pending_, {{"format", "pt"}});
  written_.push_back(std::move(names));
  pending_.clear();
  cur_bytes_ = 0;
}

void SafetensorsShardWriter::close() {
  if (written_.empty()) {  // everything fits one file
    write_safetensors(dir_ / "model.safetensors", pending_, {{"format", "pt"}});
    pending_.clear();
    return;
  }
  if (!pending_.empty()) flush();
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < written_.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, written_.size());
    fs::rename(part_path(dir_, i), dir_ / name);
    for (const auto& n : written_[i]) weight_map[n] = name;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total_bytes_}}}, {"weight_map", weight_map}};
  write_file_atomic(dir_ / "model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace longalign::model
