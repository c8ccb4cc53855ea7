// Per-thread state of tokenizers that encode text piece by piece (byte-level BPE pre-tokens,
// sentencepiece words): a memo of token ids by piece (text is Zipfian, so most pieces repeat and
// a hit skips the merge loop) kept in a thread's scratch that belongs to one tokenizer at a time.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace longalign::data {

// One per thread (not thread-safe); bounded: past kMaxEntries it starts over.
class PieceCache {
 public:
  static constexpr size_t kMaxPiece = 256;       // longer pieces are rare and would bloat the cache
  static constexpr size_t kMaxEntries = 65536;   // then it starts over (~10 MB)

  // Appends the ids cached for `piece` to `out`; false (nothing appended) when not cached.
  bool append(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.size() > kMaxPiece) return false;
    auto it = map_.find(piece);
    if (it == map_.end()) return false;
    out.insert(out.end(), ids_.begin() + it->second.first, ids_.begin() + it->second.first + it->second.second);
    return true;
  }
  // Remembers ids[0, n) for `piece`, unless the piece is too long to be worth it.
  void insert(std::string_view piece, const int32_t* ids, size_t n) {
    if (piece.size() > kMaxPiece) return;
    if (map_.size() >= kMaxEntries) clear();
    keys_.emplace_back(piece);  // a deque never moves its strings, so the map's views stay valid
    map_.emplace(keys_.back(), std::make_pair(static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(n)));
    ids_.insert(ids_.end(), ids, ids + n);
  }
  void clear() {
    map_.clear();
    keys_.clear();
    ids_.clear();
  }

 private:
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> map_;  // piece -> ids_[offset, count]
  std::deque<std::string> keys_;
  std::vector<int32_t> ids_;
};

// A serial for each tokenizer object, never reused (unlike its address), naming the owner of
// thread_scratch's state.
inline uint64_t next_tokenizer_serial() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

// The calling thread's S (a struct with a uint64_t `owner`) for the tokenizer with serial
// `owner`: started afresh when another tokenizer used this thread last, so a cache never serves
// a model it was not filled by.
template <typename S>
S& thread_scratch(uint64_t owner) {
  thread_local S s;
  if (s.owner != owner) {
    s = S{};
    s.owner = owner;
  }
  return s;
}

}  // namespace longalign::data
