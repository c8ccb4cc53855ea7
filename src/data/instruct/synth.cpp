// Synthetic tasks. Every answer is derivable from the prompt, so a model that learns the task
// shows a falling loss on it, and retrieval accuracy is scorable without a judge.
#include "longalign/data/instruct/synth.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"

namespace longalign::data {
namespace {

const std::vector<const char*> kSubjects = {"The river", "A quiet village", "The old library", "Every morning the baker",
                                            "The mountain road", "A small boat", "The city council", "The garden",
                                            "The northern wind", "A curious student", "The museum", "The train"};
const std::vector<const char*> kVerbs = {"carries", "remembers", "watches", "follows", "gathers", "describes",
                                         "changes", "welcomes", "crosses", "builds", "measures", "keeps"};
const std::vector<const char*> kObjects = {"the evening light", "stories of the harbour", "a thousand old maps",
                                           "the colour of the hills", "fresh bread and honey", "the sound of bells",
                                           "letters from distant friends", "the shape of the clouds",
                                           "quiet footsteps at night", "the names of the stars"};
const std::vector<const char*> kTails = {"before the sun sets", "as it always has", "without a single word",
                                         "in the late autumn", "while the town sleeps", "for anyone who asks"};

template <typename T>
const T& pick(Rng& rng, const std::vector<T>& v) { return v[rng.below(v.size())]; }

std::string hex(Rng& rng, int n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s += digits[rng.below(16)];
  return s;
}

nlohmann::json msg(const char* role, std::string content) { return {{"role", role}, {"content", std::move(content)}}; }

std::string passkey(Rng& rng, uint64_t words) {
  std::string key = std::to_string(rng.range(10000, 99999));
  std::string needle = " The pass key is " + key + ". Remember it. " + key + " is the pass key. ";
  uint64_t before = rng.below(words + 1);
  std::string text = "There is an important piece of information hidden inside a lot of irrelevant text. "
                     "Find it and memorize it.\n\n" +
                     filler_text(rng, before) + needle + filler_text(rng, words - before) +
                     "\n\nWhat is the pass key?";
  nlohmann::json m = {msg("user", text), msg("assistant", "The pass key is " + key + ".")};
  return nlohmann::json{{"messages", m}}.dump();
}

std::string kv_retrieval(Rng& rng, uint64_t words) {
  // Hex keys tokenize into many pieces; ~12 words per pair keeps the length comparable to the filler tasks.
  uint64_t pairs = std::max<uint64_t>(4, words / 12);
  std::vector<std::pair<std::string, std::string>> kv;
  for (uint64_t i = 0; i < pairs; ++i) kv.emplace_back(hex(rng, 8) + "-" + hex(rng, 4), hex(rng, 8) + "-" + hex(rng, 4));
  std::string obj = "{";
  for (size_t i = 0; i < kv.size(); ++i) obj += (i ? ", \"" : "\"") + kv[i].first + "\": \"" + kv[i].second + "\"";
  obj += "}";
  const auto& a = kv[rng.below(kv.size())];
  const auto& b = kv[rng.below(kv.size())];
  nlohmann::json m = {
      msg("system", "You answer questions about the JSON object given by the user."),
      msg("user", "Extract the value corresponding to the specified key in the JSON object below.\n\n" + obj +
                      "\n\nKey: \"" + a.first + "\"\nThe value associated with the specified key is:"),
      msg("assistant", a.second),
      msg("user", "And the value of key \"" + b.first + "\"?"),
      msg("assistant", b.second)};
  return nlohmann::json{{"messages", m}}.dump();
}

std::string short_task(Rng& rng, std::string* task) {
  std::string q, a;
  switch (rng.below(4)) {
    case 0: {
      int64_t x = rng.range(0, 999), y = rng.range(0, 999);
      q = "What is " + std::to_string(x) + " + " + std::to_string(y) + "?";
      a = std::to_string(x + y);
      *task = "add";
      break;
    }
    case 1: {
      std::vector<std::string> w;
      for (int i = 0, n = int(rng.range(3, 7)); i < n; ++i) w.push_back(hex(rng, 3));
      q = "Reverse the order of these words:";
      for (auto& s : w) q += " " + s;
      for (size_t i = w.size(); i-- > 0;) a += w[i] + (i ? " " : "");
      *task = "reverse";
      break;
    }
    case 2: {
      std::vector<int64_t> v;
      for (int i = 0, n = int(rng.range(3, 8)); i < n; ++i) v.push_back(rng.range(0, 99));
      q = "Sort these numbers in ascending order:";
      for (auto x : v) q += " " + std::to_string(x);
      std::sort(v.begin(), v.end());
      for (size_t i = 0; i < v.size(); ++i) a += (i ? " " : "") + std::to_string(v[i]);
      *task = "sort";
      break;
    }
    default: {
      std::string s = std::string(pick(rng, kSubjects)) + " " + pick(rng, kVerbs) + " " + pick(rng, kObjects);
      q = "Repeat this sentence in upper case: " + s;
      for (char c : s) a += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      *task = "upper";
      break;
    }
  }
  nlohmann::json m = {msg("user", q), msg("assistant", a)};
  return nlohmann::json{{"messages", m}}.dump();
}

}  // namespace

std::string filler_text(Rng& rng, uint64_t words) {
  std::string out;
  uint64_t n = 0;
  while (n < words) {
    std::string s = std::string(pick(rng, kSubjects)) + " " + pick(rng, kVerbs) + " " + pick(rng, kObjects);
    if (rng.below(2)) s += std::string(" ") + pick(rng, kTails);
    s += ".";
    for (char c : s) n += c == ' ';
    n += 1;
    out += (out.empty() ? "" : " ") + s;
  }
  return out;
}

std::string synth_record(Rng& rng, const SynthOptions& o, std::string* task) {
  std::string dummy;
  std::string& t = task ? *task : dummy;
  if (rng.uniform() < o.long_fraction) {
    uint64_t words = uint64_t(rng.range(int64_t(o.min_words), int64_t(o.max_words)));
    if (rng.below(2)) {
      t = "passkey";
      return passkey(rng, words);
    }
    t = "kv_retrieval";
    return kv_retrieval(rng, words);
  }
  return short_task(rng, &t);
}

void write_synth(const SynthOptions& o, const std::filesystem::path& out) {
  if (o.num == 0) throw UsageError("--num must be positive");
  if (o.min_words > o.max_words) throw UsageError("--min-words must not exceed --max-words");
  if (o.long_fraction < 0 || o.long_fraction > 1) throw UsageError("--long-fraction must lie in [0, 1]");
  check_writable_parent(out);
  if (!out.parent_path().empty()) std::filesystem::create_directories(out.parent_path());
  std::filesystem::path tmp = out;
  tmp += ".tmp";
  try {
    FileWriter w(tmp);
    Rng rng(o.seed);
    for (uint64_t i = 0; i < o.num; ++i) {
      w.write(synth_record(rng, o));
      w.write("\n");
    }
    w.close();
    std::filesystem::rename(tmp, out);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

std::vector<SeqInfo> longalign_like_lengths(size_t n, double long_fraction, uint64_t seed) {
  Rng rng(seed);
  std::vector<SeqInfo> v;
  for (size_t i = 0; i < n; ++i) {
    uint32_t len;
    if (rng.uniform() < long_fraction) {
      len = uint32_t(std::exp(std::log(8192.0) + rng.uniform() * (std::log(65536.0) - std::log(8192.0))));
      v.push_back({len, std::max<uint32_t>(1, len / 10)});
    } else {
      double z = std::sqrt(-2 * std::log(1 - rng.uniform())) * std::cos(2 * M_PI * rng.uniform());
      len = uint32_t(std::clamp(std::exp(std::log(700.0) + z), 32.0, 8191.0));
      v.push_back({len, std::max<uint32_t>(1, len / 2)});
    }
  }
  return v;
}

}  // namespace longalign::data
