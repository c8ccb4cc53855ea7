// Tokenizer regexes: Oniguruma patterns (what `tokenizers` compiles) rewritten for PCRE2 and
// run with JIT, UTF and UCP, matching as Oniguruma's find_iter does.
#include "longalign/data/tokenize/tokenizer_regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>
#include <cstdio>
#include <stdexcept>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/data/tokenize/utf8.hpp"

namespace longalign::data {
namespace {

// Escapes whose meaning differs between Oniguruma (the regexes of `tokenizers`) and PCRE2 with
// UCP, spelled out as the sets Oniguruma means: \s is White_Space (PCRE2 adds U+180E), \h a hex
// digit (PCRE2: horizontal space). Oniguruma's \w follows tables of its own (U+00BD is a word
// character, U+2460 is not, and inside a class it differs again), so \w, \W, \b and \B are
// refused rather than approximated; no common tokenizer.json uses them.
struct EscapeSet {
  char escape;
  const char* set;  // class body
};
constexpr EscapeSet kEscapeSets[] = {
    {'s', "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
          "\\x{202F}\\x{205F}\\x{3000}"},
    {'h', "0-9a-fA-F"},
};

// The PCRE2 spelling of one escape `e`, or "" when it means the same in both.
std::string rewrite_escape(char e, bool in_class) {
  if (e == 'w' || e == 'W' || (!in_class && (e == 'b' || e == 'B')))  // in a class, \b is a backspace
    throw std::invalid_argument(std::string("\\") + e + " is not supported (Oniguruma's word characters differ)");
  for (const auto& [escape, set] : kEscapeSets) {
    const bool negated = e == std::toupper(escape);
    if (e != escape && !negated) continue;
    // A class cannot hold the complement of a set.
    if (in_class && negated)
      throw std::invalid_argument(std::string("\\") + e + " inside a character class is not supported");
    if (in_class) return set;
    return std::string(negated ? "[^" : "[") + set + "]";
  }
  return "";
}

}  // namespace

std::string onig_to_pcre2(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      const std::string set = rewrite_escape(e, in_class);
      if (set.empty()) out += c, out += e;
      else out += set;
      continue;
    }
    if (c == '[') {
      if (in_class && i + 1 < pattern.size() && pattern[i + 1] == ':') {
        size_t close = pattern.find(":]", i + 2);
        if (close == std::string::npos) throw std::invalid_argument("unterminated POSIX class");
        out.append(pattern, i, close + 2 - i);
        i = close + 1;
        continue;
      }
      if (in_class) throw std::invalid_argument("nested character classes are not supported");
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // a leading ] is literal
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

namespace {

// Match data and JIT stack belong to one thread; the compiled pattern is shared.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};
MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

TokenizerRegex::TokenizerRegex(const std::string& onig_pattern, std::string where)
    : pattern_(onig_pattern), where_(std::move(where)) {
  const std::string pattern = onig_to_pcre2(onig_pattern);
  int err = 0;
  PCRE2_SIZE at = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &at, nullptr);
  if (!code) throw std::invalid_argument(pcre2_message(err) + " at offset " + std::to_string(at));
  code_.reset(code, pcre2_code_free);
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

bool TokenizerRegex::find(std::string_view s, size_t pos, size_t* begin, size_t* end) const {
  MatchState& st = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  while (pos <= s.size()) {
    // Subjects are validated once per encode; re-checking at every offset would be quadratic.
    int rc = jit_ ? pcre2_jit_match(code_.get(), subject, s.size(), pos, 0, st.data, st.context)
                  : pcre2_match(code_.get(), subject, s.size(), pos, PCRE2_NO_UTF_CHECK, st.data, st.context);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0)
      throw RuntimeError((where_.empty() ? std::string() : where_ + ": ") + "tokenizer regex '" +
                         truncate_for_message(pattern_, 200) + "' failed at byte " + std::to_string(pos) + " of a " +
                         std::to_string(s.size()) + "-byte line: " + pcre2_message(rc) +
                         " (the pattern backtracks catastrophically; fix it in the tokenizer file)");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    if (ov[1] > ov[0]) {
      *begin = static_cast<size_t>(ov[0]);
      *end = static_cast<size_t>(ov[1]);
      return true;
    }
    if (ov[0] >= s.size()) return false;
    pos = ov[0] + utf8_char_len(static_cast<unsigned char>(s[ov[0]]));  // an empty match: step past it
  }
  return false;
}

std::chrono::steady_clock::duration TokenizerRegex::line_budget(size_t bytes) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(1.0 + 20e-6 * double(bytes)));
}

void TokenizerRegex::budget_spent(size_t bytes, size_t reached) const {
  const double secs = std::chrono::duration<double>(line_budget(bytes)).count();
  char budget[32];
  std::snprintf(budget, sizeof budget, "%.1f", secs);
  throw RuntimeError((where_.empty() ? std::string() : where_ + ": ") + "tokenizer regex '" + truncate_for_message(pattern_, 200) +
                     "' spent its " + budget + " s budget on a " + std::to_string(bytes) + "-byte line after " +
                     std::to_string(reached) + " bytes: it backtracks catastrophically (ms a character, hours a long "
                     "line); fix the pattern in the tokenizer file");
}

}  // namespace longalign::data
