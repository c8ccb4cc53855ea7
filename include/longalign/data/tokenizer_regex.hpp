// The pre-tokenizer regexes of a tokenizer.json. They are written for Oniguruma (what `tokenizers`
// uses) and run here on PCRE2; the escapes whose meaning differs are rewritten to Oniguruma's sets.
#pragma once
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
  // Throws std::invalid_argument with PCRE2's reason; the caller names the key.
  explicit TokenizerRegex(const std::string& onig_pattern);

  // The first non-empty match at or after `pos`, as find_iter yields them; false when none.
  bool find(std::string_view s, size_t pos, size_t* begin, size_t* end) const;

  // Calls f(begin, end) for each non-empty match, left to right.
  template <class F>
  void for_each_match(std::string_view s, F&& f) const {
    size_t b = 0, e = 0;
    for (size_t pos = 0; find(s, pos, &b, &e); pos = e) f(b, e);
  }

 private:
  std::shared_ptr<pcre2_real_code_8> code_;  // shared by every thread; match data is per thread
  bool jit_ = false;
};

}  // namespace longalign::data
