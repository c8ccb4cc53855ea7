// A HF weights directory written tensor by tensor: model.safetensors, or shards of at most
// `max_shard_bytes` plus model.safetensors.index.json. Only the current shard is held in memory,
// so a sharded (ZeRO-3) model can be written one gathered layer at a time. Shards are named
// model-0000K-of-0000N.safetensors once N is known, at close().
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/model/safetensors.hpp"

namespace longalign::model {

class SafetensorsShardWriter {
 public:
  SafetensorsShardWriter(std::filesystem::path dir, uint64_t max_shard_bytes);
  void add(const std::string& name, const at::Tensor& t);  // copied to CPU now
  void close();

 private:
  void flush();
  std::filesystem::path dir_;
  uint64_t max_bytes_, cur_bytes_ = 0, total_bytes_ = 0;
  NamedTensors pending_;
  std::vector<std::vector<std::string>> written_;  // names in each flushed shard
};

}  // namespace longalign::model
