// sentencepiece-backed Tokenizer and trainer. SentencePieceProcessor::Encode is const and
// thread-safe, so one loaded model serves every tokenization worker.
#include "longalign/data/tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/crc32c.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/mmap_file.hpp"
#include "longalign/data/bpe_tokenizer.hpp"

namespace fs = std::filesystem;

namespace longalign::data {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const fs::path& path) {
    if (!fs::exists(path))
      throw UsageError("tokenizer " + path.string() + " does not exist; pass --tokenizer PATH or train one with "
                       "`longalign tokenizer train`");
    auto st = sp_.Load(path.string());
    if (!st.ok())
      throw RuntimeError("tokenizer " + path.string() + " is not a valid sentencepiece model (" + st.ToString() + ")");
    checksum_ = file_checksum(path);
    load_added_tokens(path.parent_path() / "tokenizer_config.json");
  }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> out;
    // Added tokens are cut out of the text first and the pieces between them encoded one by one,
    // as HF's tokenizers do, so "<|user|>" in text is that one token. Each token's next
    // occurrence is searched again only once the cursor has passed it, keeping long texts linear.
    std::vector<size_t> next(added_.size(), 0);
    for (size_t i = 0; i < added_.size(); ++i) next[i] = text.find(added_[i].first);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t at = std::string_view::npos, best = 0;
      for (size_t i = 0; i < added_.size(); ++i) {
        if (next[i] != std::string_view::npos && next[i] < pos) next[i] = text.find(added_[i].first, pos);
        // leftmost, and the longest of those starting there
        if (next[i] < at || (next[i] == at && at != std::string_view::npos &&
                             added_[i].first.size() > added_[best].first.size()))
          at = next[i], best = i;
      }
      encode_plain(text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos), out);
      if (at == std::string_view::npos) break;
      out.push_back(added_[best].second);
      pos = at + added_[best].first.size();
    }
    return out;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out, run;
    std::vector<int> plain;
    auto flush = [&] {
      sp_.Decode(plain, &run);
      out += run;
      plain.clear();
    };
    for (int32_t id : ids) {
      if (auto it = added_pieces_.find(id); it != added_pieces_.end()) {
        flush();
        out += it->second;
      } else {
        plain.push_back(id);
      }
    }
    flush();
    return out;
  }
  int32_t piece_id(std::string_view piece) const override {
    if (auto it = added_ids_.find(std::string(piece)); it != added_ids_.end()) return it->second;
    int id = sp_.PieceToId(piece);
    return (id == sp_.unk_id() && piece != sp_.IdToPiece(sp_.unk_id())) ? -1 : id;
  }
  int32_t bos_id() const override { return sp_.bos_id(); }
  int32_t eos_id() const override { return sp_.eos_id(); }
  int32_t vocab_size() const override {
    return added_pieces_.empty() ? sp_.GetPieceSize() : std::max(sp_.GetPieceSize(), added_pieces_.rbegin()->first + 1);
  }
  std::string checksum() const override { return checksum_; }

 private:
  // ChatGLM3 gives its special tokens ([gMASK], sop, <|user|>, ...) ids after the sentencepiece
  // vocabulary and lists them only in tokenizer_config.json's added_tokens_decoder. Entries with
  // ids inside the vocabulary are the model's own pieces and are left to sentencepiece.
  void load_added_tokens(const fs::path& config) {
    if (!fs::exists(config)) return;
    std::ifstream f(config, std::ios::binary);
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (!j.is_object()) throw RuntimeError(config.string() + " (beside the tokenizer) is not a JSON object");
    if (!j.contains("added_tokens_decoder") || !j["added_tokens_decoder"].is_object()) return;
    for (const auto& [key, entry] : j["added_tokens_decoder"].items()) {
      int64_t id = -1;
      try {
        id = std::stoll(key);
      } catch (const std::exception&) {
      }
      if (id < 0 || id > INT32_MAX || !entry.is_object() || !entry.contains("content") || !entry["content"].is_string() ||
          entry["content"].get<std::string>().empty())
        throw RuntimeError(config.string() + ": added_tokens_decoder entry \"" + key +
                           "\" needs a non-negative integer id and a non-empty string content");
      if (id < sp_.GetPieceSize()) continue;
      const std::string content = entry["content"];
      added_ids_[content] = int32_t(id);
      added_pieces_[int32_t(id)] = content;
    }
    added_.assign(added_ids_.begin(), added_ids_.end());
    // The stored checksum identifies the token ids, and these ids come from this file too.
    if (!added_pieces_.empty()) checksum_ += "+" + file_checksum(config);
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::vector<int> ids;
    auto st = sp_.Encode(text, &ids);
    if (!st.ok()) throw RuntimeError("sentencepiece encode failed: " + st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  sentencepiece::SentencePieceProcessor sp_;
  std::string checksum_;
  std::map<std::string, int32_t> added_ids_;
  std::map<int32_t, std::string> added_pieces_;
  std::vector<std::pair<std::string, int32_t>> added_;  // added_ids_, for the scan in encode
};

// Appends the text of one JSONL record (any dialect) or a plain line to the corpus file.
void append_corpus_text(const std::string& line, bool jsonl, std::ofstream& out, uint64_t& n) {
  if (!jsonl) {
    if (!line.empty()) out << line << '\n', ++n;
    return;
  }
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return;
  auto emit = [&](const nlohmann::json& v) {
    if (!v.is_string()) return;
    // sentencepiece trains on sentences; split long documents on newlines.
    std::string s = v.get<std::string>();
    size_t start = 0;
    while (start < s.size()) {
      size_t end = s.find('\n', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.write(s.data() + start, end - start), out << '\n', ++n;
      start = end + 1;
    }
  };
  for (const char* list : {"messages", "conversations"})
    if (j.contains(list) && j[list].is_array())
      for (auto& m : j[list])
        if (m.is_object())
          for (const char* k : {"content", "value"})
            if (m.contains(k)) emit(m[k]);
  for (const char* k : {"instruction", "input", "output", "text"})
    if (j.contains(k)) emit(j[k]);
}

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const fs::path& model) {
  return std::make_unique<SentencePieceTokenizer>(model);
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  if (path.extension() == ".json") return load_bpe_tokenizer(path);
  return load_sentencepiece(path);
}

std::string tokenizer_file_name(const fs::path& tokenizer) {
  return tokenizer.extension() == ".json" ? "tokenizer.json" : "tokenizer.model";
}

fs::path tokenizer_in(const fs::path& dir) {
  if (!fs::exists(dir / "tokenizer.model") && fs::exists(dir / "tokenizer.json")) return dir / "tokenizer.json";
  return dir / "tokenizer.model";
}

const std::vector<std::string>& template_marker_pieces() {
  static const std::vector<std::string> markers = {"[INST]",   "[/INST]",     "<<SYS>>",    "<</SYS>>",
                                                   "[gMASK]",  "<sop>",       "<|im_start|>", "<|im_end|>",
                                                   "<|begin_of_text|>", "<|start_header_id|>",
                                                   "<|end_header_id|>", "<|eot_id|>"};
  return markers;
}

void train_sentencepiece(const std::vector<fs::path>& inputs, const fs::path& output,
                         const TokenizerTrainOptions& opts) {
  if (inputs.empty()) throw UsageError("tokenizer train needs at least one --input file");
  if (opts.vocab_size < 300) throw UsageError("--vocab-size must be at least 300 (256 byte pieces + markers), got " +
                                              std::to_string(opts.vocab_size));
  check_writable_parent(output);
  fs::path parent = output.parent_path().empty() ? fs::path(".") : output.parent_path();
  fs::create_directories(parent);
  fs::path work = parent / (output.filename().string() + ".tmp-train");
  fs::remove_all(work);
  fs::create_directories(work);
  struct Cleanup {
    fs::path p;
    ~Cleanup() { std::error_code ec; fs::remove_all(p, ec); }
  } cleanup{work};

  fs::path corpus = work / "corpus.txt";
  uint64_t n = 0;
  {
    std::ofstream out(corpus, std::ios::binary);
    for (const auto& in : inputs) {
      std::ifstream f(in, std::ios::binary);
      if (!f) throw UsageError("cannot read tokenizer training input " + in.string());
      bool jsonl = in.extension() == ".jsonl" || in.extension() == ".json";
      std::string line;
      while (std::getline(f, line)) append_corpus_text(line, jsonl, out, n);
    }
    if (!out) throw RuntimeError("cannot write " + corpus.string());
  }
  if (n == 0) throw RuntimeError("tokenizer training inputs hold no text");

  std::string markers;
  for (const auto& m : template_marker_pieces()) markers += (markers.empty() ? "" : ",") + m;
  std::string args = "--input=" + corpus.string() + " --model_prefix=" + (work / "tok").string() +
                     " --vocab_size=" + std::to_string(opts.vocab_size) + " --model_type=" + opts.model_type +
                     " --byte_fallback=true --hard_vocab_limit=false --character_coverage=0.9995"
                     " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --split_digits=true"
                     " --input_sentence_size=" + std::to_string(opts.max_sentences) +
                     " --shuffle_input_sentence=true --minloglevel=2 --num_threads=2"
                     " --user_defined_symbols=" + markers;
  // The trainer echoes its whole command line to stderr whatever --minloglevel says; keep the
  // user's terminal clean and report failures through the returned status instead.
  std::fflush(stderr);
  int saved_stderr = ::dup(STDERR_FILENO);
  int devnull = ::open("/dev/null", O_WRONLY);
  if (saved_stderr >= 0 && devnull >= 0) ::dup2(devnull, STDERR_FILENO);
  auto st = sentencepiece::SentencePieceTrainer::Train(args);
  if (saved_stderr >= 0) ::dup2(saved_stderr, STDERR_FILENO), ::close(saved_stderr);
  if (devnull >= 0) ::close(devnull);
  if (!st.ok()) throw RuntimeError("sentencepiece training failed: " + st.ToString());
  // hard_vocab_limit=false lets a small corpus yield fewer pieces than asked: say so, since a
  // model config sized for the asked vocabulary would silently carry unused rows.
  if (const int32_t got = load_sentencepiece(work / "tok.model")->vocab_size(); got < opts.vocab_size)
    log::warn("asked for " + std::to_string(opts.vocab_size) + " pieces but the training text supports only " +
              std::to_string(got) + "; the tokenizer has " + std::to_string(got) + " (give more text for more)");
  fs::path tmp_out = output;
  tmp_out += ".tmp";
  fs::copy_file(work / "tok.model", tmp_out, fs::copy_options::overwrite_existing);
  fs::rename(tmp_out, output);
}

void copy_tokenizer(const fs::path& tokenizer, const fs::path& dir) {
  fs::copy_file(tokenizer, dir / tokenizer_file_name(tokenizer), fs::copy_options::overwrite_existing);
  const fs::path config = tokenizer.parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::is_regular_file(config, ec))
    fs::copy_file(config, dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
}

std::string file_checksum(const fs::path& path) {
  MappedFile f(path);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", crc32c(f.data(), f.size()));
  return buf;
}

}  // namespace longalign::data
