// The tokenized dataset on disk, read through mmap:
//   header.json  format name and version, tokenizer checksum, template, max length, counts,
//                file sizes and the CRC-32C of index.bin
//   tokens.bin   int32 little-endian token ids, all sequences back to back
//   targets.bin  uint8 per token: 1 when the token is a training target (unshifted mask)
//   index.bin    IndexEntry per sequence
//   relabel.bin  RelabelEntry per target whose label differs from its token (imported
//                pre-tokenized data only; absent when there are none), sorted by position
// A size, count or CRC mismatch, or another format version, is reported as corruption.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/mmap_file.hpp"
#include "longalign/data/chat/conversation.hpp"

namespace longalign::data {

constexpr int kDatasetVersion = 2;  // 2 added relabel.bin; version 1 is still read

struct IndexEntry {
  uint64_t offset;     // first token, in tokens from the start of tokens.bin
  uint32_t length;     // tokens
  uint32_t n_targets;  // tokens with target == 1
};
static_assert(sizeof(IndexEntry) == 16);

struct RelabelEntry {
  uint64_t pos;    // in tokens from the start of tokens.bin
  int32_t label;
  uint32_t reserved = 0;
};
static_assert(sizeof(RelabelEntry) == 16);

struct DatasetInfo {
  std::string tokenizer_checksum;  // empty for pre-tokenized input
  std::string template_name;
  int64_t max_length = 0;
  int32_t vocab_size = 0;  // 0 when unknown (pre-tokenized input without a tokenizer)
  int32_t bos_id = -1, eos_id = -1;
  uint64_t num_sequences = 0, num_tokens = 0, num_targets = 0, num_relabels = 0;
};

// Appends sequences into `dir` (an existing, normally staged, directory).
class DatasetWriter {
 public:
  DatasetWriter(const std::filesystem::path& dir, DatasetInfo info);
  void add(const TokenizedRecord& rec);
  // Writes index.bin and header.json; returns the final info with the counts filled in.
  DatasetInfo finish();

 private:
  std::filesystem::path dir_;
  DatasetInfo info_;
  FileWriter tokens_, targets_, index_;
  std::unique_ptr<FileWriter> relabel_;  // opened at the first relabel
  uint32_t index_crc_ = 0, relabel_crc_ = 0;
};

struct SequenceView {
  const int32_t* ids;
  const uint8_t* target;
  uint32_t length;
  uint32_t n_targets;
  const RelabelEntry* relabels = nullptr;  // this sequence's, positions relative to tokens.bin
  size_t num_relabels = 0;
  uint64_t offset = 0;                     // the sequence's first token in tokens.bin

  // The token that target position t (1 <= t < length, target[t] == 1) must be predicted as.
  int32_t label_at(uint32_t t) const;
};

class TokenDataset {
 public:
  // Throws RuntimeError naming the file on any corruption or version mismatch.
  static TokenDataset open(const std::filesystem::path& dir);

  const DatasetInfo& info() const { return info_; }
  size_t size() const { return n_; }
  SequenceView operator[](size_t i) const;

 private:
  DatasetInfo info_;
  MappedFile tokens_, targets_, index_, relabel_;
  size_t n_ = 0;
};

}  // namespace longalign::data
