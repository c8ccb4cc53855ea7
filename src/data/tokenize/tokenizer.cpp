// sentencepiece-backed Tokenizer and trainer. SentencePieceProcessor::Encode is const and
// thread-safe, so one loaded model serves every tokenization worker. BPE models are encoded word
// by word through a per-thread cache of word ids (see "Word-by-word encoding" below), with ids
// identical to sentencepiece's own Encode of the whole text.
#include "longalign/data/tokenize/tokenizer.hpp"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/crc32c.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/mmap_file.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/bpe_tokenizer.hpp"
#include "longalign/data/tokenize/piece_cache.hpp"

namespace fs = std::filesystem;

namespace longalign::data {
namespace {

// ---------------------------------------------------------------------------------------------
// Word-by-word encoding of sentencepiece BPE models.
//
// sentencepiece normalizes the whole text (spaces become U+2581 "▁"), then merges symbol pairs
// by score over the whole normalized string. Cut that string before every run of ▁ that follows
// another character: when no piece of the vocabulary holds a ▁ after another character, no
// initial symbol (user-defined ones included) and no merge crosses a cut, and the merges inside
// one word happen in the same order (score, then position) whatever surrounds it. So the whole
// text's ids are the concatenation of each word's ids, except that sentencepiece fuses a run of
// unknown pieces into one unk id when the model has no byte fallback, which is redone where
// words meet. Words are encoded by a second processor of the same model whose normalizer is the
// identity (the text is already normalized), and cached. This needs the public Normalize() of
// sentencepiece >= 0.2; Unigram models (whose Viterbi sums scores, so float rounding could break
// ties differently word by word) and models outside the conditions keep the plain path.

constexpr std::string_view kSpaceSymbol = "\xe2\x96\x81";

// SentencePieceProcessor::Normalize(text, &out) exists from 0.2 on.
template <typename P, typename = void>
struct HasNormalize : std::false_type {};
template <typename P>
struct HasNormalize<P, std::void_t<decltype(std::declval<const P&>().Normalize(
                           std::string_view{}, static_cast<std::string*>(nullptr)))>> : std::true_type {};

template <typename P>
bool normalize_text(const P& sp, std::string_view text, std::string& out) {
  if constexpr (HasNormalize<P>::value) return sp.Normalize(text, &out).ok();
  return false;
}

// The few ModelProto fields the word path depends on, read from the protobuf wire format
// (sentencepiece_model.proto: ModelProto.trainer_spec = 2, normalizer_spec = 3, self_test_data
// = 4; TrainerSpec.model_type = 3, treat_whitespace_as_suffix = 24, byte_fallback = 35;
// NormalizerSpec.escape_whitespaces = 5). Scalars repeated on the wire: the last one wins.
struct ProtoReader {
  std::string_view in;
  bool ok = true;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      const auto b = static_cast<unsigned char>(in.front());
      in.remove_prefix(1);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  // Calls f(field, wire type, varint value, length-delimited payload, the field's raw bytes) for
  // each field; stops, with ok false, at malformed input.
  template <typename F>
  void fields(F&& f) {
    while (ok && !in.empty()) {
      const std::string_view start = in;
      const uint64_t tag = varint();
      const uint32_t field = uint32_t(tag >> 3), wire = uint32_t(tag & 7);
      uint64_t value = 0;
      std::string_view payload;
      if (wire == 0) {
        value = varint();
      } else if (wire == 2) {
        const uint64_t n = varint();
        if (n > in.size()) ok = false;
        else payload = in.substr(0, n), in.remove_prefix(n);
      } else if (wire == 1 || wire == 5) {
        const size_t n = wire == 1 ? 8 : 4;
        if (n > in.size()) ok = false;
        else in.remove_prefix(n);
      } else {
        ok = false;  // groups: never used by sentencepiece
      }
      if (ok) f(field, wire, value, payload, start.substr(0, start.size() - in.size()));
    }
  }
};

struct SpmModelFacts {
  bool parsed = false;
  int model_type = 1;  // UNIGRAM
  bool treat_whitespace_as_suffix = false, byte_fallback = false, escape_whitespaces = true;
  std::string identity_model;  // the model with an identity normalizer and no self-test
};

SpmModelFacts read_model_facts(std::string_view serialized) {
  SpmModelFacts m;
  ProtoReader top{serialized};
  top.fields([&](uint32_t field, uint32_t wire, uint64_t, std::string_view payload, std::string_view raw) {
    if (field == 2 && wire == 2) {
      ProtoReader t{payload};
      t.fields([&](uint32_t f, uint32_t w, uint64_t v, std::string_view, std::string_view) {
        if (w != 0) return;
        if (f == 3) m.model_type = int(v);
        if (f == 24) m.treat_whitespace_as_suffix = v != 0;
        if (f == 35) m.byte_fallback = v != 0;
      });
      top.ok = top.ok && t.ok;
    } else if (field == 3 && wire == 2) {
      ProtoReader n{payload};
      n.fields([&](uint32_t f, uint32_t w, uint64_t v, std::string_view, std::string_view) {
        if (f == 5 && w == 0) m.escape_whitespaces = v != 0;
      });
      top.ok = top.ok && n.ok;
    }
    // The word processor drops the normalizer (replaced below) and the self-test, whose
    // expected pieces assume the real normalizer.
    if (field != 3 && field != 4) m.identity_model.append(raw);
  });
  // NormalizerSpec{name: "identity", add_dummy_prefix: false, remove_extra_whitespaces: false,
  // escape_whitespaces: false}, no character map: a normalized word passes through unchanged.
  static const char kIdentity[] = "\x1a\x10\x0a\x08identity\x18\x00\x20\x00\x28\x00";
  m.identity_model.append(kIdentity, sizeof kIdentity - 1);
  m.parsed = top.ok;
  return m;
}

// Where the word starting at `start` ends: the next ▁ that follows a character other than ▁.
size_t word_end(std::string_view norm, size_t start) {
  for (size_t j = norm.find(kSpaceSymbol, start + 1); j != std::string_view::npos;
       j = norm.find(kSpaceSymbol, j + kSpaceSymbol.size())) {
    if (j < start + kSpaceSymbol.size() || norm.substr(j - kSpaceSymbol.size(), kSpaceSymbol.size()) != kSpaceSymbol)
      return j;
  }
  return norm.size();
}

// True when some piece holds a ▁ after a character other than ▁ (a piece that may cross words).
bool piece_crosses_words(std::string_view piece) {
  size_t i = 0;
  while (piece.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) i += kSpaceSymbol.size();
  return piece.find(kSpaceSymbol, i) != std::string_view::npos;
}

// Per-thread state of the word path (see thread_scratch): word cache and buffers.
struct WordScratch {
  uint64_t owner = 0;
  PieceCache cache;
  std::string normalized;
  std::vector<int> ids;
};

// How far past a sentencepiece vocabulary an added token's id may lie (see load_added_tokens).
constexpr int64_t kMaxAddedIdGap = 1 << 16;

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
    if (auto config = contained_file_if_present(path.parent_path(), "tokenizer_config.json",
                                                "the folder of tokenizer " + path.string(), kMaxConfigFileBytes))
      load_added_tokens(*config);
    init_word_path(path);
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
    const std::string text = read_regular_file(config, "tokenizer config", kMaxConfigFileBytes);
    check_json_depth(text, config.string());
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) throw RuntimeError(config.string() + " (beside the tokenizer) is not a JSON object");
    if (j.contains("added_tokens_decoder") && !j["added_tokens_decoder"].is_object())
      throw RuntimeError(config.string() + ": added_tokens_decoder must be an object of id -> token");
    if (j.contains("added_tokens_decoder")) {
      for (const auto& [key, entry] : j["added_tokens_decoder"].items()) {
        int64_t id = -1;
        try {
          id = std::stoll(key);
        } catch (const std::exception&) {
        }
        if (id < 0 || id > INT32_MAX || !entry.is_object() || !entry.contains("content") ||
            !entry["content"].is_string() || entry["content"].get<std::string>().empty())
          throw RuntimeError(config.string() + ": added_tokens_decoder entry \"" + key +
                             "\" needs a non-negative integer id and a non-empty string content");
        if (id < sp_.GetPieceSize()) continue;
        // Added tokens follow the vocabulary (ChatGLM3: 9 ids); an id far beyond it would make
        // vocab_size() (the largest id + 1) huge or overflow, and the model's embedding never has it.
        if (id >= int64_t(sp_.GetPieceSize()) + kMaxAddedIdGap)
          throw RuntimeError(config.string() + ": added_tokens_decoder entry \"" + truncate_for_message(key, 40) + "\" has id " +
                             std::to_string(id) + ", far past the " + std::to_string(sp_.GetPieceSize()) +
                             "-piece vocabulary of the tokenizer beside it; fix the id or use the matching tokenizer.model");
        const std::string content = entry["content"];
        added_ids_[content] = int32_t(id);
        added_pieces_[int32_t(id)] = content;
      }
      added_.assign(added_ids_.begin(), added_ids_.end());
    }
    if (added_pieces_.empty()) add_chatglm_special_tokens(config, j);
    // The stored checksum identifies the token ids, and these ids come from this file too.
    if (!added_pieces_.empty()) checksum_ += "+" + file_checksum(config);
  }

  // Older chatglm3-6b tokenizer_config.json files name the class ChatGLMTokenizer but list no
  // added tokens: its tokenization_chatglm.py numbers them in code, in this order, from the
  // sentencepiece vocabulary's size on. That tokenizer does not look for them in text (its
  // encode_special_tokens is off by default, and "sop" is also an English syllable), so they
  // get ids for templates and decoding but are not cut out of text.
  void add_chatglm_special_tokens(const fs::path& config, const nlohmann::json& j) {
    if (!j.contains("tokenizer_class")) return;
    if (!j["tokenizer_class"].is_string())
      throw RuntimeError(config.string() + ": tokenizer_class must be a string");
    if (j["tokenizer_class"].get<std::string>() != "ChatGLMTokenizer") return;
    static const char* const kChatGlm3Specials[] = {"[MASK]",     "[gMASK]",  "[sMASK]",       "sop",          "eop",
                                                     "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"};
    int32_t id = sp_.GetPieceSize();
    for (const char* token : kChatGlm3Specials) {
      added_ids_[token] = id;
      added_pieces_[id] = token;
      ++id;
    }
  }

  // Enables the word path when its conditions hold (see the top of this file), and says at
  // debug level which path the model takes and why. LONGALIGN_SPM_WORD_CACHE=0 turns it off (to
  // compare against sentencepiece's own path).
  void init_word_path(const fs::path& path) {
    const std::string why = word_path_refusal();
    word_path_ = why.empty();
    log::debug("sentencepiece model " + path.string() + ": " +
               (word_path_ ? "word-cached BPE encoding" : "sentencepiece's own encoding (" + why + ")"));
  }
  std::string word_path_refusal() {
    if (!HasNormalize<sentencepiece::SentencePieceProcessor>::value) return "the library is older than 0.2";
    if (const char* env = std::getenv("LONGALIGN_SPM_WORD_CACHE"); env && std::strcmp(env, "0") == 0)
      return "LONGALIGN_SPM_WORD_CACHE=0";
    const SpmModelFacts m = read_model_facts(sp_.serialized_model_proto());
    constexpr int kBpe = 2;
    if (!m.parsed) return "unreadable model proto";
    if (m.model_type != kBpe) return "not a BPE model";
    if (!m.escape_whitespaces) return "whitespace is not escaped";
    if (m.treat_whitespace_as_suffix) return "whitespace is a suffix";
    for (int id = 0; id < sp_.GetPieceSize(); ++id)
      if (piece_crosses_words(sp_.IdToPiece(id))) return "piece " + std::to_string(id) + " spans words";
    if (!words_.LoadFromSerializedProto(m.identity_model).ok() || words_.GetPieceSize() != sp_.GetPieceSize())
      return "the word model does not load";
    merge_unk_ = !m.byte_fallback;
    return "";
  }

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    if (word_path_) return encode_words(text, out);
    std::vector<int> ids;
    auto st = sp_.Encode(text, &ids);
    if (!st.ok()) throw RuntimeError("sentencepiece encode failed: " + st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  void encode_words(std::string_view text, std::vector<int32_t>& out) const {
    static_assert(sizeof(int) == sizeof(int32_t));
    WordScratch& s = thread_scratch<WordScratch>(serial_);
    if (!normalize_text(sp_, text, s.normalized)) throw RuntimeError("sentencepiece normalization failed");
    const std::string_view norm = s.normalized;
    const int32_t unk = sp_.unk_id();
    bool prev_unk = false;
    for (size_t start = 0, end; start < norm.size(); start = end) {
      end = word_end(norm, start);
      const std::string_view word = norm.substr(start, end - start);
      const size_t first = out.size();
      if (!s.cache.append(word, out)) {
        s.ids.clear();
        auto st = words_.Encode(word, &s.ids);
        if (!st.ok()) throw RuntimeError("sentencepiece encode failed: " + st.ToString());
        out.insert(out.end(), s.ids.begin(), s.ids.end());
        s.cache.insert(word, reinterpret_cast<const int32_t*>(s.ids.data()), s.ids.size());
      }
      // Without byte fallback sentencepiece fuses a run of unknown pieces into one unk id. Within
      // a word the word model does it; across words only when ▁ itself is unknown, but then too.
      if (merge_unk_ && prev_unk && out.size() > first && out[first] == unk) out.erase(out.begin() + first);
      if (out.size() > first) prev_unk = out.back() == unk;
    }
  }

  sentencepiece::SentencePieceProcessor sp_;
  sentencepiece::SentencePieceProcessor words_;  // the same model with an identity normalizer
  bool word_path_ = false, merge_unk_ = false;
  const uint64_t serial_ = next_tokenizer_serial();
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
  // sentencepiece opens the file itself: a FIFO there would block it forever.
  std::error_code ec;
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    throw UsageError("tokenizer " + path.string() + " is not a regular file (a FIFO, device or directory); give the "
                     "tokenizer.json or tokenizer.model file");
  auto tok = path.extension() == ".json" ? load_bpe_tokenizer(path) : load_sentencepiece(path);
  // BOS/EOS ids index the embedding like any token: one beyond the vocabulary would pack data
  // that no model of this tokenizer can train on.
  for (const auto& [key, id] : {std::pair<const char*, int32_t>{"BOS", tok->bos_id()}, {"EOS", tok->eos_id()}})
    if (id >= tok->vocab_size())
      throw RuntimeError("tokenizer " + path.string() + ": its " + key + " id " + std::to_string(id) + " is outside its " +
                         std::to_string(tok->vocab_size()) + "-token vocabulary; the file is damaged or its special-token "
                         "settings (bos_id/eos_id, tokenizer_config.json) name the wrong ids");
  return tok;
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
