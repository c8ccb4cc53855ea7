// Byte-level BPE from a Hugging Face tokenizer.json, id for id as the `tokenizers` library encodes:
// added tokens are cut out of the raw text, the rest is normalized and cut again at normalized
// added tokens, pre-tokenized by regex, read as byte-level symbols and merged by rank.
// Regexes run on PCRE2 (JIT, UTF + UCP) and normalization on ICU.
#include "longalign/data/tokenize/bpe_tokenizer.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/added_tokens.hpp"
#include "longalign/data/tokenize/piece_cache.hpp"
#include "longalign/data/tokenize/tokenizer_regex.hpp"
#include "longalign/data/tokenize/utf8.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace longalign::data {
namespace {

// ---------------------------------------------------------------------------------------------
// The file and its keys: every complaint names both.

constexpr int64_t kMaxId = int64_t{1} << 24;

class Spec {
 public:
  explicit Spec(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw RuntimeError(file_ + ": " + key + " " + what);
  }
  // obj[name], or nullptr when absent or null (the file format writes null for "not set").
  static const json* find(const json& obj, const char* name) {
    auto it = obj.find(name);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  const json& need(const json& obj, const std::string& key, const char* name) const {
    const json* v = find(obj, name);
    if (!v) fail(join(key, name), "is missing");
    return *v;
  }
  std::string string_at(const json& obj, const std::string& key, const char* name) const {
    const json& v = need(obj, key, name);
    if (!v.is_string()) fail(join(key, name), "must be a string, not " + std::string(v.type_name()));
    return v.get<std::string>();
  }
  bool bool_at(const json& obj, const std::string& key, const char* name, bool otherwise) const {
    const json* v = find(obj, name);
    if (!v) return otherwise;
    if (!v->is_boolean()) fail(join(key, name), "must be true or false, not " + truncate_for_message(v->dump()));
    return v->get<bool>();
  }
  int32_t id_at(const json& v, const std::string& key) const {
    // The bound keeps a typo'd id from sizing a gigabyte table.
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= kMaxId)
      fail(key, "must be a token id (an integer from 0 to " + std::to_string(kMaxId - 1) + "), not " + truncate_for_message(v.dump()));
    return static_cast<int32_t>(v.get<int64_t>());
  }
  static std::string join(const std::string& key, const char* name) { return key.empty() ? name : key + "." + name; }
  static std::string at(const std::string& key, size_t i) { return key + "[" + std::to_string(i) + "]"; }

 private:
  std::string file_;
};

// ---------------------------------------------------------------------------------------------
// Byte-level symbols. Text is validated UTF-8 before any of these run.

// GPT-2's reversible byte -> character map: printable Latin-1 bytes stand for themselves, the
// others move to U+0100 onwards, so every byte is a visible non-space character in the vocab.
struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 0x144> to_byte{};  // the map's image lies below U+0144
  ByteAlphabet() {
    to_byte.fill(-1);
    uint32_t shifted = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? b : 0x100 + shifted++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
  int byte_of(uint32_t cp) const { return cp < to_byte.size() ? to_byte[cp] : -1; }
};
const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

// A vocabulary string in byte-level characters back to the bytes it stands for; nullopt when it
// holds a character outside the alphabet (then no byte-level piece can ever produce it).
std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  std::string out;
  for (size_t i = 0, len = 0; i < token.size(); i += len) {
    int b = byte_alphabet().byte_of(decode_utf8_at(token, i, &len));
    if (b < 0) return std::nullopt;
    out += static_cast<char>(b);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalizers (ICU).

class Normalizer {
 public:
  // `first_changed` is the lowest UTF-8 lead byte of any character the form can change: text
  // without one is returned untouched, which is most text for NFC.
  void add(const icu::Normalizer2* form, unsigned char first_changed) { steps_.push_back({form, first_changed}); }
  bool empty() const { return steps_.empty(); }

  // The normalized text: `text` itself, or `buf` holding it.
  std::string_view apply(std::string_view text, std::string& buf, std::string& tmp) const {
    std::string_view cur = text;
    for (const auto& step : steps_) {
      if (!may_change(cur, step.first_changed)) continue;
      tmp.clear();
      icu::StringByteSink<std::string> sink(&tmp);
      UErrorCode status = U_ZERO_ERROR;
      const icu::StringPiece in(cur.data(), static_cast<int32_t>(cur.size()));
      step.form->normalizeUTF8(0, in, sink, nullptr, status);
      if (U_FAILURE(status)) throw RuntimeError(std::string("tokenizer normalization failed: ") + u_errorName(status));
      buf.swap(tmp);
      cur = buf;
    }
    return cur;
  }

 private:
  static bool may_change(std::string_view s, unsigned char first_changed) {
    for (unsigned char c : s)
      if (c >= first_changed) return true;
    return false;
  }
  struct Step {
    const icu::Normalizer2* form;
    unsigned char first_changed;
  };
  std::vector<Step> steps_;
};

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers.

enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct PreStep {
  bool byte_level = false;
  // Split
  std::optional<TokenizerRegex> regex;
  std::string literal;
  Behavior behavior = Behavior::isolated;
  bool invert = false;
  // ByteLevel
  bool add_prefix_space = false, use_regex = false;
};

struct Run {
  size_t begin, end;
  bool match;
};

void find_runs(const PreStep& st, std::string_view s, std::vector<Run>& runs) {
  runs.clear();
  size_t prev = 0;
  auto on_match = [&](size_t b, size_t e) {
    if (prev != b) runs.push_back({prev, b, false});
    runs.push_back({b, e, true});
    prev = e;
  };
  if (st.regex) {
    st.regex->for_each_match(s, on_match);
  } else {
    for (size_t at = s.find(st.literal); at != std::string_view::npos; at = s.find(st.literal, at + st.literal.size()))
      on_match(at, at + st.literal.size());
  }
  if (prev != s.size()) runs.push_back({prev, s.size(), false});
  if (st.invert)
    for (auto& r : runs) r.match = !r.match;
}

// The library's fold of match runs into pieces for each delimiter behavior; `acc` is scratch.
void apply_behavior(const std::vector<Run>& runs, Behavior b, std::string_view s, std::vector<Run>& acc,
                    std::vector<std::string_view>& out) {
  auto emit = [&](const Run& r) {
    if (r.end > r.begin) out.push_back(s.substr(r.begin, r.end - r.begin));
  };
  if (b == Behavior::isolated || b == Behavior::removed) {
    for (const auto& r : runs)
      if (b == Behavior::isolated || !r.match) emit(r);
    return;
  }
  acc.clear();
  bool prev_match = false;
  // Merging into a piece that does not exist yet starts one, as in the library.
  auto merge_into_last = [&](const Run& r, bool into_previous) {
    if (acc.empty()) acc.push_back(r);
    else if (into_previous) acc.back().end = r.end;
    else acc.back().begin = r.begin;
  };
  if (b == Behavior::merged_with_next) {
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) {
      if (it->match && !prev_match) merge_into_last(*it, false);
      else acc.push_back(*it);
      prev_match = it->match;
    }
    std::reverse(acc.begin(), acc.end());
  } else {
    const bool contiguous = b == Behavior::contiguous;
    for (const auto& r : runs) {
      if (contiguous ? r.match == prev_match : (r.match && !prev_match)) merge_into_last(r, true);
      else acc.push_back(r);
      prev_match = r.match;
    }
  }
  for (const auto& r : acc) emit(r);
}

// ByteLevel(use_regex=true): the GPT-2 pattern, pieces isolated.
const PreStep& gpt2_split() {
  static const PreStep step = [] {
    PreStep st;
    st.regex.emplace(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
    return st;
  }();
  return step;
}

// ---------------------------------------------------------------------------------------------
// Per-thread state of one tokenizer: memoized merges of recent pre-tokens (text is Zipfian, so
// most pieces hit) and scratch buffers reused across calls.

struct Scratch {
  uint64_t owner = 0;
  PieceCache cache;
  std::vector<AddedCut> raw_cuts, norm_cuts;
  std::string norm, norm_tmp;
  std::vector<std::string_view> pieces, next_pieces;
  std::deque<std::string> prefixed;  // pieces given a prefix space
  std::vector<Run> runs, acc;
  std::vector<int32_t> syms, ranks, merged;
};

constexpr size_t kSmallWord = 64;            // up to here a linear scan beats a heap
constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

// ---------------------------------------------------------------------------------------------

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(const fs::path& path);

  std::vector<int32_t> encode(std::string_view text) const override {
    if (size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
      throw RuntimeError("cannot tokenize text that is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    Scratch& s = scratch();
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 1);
    if (raw_added_.empty()) {
      encode_segment(text, s, ids);
      return ids;
    }
    cut_added(text, raw_added_, added_, s.raw_cuts);
    for (const AddedCut& c : s.raw_cuts) {
      if (c.token >= 0) ids.push_back(added_[c.token].id);
      else encode_segment(text.substr(c.begin, c.end - c.begin), s, ids);
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= pieces_.size()) continue;
      const Piece& p = pieces_[id];
      if (p.in_vocab) append_bytes_of(p.text, out);
      else out += p.text;
    }
    return out;
  }

  int32_t piece_id(std::string_view piece) const override {
    if (auto it = added_by_content_.find(piece); it != added_by_content_.end()) return it->second;
    if (auto it = vocab_.find(piece); it != vocab_.end()) return it->second;
    if (auto it = byte_vocab_.find(piece); it != byte_vocab_.end()) return it->second;
    return -1;
  }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  std::string checksum() const override { return checksum_; }

 private:
  struct Piece {
    std::string text;  // the vocabulary string (byte-level characters) or the added token's text
    bool in_vocab = false;
  };
  struct Merge {
    int32_t rank, id;
  };

  // Loading (each reads one top-level key).
  void load_model(const Spec& spec, const json& model);
  void load_vocab(const Spec& spec, const json& vocab);
  void load_merges(const Spec& spec, const json& merges);
  void load_byte_symbols();
  void load_added(const Spec& spec, const json* added);
  void load_normalizer(const Spec& spec, const json* n, const std::string& key);
  void load_pre_tokenizer(const Spec& spec, const json* p, const std::string& key);
  PreStep load_split(const Spec& spec, const json& p, const std::string& key) const;
  void load_special_ids(const Spec& spec, const json* post);
  int32_t template_special(const Spec& spec, const json& t, const std::string& key, bool before) const;
  void build_indexes();

  // Encoding.
  Scratch& scratch() const { return thread_scratch<Scratch>(serial_); }
  void encode_segment(std::string_view raw, Scratch& s, std::vector<int32_t>& ids) const;
  void encode_text(std::string_view text, Scratch& s, std::vector<int32_t>& ids) const;
  void pre_tokenize(std::string_view text, Scratch& s) const;
  void apply_step(const PreStep& st, std::string_view piece, Scratch& s) const;
  void encode_piece(std::string_view piece, Scratch& s, std::vector<int32_t>& ids) const;
  void initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const;
  Merge merge_of(int32_t left, int32_t right) const {
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right));
    return it == merges_.end() ? Merge{kNoRank, -1} : it->second;
  }
  void merge_small(Scratch& s) const;
  void merge_large(std::vector<int32_t>& syms) const;
  void append_bytes_of(std::string_view token, std::string& out) const;

  std::string file_;
  uint64_t serial_ = next_tokenizer_serial();
  std::vector<Piece> pieces_;                                   // by id
  std::unordered_map<std::string_view, int32_t> vocab_;        // byte-level string -> id
  std::unordered_map<std::string_view, int32_t> byte_vocab_;   // the bytes it stands for -> id
  std::deque<std::string> byte_vocab_keys_;
  std::unordered_map<uint64_t, Merge> merges_;                  // (left << 32 | right) -> merge
  std::array<std::vector<int32_t>, 256> byte_symbols_;          // a byte's initial symbols
  int32_t unk_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;

  std::vector<AddedToken> added_;
  std::unordered_map<std::string_view, int32_t> added_by_content_;
  AddedMatcher raw_added_, norm_added_;

  Normalizer normalizer_;
  std::vector<PreStep> steps_;
  int32_t bos_ = -1, eos_ = -1;
  std::string checksum_;

  // Raw model data kept until build_indexes().
  std::vector<std::pair<std::string, int32_t>> vocab_entries_;
};

// ---------------------------------------------------------------------------------------------
// Encoding.

void BpeTokenizer::encode_segment(std::string_view raw, Scratch& s, std::vector<int32_t>& ids) const {
  const std::string_view text = normalizer_.empty() ? raw : normalizer_.apply(raw, s.norm, s.norm_tmp);
  if (norm_added_.empty()) return encode_text(text, s, ids);
  cut_added(text, norm_added_, added_, s.norm_cuts);
  for (const AddedCut& c : s.norm_cuts) {
    if (c.token >= 0) ids.push_back(added_[c.token].id);
    else encode_text(text.substr(c.begin, c.end - c.begin), s, ids);
  }
}

void BpeTokenizer::encode_text(std::string_view text, Scratch& s, std::vector<int32_t>& ids) const {
  pre_tokenize(text, s);
  for (std::string_view piece : s.pieces) encode_piece(piece, s, ids);
}

void BpeTokenizer::pre_tokenize(std::string_view text, Scratch& s) const {
  s.pieces.clear();
  s.prefixed.clear();
  if (!text.empty()) s.pieces.push_back(text);
  for (const PreStep& st : steps_) {
    s.next_pieces.clear();
    for (std::string_view p : s.pieces) apply_step(st, p, s);
    s.pieces.swap(s.next_pieces);
  }
}

void BpeTokenizer::apply_step(const PreStep& st, std::string_view piece, Scratch& s) const {
  if (!st.byte_level) {
    find_runs(st, piece, s.runs);
    return apply_behavior(s.runs, st.behavior, piece, s.acc, s.next_pieces);
  }
  // The byte-level mapping itself happens per byte in initial_symbols; here only the prefix
  // space (given to every piece, as the library does) and the GPT-2 split.
  if (st.add_prefix_space && piece.front() != ' ') {
    s.prefixed.push_back(" ");
    s.prefixed.back().append(piece);
    piece = s.prefixed.back();
  }
  if (!st.use_regex) return s.next_pieces.push_back(piece);
  find_runs(gpt2_split(), piece, s.runs);
  apply_behavior(s.runs, Behavior::isolated, piece, s.acc, s.next_pieces);
}

void BpeTokenizer::encode_piece(std::string_view piece, Scratch& s, std::vector<int32_t>& ids) const {
  if (ignore_merges_) {
    if (auto it = byte_vocab_.find(piece); it != byte_vocab_.end()) return ids.push_back(it->second);
  }
  if (s.cache.append(piece, ids)) return;
  initial_symbols(piece, s.syms);
  if (s.syms.size() > kSmallWord) merge_large(s.syms);
  else if (s.syms.size() > 1) merge_small(s);
  ids.insert(ids.end(), s.syms.begin(), s.syms.end());
  s.cache.insert(piece, s.syms.data(), s.syms.size());
}

// One symbol per byte, as the library reads the byte-level string one character at a time;
// characters missing from the vocabulary become unk (fused when fuse_unk) or vanish.
void BpeTokenizer::initial_symbols(std::string_view piece, std::vector<int32_t>& syms) const {
  syms.clear();
  bool pending_unk = false;
  for (unsigned char b : piece) {
    const auto& ids = byte_symbols_[b];
    if (!ids.empty()) {
      if (pending_unk) syms.push_back(unk_), pending_unk = false;
      syms.insert(syms.end(), ids.begin(), ids.end());
    } else if (unk_ >= 0) {
      if (pending_unk && !fuse_unk_) syms.push_back(unk_);
      pending_unk = true;
    }
  }
  if (pending_unk) syms.push_back(unk_);
}

// Lowest rank first, leftmost among equals: the order of the library's merge queue.
void BpeTokenizer::merge_small(Scratch& s) const {
  auto& syms = s.syms;
  auto& ranks = s.ranks;
  auto& merged = s.merged;
  ranks.resize(syms.size() - 1);
  merged.resize(syms.size() - 1);
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    Merge m = merge_of(syms[i], syms[i + 1]);
    ranks[i] = m.rank, merged[i] = m.id;
  }
  while (!ranks.empty()) {
    size_t best = std::min_element(ranks.begin(), ranks.end()) - ranks.begin();
    if (ranks[best] == kNoRank) break;
    syms[best] = merged[best];
    syms.erase(syms.begin() + best + 1);
    ranks.erase(ranks.begin() + best);
    merged.erase(merged.begin() + best);
    if (best > 0) {
      Merge m = merge_of(syms[best - 1], syms[best]);
      ranks[best - 1] = m.rank, merged[best - 1] = m.id;
    }
    if (best < ranks.size()) {
      Merge m = merge_of(syms[best], syms[best + 1]);
      ranks[best] = m.rank, merged[best] = m.id;
    }
  }
}

// The same order for long words, with a heap over a linked list instead of rescans.
void BpeTokenizer::merge_large(std::vector<int32_t>& syms) const {
  const int32_t n = static_cast<int32_t>(syms.size());
  std::vector<int32_t> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int32_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
  struct Item {
    int32_t rank, pos, id;
    bool operator>(const Item& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
  auto push = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    Merge m = merge_of(syms[pos], syms[next[pos]]);
    if (m.rank != kNoRank) queue.push({m.rank, pos, m.id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!queue.empty()) {
    Item top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const int32_t right = next[top.pos];
    if (merge_of(syms[top.pos], syms[right]).id != top.id) continue;  // stale: a neighbour changed
    syms[top.pos] = top.id;
    alive[right] = 0;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    push(prev[top.pos]);
    push(top.pos);
  }
  std::vector<int32_t> out;
  for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(syms[i]);
  syms.swap(out);
}

void BpeTokenizer::append_bytes_of(std::string_view token, std::string& out) const {
  for (size_t i = 0, len = 0; i < token.size(); i += len) {
    const uint32_t cp = decode_utf8_at(token, i, &len);
    const int b = byte_alphabet().byte_of(cp);
    if (b >= 0) out += static_cast<char>(b);
    else out.append(token.substr(i, len));
  }
}

// ---------------------------------------------------------------------------------------------
// Loading.

json read_json(const fs::path& path) {
  if (!fs::exists(path))
    throw UsageError("tokenizer " + path.string() + " does not exist; pass --tokenizer PATH (a tokenizer.json or "
                     "sentencepiece .model)");
  // Parsing from memory is several times faster than from the stream (tokenizer.json: 10-20 MB).
  const std::string text = read_regular_file(path, "tokenizer", kMaxSideFileBytes);
  check_json_depth(text, path.string());
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw RuntimeError(path.string() + ": not a tokenizer.json (the top level is not an object)");
    return j;
  } catch (const json::exception& e) {
    throw RuntimeError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

BpeTokenizer::BpeTokenizer(const fs::path& path) : file_(path.string()) {
  const json j = read_json(path);
  const Spec spec(file_);
  const json& model = spec.need(j, "", "model");
  load_model(spec, model);
  load_added(spec, Spec::find(j, "added_tokens"));
  build_indexes();
  load_merges(spec, spec.need(model, "model", "merges"));
  if (const json* unk = Spec::find(model, "unk_token")) {
    if (!unk->is_string()) spec.fail("model.unk_token", "must be a string or null");
    auto it = vocab_.find(unk->get<std::string>());
    if (it == vocab_.end()) spec.fail("model.unk_token", truncate_for_message(unk->dump()) + " is not in model.vocab");
    unk_ = it->second;
  }
  load_byte_symbols();
  load_normalizer(spec, Spec::find(j, "normalizer"), "normalizer");
  load_pre_tokenizer(spec, Spec::find(j, "pre_tokenizer"), "pre_tokenizer");
  if (std::none_of(steps_.begin(), steps_.end(), [](const PreStep& s) { return s.byte_level; }))
    spec.fail("pre_tokenizer", "has no ByteLevel step; only byte-level BPE (Llama-3, Qwen2, GPT-2 style) is supported");
  // Normalized added tokens are matched in normalized text, so their patterns are normalized too.
  std::string buf, tmp;
  for (size_t i = 0; i < added_.size(); ++i) {
    if (!added_[i].normalized) continue;
    norm_added_.add(normalizer_.empty() ? added_[i].content : normalizer_.apply(added_[i].content, buf, tmp),
                    static_cast<int32_t>(i));
  }
  load_special_ids(spec, Spec::find(j, "post_processor"));
  checksum_ = file_checksum(path);
}

void BpeTokenizer::load_model(const Spec& spec, const json& model) {
  if (!model.is_object()) spec.fail("model", "must be an object");
  if (const json* type = Spec::find(model, "type")) {
    if (!type->is_string() || type->get<std::string>() != "BPE")
      spec.fail("model.type", "is " + (type->is_string() ? type->get<std::string>() : truncate_for_message(type->dump())) +
                                  "; only BPE is supported");
  }
  if (const json* d = Spec::find(model, "dropout"); d && !(d->is_number() && d->get<double>() == 0.0))
    spec.fail("model.dropout", "is " + truncate_for_message(d->dump()) + "; BPE dropout is not supported");
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const json* a = Spec::find(model, affix); a && !(a->is_string() && a->get<std::string>().empty()))
      spec.fail(Spec::join("model", affix), "is " + truncate_for_message(a->dump()) + "; only byte-level BPE without affixes is supported");
  fuse_unk_ = spec.bool_at(model, "model", "fuse_unk", false);
  byte_fallback_ = spec.bool_at(model, "model", "byte_fallback", false);
  ignore_merges_ = spec.bool_at(model, "model", "ignore_merges", false);
  load_vocab(spec, spec.need(model, "model", "vocab"));
}

void BpeTokenizer::load_vocab(const Spec& spec, const json& vocab) {
  if (!vocab.is_object()) spec.fail("model.vocab", "must be an object of token -> id");
  if (vocab.empty()) spec.fail("model.vocab", "is empty");
  vocab_entries_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)
    vocab_entries_.emplace_back(it.key(), spec.id_at(it.value(), "model.vocab[" + json(it.key()).dump() + "]"));
}

void BpeTokenizer::load_merges(const Spec& spec, const json& merges) {
  if (!merges.is_array()) spec.fail("model.merges", "must be an array");
  merges_.reserve(merges.size() * 2);
  std::string left, right;
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    auto bad = [&](const std::string& what) { spec.fail(Spec::at("model.merges", i), what); };
    auto id_of = [&](const std::string& token) {
      auto it = vocab_.find(token);
      if (it == vocab_.end()) bad("names " + json(token).dump() + ", which is not in model.vocab");
      return it->second;
    };
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        bad("is " + truncate_for_message(m.dump()) + "; a merge is \"left right\" with one space");
      left.assign(s, 0, space), right.assign(s, space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get_ref<const std::string&>(), right = m[1].get_ref<const std::string&>();
    } else {
      bad("is " + m.dump().substr(0, 80) + "; a merge is \"left right\" or [left, right]");
    }
    const int32_t a = id_of(left), b = id_of(right), c = id_of(left + right);
    // A repeated pair keeps its last rank, as the library's map does.
    merges_[(static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b)] = {static_cast<int32_t>(i), c};
  }
}

// A byte's symbol is its byte-level character; without one, byte_fallback's <0xXX> pieces for
// that character's UTF-8 bytes; else none (unk or dropped).
void BpeTokenizer::load_byte_symbols() {
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(ch, byte_alphabet().to_cp[b]);
    byte_symbols_[b].clear();
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      byte_symbols_[b].push_back(it->second);
      continue;
    }
    if (!byte_fallback_) continue;
    std::vector<int32_t> ids;
    for (unsigned char u : ch) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", u);
      auto it = vocab_.find(name);
      if (it == vocab_.end()) break;
      ids.push_back(it->second);
    }
    if (ids.size() == ch.size()) byte_symbols_[b] = ids;
  }
}

void BpeTokenizer::load_added(const Spec& spec, const json* added) {
  if (!added) return;
  if (!added->is_array()) spec.fail("added_tokens", "must be an array");
  for (size_t i = 0; i < added->size(); ++i) {
    const json& t = (*added)[i];
    const std::string key = Spec::at("added_tokens", i);
    if (!t.is_object()) spec.fail(key, "must be an object");
    AddedToken a;
    a.id = spec.id_at(spec.need(t, key, "id"), key + ".id");
    a.content = spec.string_at(t, key, "content");
    a.single_word = spec.bool_at(t, key, "single_word", false);
    a.lstrip = spec.bool_at(t, key, "lstrip", false);
    a.rstrip = spec.bool_at(t, key, "rstrip", false);
    a.special = spec.bool_at(t, key, "special", false);
    a.normalized = spec.bool_at(t, key, "normalized", !a.special);
    if (a.content.empty()) continue;  // the library ignores empty added tokens
    added_.push_back(std::move(a));
  }
  // Added tokens extend the vocabulary (Llama-3's 256 reserved ids right after it; gaps happen):
  // an id far past it would size the id table, and every embedding trained with it, by a typo.
  // The same 65,536-id slack as for sentencepiece's added tokens.
  int64_t vocab = 0;
  for (const auto& e : vocab_entries_) vocab = std::max<int64_t>(vocab, int64_t(e.second) + 1);
  const int64_t limit = vocab + std::max<int64_t>(int64_t(added->size()), 65536);
  for (size_t i = 0; i < added->size(); ++i) {
    const json& id = (*added)[i]["id"];
    if (id.get<int64_t>() >= limit)
      spec.fail(Spec::at("added_tokens", i) + ".id",
                "is " + std::to_string(id.get<int64_t>()) + ", more than 65,536 past the vocabulary's " + std::to_string(vocab) +
                    " ids; added tokens take ids right after the vocabulary (a typo?)");
  }
}

// The id-indexed table (added tokens beyond the model's vocabulary extend it) and the lookups,
// whose keys are views into it: built once, when every id is known.
void BpeTokenizer::build_indexes() {
  int32_t max_id = -1;
  for (const auto& e : vocab_entries_) max_id = std::max(max_id, e.second);
  for (const auto& a : added_) max_id = std::max(max_id, a.id);
  pieces_.assign(max_id + 1, Piece{});
  for (auto& e : vocab_entries_) pieces_[e.second] = {std::move(e.first), true};
  vocab_.reserve(vocab_entries_.size());
  byte_vocab_.reserve(vocab_entries_.size());
  for (size_t id = 0; id < pieces_.size(); ++id)
    if (pieces_[id].in_vocab) vocab_.emplace(pieces_[id].text, static_cast<int32_t>(id));
  for (const auto& a : added_)
    if (!pieces_[a.id].in_vocab) pieces_[a.id].text = a.content;
  for (size_t i = 0; i < added_.size(); ++i) {
    added_by_content_.emplace(added_[i].content, added_[i].id);
    if (!added_[i].normalized) raw_added_.add(added_[i].content, static_cast<int32_t>(i));
  }
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (!pieces_[id].in_vocab) continue;
    if (auto bytes = byte_level_to_bytes(pieces_[id].text)) {
      byte_vocab_keys_.push_back(std::move(*bytes));
      byte_vocab_.emplace(byte_vocab_keys_.back(), static_cast<int32_t>(id));
    }
  }
  vocab_entries_.clear();
  vocab_entries_.shrink_to_fit();
}

void BpeTokenizer::load_normalizer(const Spec& spec, const json* n, const std::string& key) {
  if (!n) return;
  if (!n->is_object()) spec.fail(key, "must be an object or null");
  const std::string type = spec.string_at(*n, key, "type");
  if (type == "Sequence") {
    const json& list = spec.need(*n, key, "normalizers");
    if (!list.is_array()) spec.fail(key + ".normalizers", "must be an array");
    for (size_t i = 0; i < list.size(); ++i) load_normalizer(spec, &list[i], Spec::at(key + ".normalizers", i));
    return;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* form = nullptr;
  unsigned char first_changed = 0;
  if (type == "NFC") form = icu::Normalizer2::getNFCInstance(status), first_changed = 0xCC;        // U+0300
  else if (type == "NFD") form = icu::Normalizer2::getNFDInstance(status), first_changed = 0xC3;   // U+00C0
  else if (type == "NFKC") form = icu::Normalizer2::getNFKCInstance(status), first_changed = 0xC2; // U+00A0
  else if (type == "NFKD") form = icu::Normalizer2::getNFKDInstance(status), first_changed = 0xC2;
  else spec.fail(key + ".type", "is " + type + "; supported normalizers are NFC, NFD, NFKC, NFKD and Sequence");
  if (U_FAILURE(status) || !form) throw RuntimeError(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  normalizer_.add(form, first_changed);
}

PreStep BpeTokenizer::load_split(const Spec& spec, const json& p, const std::string& key) const {
  PreStep st;
  const json& pattern = spec.need(p, key, "pattern");
  if (const json* re = pattern.is_object() ? Spec::find(pattern, "Regex") : nullptr) {
    if (!re->is_string()) spec.fail(key + ".pattern.Regex", "must be a string");
    try {
      st.regex.emplace(re->get<std::string>(), spec.file() + ": " + key + ".pattern.Regex");
    } catch (const std::invalid_argument& e) {
      spec.fail(key + ".pattern.Regex", "is not a usable regex (" + std::string(e.what()) + ")");
    }
  } else if (const json* lit = pattern.is_object() ? Spec::find(pattern, "String") : nullptr) {
    if (!lit->is_string() || lit->get<std::string>().empty())
      spec.fail(key + ".pattern.String", "must be a non-empty string");
    st.literal = lit->get<std::string>();
  } else {
    spec.fail(key + ".pattern", "must be {\"Regex\": ...} or {\"String\": ...}");
  }
  static const std::pair<const char*, Behavior> behaviors[] = {
      {"Removed", Behavior::removed}, {"Isolated", Behavior::isolated},
      {"MergedWithPrevious", Behavior::merged_with_previous}, {"MergedWithNext", Behavior::merged_with_next},
      {"Contiguous", Behavior::contiguous}};
  const std::string b = spec.string_at(p, key, "behavior");
  auto it = std::find_if(std::begin(behaviors), std::end(behaviors), [&](const auto& e) { return b == e.first; });
  if (it == std::end(behaviors))
    spec.fail(key + ".behavior",
              "is " + b + "; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous");
  st.behavior = it->second;
  st.invert = spec.bool_at(p, key, "invert", false);
  return st;
}

void BpeTokenizer::load_pre_tokenizer(const Spec& spec, const json* p, const std::string& key) {
  if (!p) return;
  if (!p->is_object()) spec.fail(key, "must be an object or null");
  const std::string type = spec.string_at(*p, key, "type");
  if (type == "Sequence") {
    const json& list = spec.need(*p, key, "pretokenizers");
    if (!list.is_array()) spec.fail(key + ".pretokenizers", "must be an array");
    for (size_t i = 0; i < list.size(); ++i) load_pre_tokenizer(spec, &list[i], Spec::at(key + ".pretokenizers", i));
    return;
  }
  // Steps after ByteLevel would see byte-level characters, which this tokenizer never spells out.
  if (std::any_of(steps_.begin(), steps_.end(), [](const PreStep& s) { return s.byte_level; }))
    spec.fail(key, "follows a ByteLevel pre-tokenizer; only ByteLevel as the last step is supported");
  if (type == "Split") return steps_.push_back(load_split(spec, *p, key));
  if (type == "ByteLevel") {
    PreStep st;
    st.byte_level = true;
    st.add_prefix_space = spec.bool_at(*p, key, "add_prefix_space", true);
    st.use_regex = spec.bool_at(*p, key, "use_regex", true);
    return steps_.push_back(std::move(st));
  }
  spec.fail(key + ".type", "is " + type + "; supported pre-tokenizers are ByteLevel, Split and Sequence");
}

// The special token a TemplateProcessing `single` template puts before (or after) the text.
int32_t BpeTokenizer::template_special(const Spec& spec, const json& t, const std::string& key, bool before) const {
  const json& single = spec.need(t, key, "single");
  if (!single.is_array()) spec.fail(key + ".single", "must be an array");
  std::vector<std::string> specials_before, specials_after;
  bool seen_text = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const json& item = single[i];
    if (item.is_object() && item.contains("Sequence")) {
      seen_text = true;
    } else if (item.is_object() && item.contains("SpecialToken")) {
      const json& st = item["SpecialToken"];
      const std::string item_key = Spec::at(key + ".single", i) + ".SpecialToken";
      if (!st.is_object()) spec.fail(item_key, "must be an object");
      (seen_text ? specials_after : specials_before).push_back(spec.string_at(st, item_key, "id"));
    } else {
      spec.fail(Spec::at(key + ".single", i), "must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  const auto& names = before ? specials_before : specials_after;
  if (names.empty()) return -1;
  const std::string& name = before ? names.back() : names.front();
  if (const json* map = Spec::find(t, "special_tokens")) {
    if (const json* entry = map->is_object() ? Spec::find(*map, name.c_str()) : nullptr) {
      const json* ids = entry->is_object() ? Spec::find(*entry, "ids") : nullptr;
      if (!ids || !ids->is_array() || ids->size() != 1)
        spec.fail(key + ".special_tokens[" + json(name).dump() + "].ids", "must hold exactly one id");
      return spec.id_at((*ids)[0], key + ".special_tokens[" + json(name).dump() + "].ids[0]");
    }
  }
  const int32_t id = piece_id(name);
  if (id < 0) spec.fail(key + ".single", "names " + json(name).dump() + ", which is not a token of this file");
  return id;
}

void BpeTokenizer::load_special_ids(const Spec& spec, const json* post) {
  std::vector<std::pair<const json*, std::string>> todo;
  if (post) todo.emplace_back(post, "post_processor");
  for (size_t k = 0; k < todo.size(); ++k) {
    const json& p = *todo[k].first;
    const std::string key = todo[k].second;
    if (!p.is_object()) spec.fail(key, "must be an object or null");
    const std::string type = spec.string_at(p, key, "type");
    if (type == "Sequence") {
      const json& list = spec.need(p, key, "processors");
      if (!list.is_array()) spec.fail(key + ".processors", "must be an array");
      for (size_t i = 0; i < list.size(); ++i) todo.emplace_back(&list[i], Spec::at(key + ".processors", i));
    } else if (type == "TemplateProcessing") {
      if (bos_ < 0) bos_ = template_special(spec, p, key, true);
      if (eos_ < 0) eos_ = template_special(spec, p, key, false);
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      for (auto [name, slot] : {std::pair{"cls", &bos_}, std::pair{"sep", &eos_}}) {
        const json& v = spec.need(p, key, name);
        if (!v.is_array() || v.size() != 2) spec.fail(Spec::join(key, name), "must be [token, id]");
        *slot = spec.id_at(v[1], Spec::join(key, name) + "[1]");
      }
    }
    // ByteLevel (offsets only) and others leave the ids alone.
  }
  if (eos_ >= 0) return;
  for (const char* name : {"<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "</s>"})
    if (auto it = added_by_content_.find(name); it != added_by_content_.end()) return void(eos_ = it->second);
}

}  // namespace

std::unique_ptr<Tokenizer> load_bpe_tokenizer(const fs::path& tokenizer_json) {
  return std::make_unique<BpeTokenizer>(tokenizer_json);
}

}  // namespace longalign::data
