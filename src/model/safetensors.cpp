// safetensors I/O. Offsets are relative to the end of the header; the header is padded with
// spaces to a multiple of 8 so that the data is aligned.
#include "longalign/model/safetensors.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/model/safetensors_header.hpp"
#include "longalign/model/safetensors_shard_writer.hpp"
#include "longalign/model/torch_bin.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::model {
namespace {

const std::vector<std::pair<std::string, at::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, at::ScalarType>> t = {
      {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"F64", at::kDouble},
      {"I64", at::kLong},  {"I32", at::kInt},  {"I16", at::kShort},     {"I8", at::kChar},
      {"U8", at::kByte},   {"BOOL", at::kBool}};
  return t;
}

std::string dtype_name(at::ScalarType s) {
  for (const auto& [n, t] : dtype_table())
    if (t == s) return n;
  throw RuntimeError(std::string("safetensors: unsupported dtype ") + c10::toString(s));
}

}  // namespace

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  if (!fs::exists(path)) throw RuntimeError("safetensors file " + path.string() + " does not exist");
  // Not a FIFO or a device (MappedFile refuses those too, but this names the file's role).
  if (!fs::is_regular_file(path)) throw RuntimeError("safetensors file " + path.string() + " is not a regular file");
  file_ = MappedFile(path);
  SafetensorsHeader h = parse_safetensors_header(file_.data(), file_.size(), path.string());
  data_start_ = h.data_start;
  metadata_ = std::move(h.metadata);
  for (auto& e : h.entries) {
    at::ScalarType dtype = at::kFloat;
    bool found = false;
    for (const auto& [dn, t] : dtype_table())
      if (dn == e.dtype) dtype = t, found = true;
    // The header parser and dtype_table() list the same names; this is only a tripwire for a
    // dtype added to one and not the other.
    if (!found) throw RuntimeError("safetensors file " + path.string() + ": tensor " + e.name + " has unsupported dtype " + e.dtype);
    names_.push_back(e.name);
    entries_[e.name] = Entry{dtype, std::move(e.shape), e.begin, e.end};
  }
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw RuntimeError("tensor " + name + " is not in " + path_.string());
  const Entry& e = it->second;
  void* p = const_cast<uint8_t*>(file_.data() + data_start_ + e.begin);
  return at::from_blob(p, e.shape, at::TensorOptions().dtype(e.dtype));
}

void write_safetensors(const fs::path& path, const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<at::Tensor> cpu;
  uint64_t off = 0;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    uint64_t bytes = c.numel() * c.element_size();
    h[name] = {{"dtype", dtype_name(c.scalar_type())}, {"shape", c.sizes().vec()}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
    cpu.push_back(std::move(c));
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  FileWriter w(path);
  w.write(&n, 8);
  w.write(header);
  for (const auto& c : cpu) w.write(c.data_ptr(), c.numel() * c.element_size());
  w.close();
}

namespace {

// An index's weight_map: tensor name -> shard file name, each checked against the directory's
// rule (contained_file) before any shard is opened.
std::map<std::string, std::string> weight_map(const fs::path& dir, const std::string& index_name) {
  const fs::path index = contained_file(dir, index_name, "model directory " + dir.string(), kMaxConfigFileBytes);
  const std::string text = read_regular_file(index, "index", kMaxConfigFileBytes);
  check_json_depth(text, index.string());
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw RuntimeError(index.string() + " has no weight_map object");
  std::map<std::string, std::string> out;
  for (auto& [name, file] : j["weight_map"].items()) {
    const std::string key = truncate_for_message(name, 120);
    if (!file.is_string() || file.get<std::string>().empty())
      throw RuntimeError(index.string() + ": weight_map entry " + key + " must name a shard file");
    const std::string fname = file.get<std::string>();
    contained_file(dir, fname, index.string() + "'s weight_map entry for " + key, kUnbounded);
    out[name] = fname;
  }
  return out;
}

}  // namespace

CheckpointTensors::CheckpointTensors(const fs::path& dir) : dir_(dir) {
  const std::string by = "model directory " + dir.string();
  auto present = [&](const char* name) { return contained_file_if_present(dir, name, by, kUnbounded).has_value(); };
  if (present("model.safetensors.index.json")) {
    std::map<std::string, size_t> shard_ids;
    for (const auto& [name, fname] : weight_map(dir, "model.safetensors.index.json")) {
      if (!shard_ids.count(fname)) {
        shard_ids[fname] = files_.size();
        files_.push_back(std::make_unique<SafetensorsFile>(dir / fname));
      }
      where_[name] = shard_ids[fname];
    }
  } else if (present("model.safetensors")) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir / "model.safetensors"));
    for (const auto& n : files_[0]->names()) where_[n] = 0;
  } else if (present("pytorch_model.bin.index.json") || present("pytorch_model.bin")) {
    read_bin(dir / "pytorch_model.bin.index.json");
  } else {
    throw UsageError("no model.safetensors, model.safetensors.index.json, pytorch_model.bin or "
                     "pytorch_model.bin.index.json in " + dir.string());
  }
}

// transformers loads every tensor of each shard the index names; so does this, and each tensor
// the index places in a shard must be found there.
void CheckpointTensors::read_bin(const fs::path& index) {
  std::map<std::string, std::string> wanted;
  std::vector<std::string> shards = {"pytorch_model.bin"};
  if (contained_file_if_present(dir_, index.filename().string(), "model directory " + dir_.string(), kMaxConfigFileBytes)) {
    wanted = weight_map(dir_, index.filename().string());
    shards.clear();
    for (const auto& [name, fname] : wanted)
      if (std::find(shards.begin(), shards.end(), fname) == shards.end()) shards.push_back(fname);
  }
  for (const auto& fname : shards) {
    const fs::path shard = contained_file(dir_, fname, wanted.empty() ? "model directory " + dir_.string() : index.string(), kUnbounded);
    for (auto& [name, t] : read_torch_bin(shard)) {
      if (loaded_.count(name)) throw RuntimeError("tensor " + name + " is in more than one shard of " + dir_.string());
      loaded_[name] = std::move(t);
      if (auto it = wanted.find(name); it != wanted.end() && it->second != fname)
        throw RuntimeError(index.string() + " places tensor " + name + " in " + it->second + " but it is in " + fname);
    }
  }
  for (const auto& [name, fname] : wanted)
    if (!loaded_.count(name)) throw RuntimeError(index.string() + " names tensor " + name + " in " + fname + ", which lacks it");
}

at::Tensor CheckpointTensors::view(const std::string& name) const {
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second;
  auto it = where_.find(name);
  if (it == where_.end()) throw RuntimeError("checkpoint " + dir_.string() + " has no tensor " + name);
  return files_[it->second]->view(name);
}

std::vector<std::string> CheckpointTensors::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : where_) out.push_back(n);
  for (const auto& [n, _] : loaded_) out.push_back(n);
  return out;
}

void write_sharded_safetensors(const fs::path& dir, const NamedTensors& tensors, uint64_t max_shard_bytes) {
  SafetensorsShardWriter w(dir, max_shard_bytes);
  for (const auto& [name, t] : tensors) w.add(name, t);
  w.close();
}

}  // namespace longalign::model
