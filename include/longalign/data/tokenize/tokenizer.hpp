// The tokenizer seen by the data pipeline: an interface so tests can use a hand-checkable
// byte tokenizer, with sentencepiece (e.g. Llama-2's unmodified tokenizer.model) or a Hugging Face
// byte-level BPE tokenizer.json (Llama-3, Qwen2) behind it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace longalign::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Plain text to ids; adds no BOS/EOS. Must be safe to call from several threads at once.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual int32_t piece_id(std::string_view piece) const = 0;  // -1 when not in the vocabulary
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual std::string checksum() const = 0;  // identifies the model file, stored in datasets
};

// Missing file -> UsageError; unreadable or corrupt model -> RuntimeError. Both name the path.
std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model);

// A `.json` path is a tokenizer.json (see bpe_tokenizer.hpp), anything else a sentencepiece model.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// The name a copy of this tokenizer takes in a pack or model directory: tokenizer.json for a
// tokenizer.json, else tokenizer.model.
std::string tokenizer_file_name(const std::filesystem::path& tokenizer);

// Copies the tokenizer into `dir` under tokenizer_file_name, with the tokenizer_config.json beside
// it when there is one (it may add token ids, and names the chat template).
void copy_tokenizer(const std::filesystem::path& tokenizer, const std::filesystem::path& dir);

// The tokenizer in a pack or model directory: DIR/tokenizer.model, else DIR/tokenizer.json when
// only that exists (DIR/tokenizer.model when neither does, for the error message).
std::filesystem::path tokenizer_in(const std::filesystem::path& dir);

// Markers of the built-in chat templates, registered as single pieces in trained tokenizers.
const std::vector<std::string>& template_marker_pieces();

struct TokenizerTrainOptions {
  int vocab_size = 4000;
  std::string model_type = "bpe";  // Llama's tokenizers are BPE with byte fallback
  uint64_t max_sentences = 200000;
};

// Trains a Llama-style sentencepiece model (unk 0, bos 1, eos 2, byte fallback) from text or
// JSONL files and writes it atomically to `output`. JSONL inputs contribute their message text.
void train_sentencepiece(const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& output,
                         const TokenizerTrainOptions& opts);

// CRC-32C of the file's bytes, as hex.
std::string file_checksum(const std::filesystem::path& path);

}  // namespace longalign::data
