// The project's own safetensors reader and writer: u64 little-endian header size, a JSON
// header ({name: {dtype, shape, data_offsets}}, "__metadata__"), then raw little-endian data.
// Files are read through mmap; tensors are zero-copy views valid while the file object lives.
#pragma once
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "longalign/core/mmap_file.hpp"

namespace longalign::model {

class SafetensorsFile {
 public:
  // RuntimeError naming the file on a truncated file, bad header, unknown dtype or bad offsets.
  explicit SafetensorsFile(const std::filesystem::path& path);
  const std::vector<std::string>& names() const { return names_; }
  const std::filesystem::path& path() const { return path_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  at::Tensor view(const std::string& name) const;  // CPU, read-only view into the mapping
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry {
    at::ScalarType dtype;
    std::vector<int64_t> shape;
    uint64_t begin, end;
  };
  std::filesystem::path path_;
  MappedFile file_;
  uint64_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::vector<std::string> names_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes tensors (any device; copied to CPU contiguous) to `path`.
void write_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A HF model directory's weights: model.safetensors, or the shards named by
// model.safetensors.index.json; else PyTorch's pytorch_model.bin, or the shards named by
// pytorch_model.bin.index.json (read whole into memory by torch_bin.hpp's reader).
class CheckpointTensors {
 public:
  explicit CheckpointTensors(const std::filesystem::path& dir);
  bool contains(const std::string& name) const { return where_.count(name) > 0 || loaded_.count(name) > 0; }
  at::Tensor view(const std::string& name) const;  // RuntimeError naming the tensor if absent
  std::vector<std::string> names() const;

 private:
  void read_bin(const std::filesystem::path& index);
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
  std::map<std::string, at::Tensor> loaded_;  // tensors of .bin files
  std::filesystem::path dir_;
};

// Writes model.safetensors, or shards of at most `max_shard_bytes` plus the index, into `dir`.
void write_sharded_safetensors(const std::filesystem::path& dir, const NamedTensors& tensors,
                               uint64_t max_shard_bytes);

}  // namespace longalign::model
