// Added tokens of a tokenizer.json, found in text as the `tokenizers` library finds them:
// leftmost-longest matching, then its lstrip / rstrip / single_word rules.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace longalign::data {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// Leftmost-longest matching (what the library's Aho-Corasick automaton does): a byte trie walked
// from each position; the root's children sit in a table since most bytes start no token.
class AddedMatcher {
 public:
  AddedMatcher() { root_.fill(-1); }
  bool empty() const { return terminal_.size() <= 1; }

  void add(std::string_view pattern, int32_t token) {
    int32_t node = 0;
    for (size_t i = 0; i < pattern.size(); ++i) {
      const auto b = static_cast<unsigned char>(pattern[i]);
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(terminal_.size());
        terminal_.push_back(-1);
        if (node == 0) root_[b] = next;
        else edges_[edge_key(node, b)] = next;
      }
      node = next;
    }
    terminal_[node] = token;
  }

  // The longest token starting at s[pos] (its length in *len), or -1.
  int32_t longest_at(std::string_view s, size_t pos, size_t* len) const {
    int32_t node = root_[static_cast<unsigned char>(s[pos])], best = -1;
    for (size_t i = pos + 1; node >= 0; ++i) {
      if (terminal_[node] >= 0) best = terminal_[node], *len = i - pos;
      if (i == s.size()) break;
      node = child(node, static_cast<unsigned char>(s[i]));
    }
    return best;
  }

 private:
  static uint64_t edge_key(int32_t node, unsigned char b) { return (static_cast<uint64_t>(node) << 8) | b; }
  int32_t child(int32_t node, unsigned char b) const {
    if (node == 0) return root_[b];
    auto it = edges_.find(edge_key(node, b));
    return it == edges_.end() ? -1 : it->second;
  }
  std::vector<int32_t> terminal_{-1};  // per node: the token ending there, or -1
  std::array<int32_t, 256> root_{};
  std::unordered_map<uint64_t, int32_t> edges_;
};

// A stretch of text: an added token (its index) or plain text (-1).
struct AddedCut {
  size_t begin, end;
  int32_t token;
};

// Cuts `s` at the added tokens found by `m`, with the library's lstrip/rstrip/single_word rules.
void cut_added(std::string_view s, const AddedMatcher& m, const std::vector<AddedToken>& tokens,
               std::vector<AddedCut>& out);

}  // namespace longalign::data
