// The pre-tokenizer regexes of a tokenizer.json. They are written for Oniguruma (what `tokenizers`
// uses) and run here on PCRE2; the escapes whose meaning differs are rewritten to Oniguruma's sets.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

struct pcre2_real_code_8;

namespace longalign::data {

// The PCRE2 spelling of an Oniguruma pattern; std::invalid_argument for what cannot be rewritten
// faithfully (\w, \W, \b, \B, nested classes).
std::string onig_to_pcre2(const std::string& pattern);

class TokenizerRegex {
 public:
  // Throws std::invalid_argument with PCRE2's reason; the caller names the key. `where` (file and
  // key) goes into the error a runaway match raises.
  explicit TokenizerRegex(const std::string& onig_pattern, std::string where = {});

  // The first non-empty match at or after `pos`, as find_iter yields them; false when none.
  bool find(std::string_view s, size_t pos, size_t* begin, size_t* end) const;

  // Calls f(begin, end) for each non-empty match, left to right. A pattern that backtracks
  // catastrophically can stay under PCRE2's per-call match limit and still cost milliseconds a
  // character, hours on a long line: each line gets a time budget (line_budget) and a
  // RuntimeError naming the pattern when it is spent.
  template <class F>
  void for_each_match(std::string_view s, F&& f) const {
    size_t b = 0, e = 0, n = 0;
    const auto deadline = std::chrono::steady_clock::now() + line_budget(s.size());
    for (size_t pos = 0; find(s, pos, &b, &e); pos = e) {
      f(b, e);
      if ((++n & 31) == 0 && std::chrono::steady_clock::now() > deadline) budget_spent(s.size(), e);
    }
  }
  // 1 s plus 20 us a byte: ~1000x what the usual pre-tokenizer patterns take.
  static std::chrono::steady_clock::duration line_budget(size_t bytes);

 private:
  [[noreturn]] void budget_spent(size_t bytes, size_t reached) const;
  std::shared_ptr<pcre2_real_code_8> code_;  // shared by every thread; match data is per thread
  bool jit_ = false;
  std::string pattern_, where_;
};

}  // namespace longalign::data
