// Writer and mmap reader of the tokenized dataset format described in the header.
#include "longalign/data/pack/token_dataset.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "longalign/core/crc32c.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/pack/json_fields.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the on-disk formats are little-endian");

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::data {

DatasetWriter::DatasetWriter(const fs::path& dir, DatasetInfo info)
    : dir_(dir), info_(std::move(info)), tokens_(dir / "tokens.bin"), targets_(dir / "targets.bin"),
      index_(dir / "index.bin") {
  info_.num_sequences = info_.num_tokens = info_.num_targets = 0;
}

void DatasetWriter::add(const TokenizedRecord& rec) {
  uint32_t n_targets = 0;
  for (uint8_t t : rec.target) n_targets += t;
  IndexEntry e{info_.num_tokens, static_cast<uint32_t>(rec.ids.size()), n_targets};
  tokens_.write(rec.ids.data(), rec.ids.size() * sizeof(int32_t));
  targets_.write(rec.target.data(), rec.target.size());
  index_.write(&e, sizeof e);
  index_crc_ = crc32c(&e, sizeof e, index_crc_);
  for (const auto& r : rec.relabels) {
    if (!relabel_) relabel_ = std::make_unique<FileWriter>(dir_ / "relabel.bin");
    RelabelEntry re{info_.num_tokens + r.pos, r.label};
    relabel_->write(&re, sizeof re);
    relabel_crc_ = crc32c(&re, sizeof re, relabel_crc_);
    info_.num_relabels += 1;
  }
  info_.num_sequences += 1;
  info_.num_tokens += rec.ids.size();
  info_.num_targets += n_targets;
}

DatasetInfo DatasetWriter::finish() {
  tokens_.close();
  targets_.close();
  index_.close();
  if (relabel_) relabel_->close();
  json h = {{"format", "longalign-tokens"},
            {"version", kDatasetVersion},
            {"tokenizer_checksum", info_.tokenizer_checksum},
            {"template", info_.template_name},
            {"max_length", info_.max_length},
            {"vocab_size", info_.vocab_size},
            {"bos_id", info_.bos_id},
            {"eos_id", info_.eos_id},
            {"num_sequences", info_.num_sequences},
            {"num_tokens", info_.num_tokens},
            {"num_targets", info_.num_targets},
            {"index_crc32c", index_crc_},
            {"num_relabels", info_.num_relabels},
            {"relabel_crc32c", relabel_crc_}};
  write_file_atomic(dir_ / "header.json", h.dump(2) + "\n");
  return info_;
}

TokenDataset TokenDataset::open(const fs::path& dir) {
  fs::path hpath = dir / "header.json";
  const std::string by = "dataset " + dir.string();
  if (!contained_file_if_present(dir, "header.json", by, kMaxConfigFileBytes))
    throw RuntimeError("not a longalign dataset: " + hpath.string() + " is missing");
  const std::string text = read_regular_file(hpath, "dataset header", kMaxConfigFileBytes);
  check_json_depth(text, hpath.string());
  json h = json::parse(text, nullptr, false);
  auto corrupt = [&](const std::string& why) {
    return RuntimeError("dataset " + dir.string() + " is corrupt: " + why + "; re-run `longalign pack`");
  };
  if (!h.is_object() || !h.contains("format") || h["format"] != "longalign-tokens")
    throw corrupt("header.json is not a dataset header");
  if (!h.contains("version") || (h["version"] != kDatasetVersion && h["version"] != 1))
    throw RuntimeError("dataset " + dir.string() + " has format version " +
                       (h.contains("version") ? truncate_for_message(h["version"].is_structured() ? std::string(h["version"].type_name()) : h["version"].dump(), 40) : "none") + " but this longalign reads version " +
                       std::to_string(kDatasetVersion) + "; re-run `longalign pack` to rebuild it");
  TokenDataset ds;
  uint32_t index_crc = 0, relabel_crc = 0;
  try {
    auto& i = ds.info_;
    i.tokenizer_checksum = h.at("tokenizer_checksum").get<std::string>();
    i.template_name = h.at("template").get<std::string>();
    i.max_length = json_integer_at<int64_t>(h, "max_length");
    i.vocab_size = json_integer_at<int32_t>(h, "vocab_size");
    i.bos_id = json_integer_at<int32_t>(h, "bos_id");
    i.eos_id = json_integer_at<int32_t>(h, "eos_id");
    i.num_sequences = json_integer_at<uint64_t>(h, "num_sequences");
    i.num_tokens = json_integer_at<uint64_t>(h, "num_tokens");
    i.num_targets = json_integer_at<uint64_t>(h, "num_targets");
    i.num_relabels = h.contains("num_relabels") ? json_integer_at<uint64_t>(h, "num_relabels") : 0;
    index_crc = h.contains("index_crc32c") ? json_integer_at<uint32_t>(h, "index_crc32c") : 0;
    relabel_crc = h.contains("relabel_crc32c") ? json_integer_at<uint32_t>(h, "relabel_crc32c") : 0;
  } catch (const std::exception& e) {
    throw corrupt(std::string("header.json: ") + e.what());
  }
  ds.tokens_ = MappedFile(contained_file(dir, "tokens.bin", by, kUnbounded));
  ds.targets_ = MappedFile(contained_file(dir, "targets.bin", by, kUnbounded));
  ds.index_ = MappedFile(contained_file(dir, "index.bin", by, kUnbounded));
  const auto& info = ds.info_;
  // Counts are compared by division: a huge count times the entry size would wrap around.
  auto holds = [](size_t bytes, uint64_t count, size_t entry) { return bytes % entry == 0 && bytes / entry == count; };
  if (!holds(ds.index_.size(), info.num_sequences, sizeof(IndexEntry)))
    throw corrupt("index.bin has " + std::to_string(ds.index_.size()) + " bytes, not " +
                  std::to_string(info.num_sequences) + " entries of " + std::to_string(sizeof(IndexEntry)));
  if (!holds(ds.tokens_.size(), info.num_tokens, sizeof(int32_t))) throw corrupt("tokens.bin has the wrong size");
  if (ds.targets_.size() != info.num_tokens) throw corrupt("targets.bin has the wrong size");
  if (crc32c(ds.index_.data(), ds.index_.size()) != index_crc) throw corrupt("index.bin fails its CRC check");
  if (info.num_relabels > 0) {
    ds.relabel_ = MappedFile(contained_file(dir, "relabel.bin", by, kUnbounded));
    if (!holds(ds.relabel_.size(), info.num_relabels, sizeof(RelabelEntry))) throw corrupt("relabel.bin has the wrong size");
    if (crc32c(ds.relabel_.data(), ds.relabel_.size()) != relabel_crc) throw corrupt("relabel.bin fails its CRC check");
    const auto* r = reinterpret_cast<const RelabelEntry*>(ds.relabel_.data());
    for (size_t k = 0; k < info.num_relabels; ++k)
      if (r[k].pos >= info.num_tokens || (k > 0 && r[k].pos <= r[k - 1].pos) || r[k].label < 0)
        throw corrupt("relabel entry " + std::to_string(k) + " is out of order or out of range");
  }
  ds.n_ = info.num_sequences;
  // The CRC vouches for the index; check that it also tiles tokens.bin exactly.
  uint64_t expect = 0;
  for (size_t k = 0; k < ds.n_; ++k) {
    IndexEntry e;
    std::memcpy(&e, ds.index_.data() + k * sizeof e, sizeof e);
    if (e.offset != expect || e.length == 0) throw corrupt("index entry " + std::to_string(k) + " is inconsistent");
    expect += e.length;
  }
  if (expect != info.num_tokens) throw corrupt("index does not cover tokens.bin");
  return ds;
}

SequenceView TokenDataset::operator[](size_t i) const {
  IndexEntry e;
  std::memcpy(&e, index_.data() + i * sizeof e, sizeof e);
  SequenceView v{reinterpret_cast<const int32_t*>(tokens_.data()) + e.offset, targets_.data() + e.offset, e.length,
                 e.n_targets};
  v.offset = e.offset;
  if (info_.num_relabels > 0) {
    const auto* all = reinterpret_cast<const RelabelEntry*>(relabel_.data());
    const auto* end = all + info_.num_relabels;
    auto by_pos = [](const RelabelEntry& r, uint64_t p) { return r.pos < p; };
    const auto* lo = std::lower_bound(all, end, e.offset, by_pos);
    const auto* hi = std::lower_bound(lo, end, e.offset + e.length, by_pos);
    v.relabels = lo;
    v.num_relabels = size_t(hi - lo);
  }
  return v;
}

int32_t SequenceView::label_at(uint32_t t) const {
  if (num_relabels > 0) {
    const auto* end = relabels + num_relabels;
    const auto* it = std::lower_bound(relabels, end, offset + t, [](const RelabelEntry& r, uint64_t p) { return r.pos < p; });
    if (it != end && it->pos == offset + t) return it->label;
  }
  return ids[t];
}

}  // namespace longalign::data
