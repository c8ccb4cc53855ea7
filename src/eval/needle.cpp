// Needle-in-a-haystack. The passkey style uses the `synth` passkey task's needle and question,
// so a model trained on synth data is evaluated on the skill it was taught, at longer contexts;
// the essay style is the paper's test with any needle.
#include "longalign/eval/needle.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/instruct/synth.hpp"
#include "longalign/eval/generator.hpp"
#include "longalign/eval/heatmap.hpp"

namespace fs = std::filesystem;

namespace longalign::eval {
namespace {

const char* kHeader =
    "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it.\n\n";
const char* kQuestion = "\n\nWhat is the pass key?";
const char* kEssayHeader = "Read the document below, then answer the question that follows it.\n\n";

// The needle judge: the answer against the needle, 1-10, in this project's words.
const char* kNeedleJudgePrompt =
    "[Instructions]\nAs an impartial judge, rate how well the assistant's answer to the question agrees with the "
    "reference. Give 10 when it states what the reference says, 1 when it misses it or says something else, and a "
    "score in between for a partial answer. After a short reason, write the rating exactly as \"[[rating]]\".\n\n"
    "[Question]\n{question}\n\n[Reference]\n{reference}\n\n[The assistant's answer]\n{prediction}";

// Lower case with runs of whitespace as one space: what exact matching compares.
std::string normalized(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isspace(c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += char(std::tolower(c));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i] == '\n' ? ' ' : text[i];
    if (cur.empty() && c == ' ') continue;
    cur += c;
    if ((c == '.' || c == '!' || c == '?') && (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n')) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (cur.find_first_not_of(' ') != std::string::npos) out.push_back(cur);
  return out;
}

}  // namespace

std::vector<std::string> load_filler_sentences(const fs::path& path, uint64_t seed) {
  std::string text;
  if (path.empty()) {
    Rng rng(seed);
    text = data::filler_text(rng, 30000);
  } else {
    auto t = read_file(path);
    if (!t) throw UsageError("haystack file " + path.string() + " does not exist");
    text = *t;
  }
  auto s = split_sentences(text);
  if (s.empty()) throw UsageError("haystack " + path.string() + " holds no sentence");
  return s;
}

const char* const kSanFranciscoNeedle =
    "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.";
const char* const kSanFranciscoQuestion = "What is the best thing to do in San Francisco?";
const char* const kSanFranciscoAnswer = "eat a sandwich and sit in Dolores Park";

Haystack build_haystack(const std::vector<std::string>& sentences, int64_t target_tokens, double depth,
                        const data::Tokenizer& tok, uint64_t seed) {
  Rng rng(seed);
  const std::string key = std::to_string(rng.range(10000, 99999));
  Haystack h = build_haystack_with(sentences, target_tokens, depth, tok,
                                   "The pass key is " + key + ". Remember it. " + key + " is the pass key.", kHeader,
                                   kQuestion);
  h.key = key;
  return h;
}

Haystack build_haystack_with(const std::vector<std::string>& sentences, int64_t target_tokens, double depth,
                             const data::Tokenizer& tok, const std::string& needle, const std::string& header,
                             const std::string& question) {
  Haystack h;
  auto count = [&](const std::string& s) { return int64_t(tok.encode(s).size()); };
  const int64_t budget = std::max<int64_t>(0, target_tokens - count(header) - count(question) - count(needle) - 16);
  std::vector<std::string> chosen;
  std::vector<int64_t> cum = {0};  // tokens before sentence i
  for (size_t i = 0; cum.back() < budget; ++i) {
    const std::string& s = sentences[i % sentences.size()];
    const int64_t n = count(s) + 1;
    if (cum.back() + n > budget && !chosen.empty()) break;
    chosen.push_back(s);
    cum.push_back(cum.back() + n);
    if (n <= 0) break;
  }
  // The boundary whose token position is nearest to depth * total.
  const double want = std::clamp(depth, 0.0, 1.0) * double(cum.back());
  size_t at = 0;
  for (size_t i = 1; i < cum.size(); ++i)
    if (std::abs(double(cum[i]) - want) < std::abs(double(cum[at]) - want)) at = i;
  h.text = header;
  h.context_begin = h.text.size();
  for (size_t i = 0; i <= chosen.size(); ++i) {
    if (i == at) {
      h.needle_offset = h.text.size();
      h.text += needle + " ";
    }
    if (i < chosen.size()) h.text += chosen[i] + " ";
  }
  h.context_end = h.text.size();
  h.text += question;
  return h;
}

std::vector<int64_t> default_lengths(int64_t max_length, int n, int64_t min_length) {
  std::vector<int64_t> v;
  for (int i = 1; i <= n; ++i)
    v.push_back(min_length <= 0 ? max_length * i / n
                : n == 1        ? max_length
                                : min_length + (max_length - min_length) * (i - 1) / (n - 1));
  return v;
}

std::vector<double> default_depths(int m, double lo, double hi) {
  std::vector<double> v;
  for (int i = 0; i < m; ++i) v.push_back(m == 1 ? 0.5 * (lo + hi) : lo + (hi - lo) * double(i) / (m - 1));
  return v;
}

NeedleResult run_needle(Generator& gen, const NeedleOptions& o) {
  if (o.lengths.empty() || o.depths.empty()) throw UsageError("eval needle: the grid is empty");
  fs::create_directories(o.output_dir);
  auto sentences = load_filler_sentences(o.haystack, o.seed);
  const bool essay = !o.needle.empty();
  if (essay && o.question.empty()) throw UsageError("eval needle: a needle needs its --question");
  if (essay && !o.judge && (normalized(o.expected).empty() ||
                            normalized(o.needle).find(normalized(o.expected)) == std::string::npos))
    throw UsageError("eval needle: without --judge-url, --needle-answer must give the part of the needle a correct "
                     "answer contains (\"" + o.expected + "\" is not in the needle)");
  NeedleResult r;
  r.judged = essay && o.judge.has_value();
  size_t scored = 0;
  r.score.assign(o.depths.size(), std::vector<double>(o.lengths.size(), 0.0));
  nlohmann::json details = nlohmann::json::array();
  double sum = 0;
  for (size_t di = 0; di < o.depths.size(); ++di)
    for (size_t li = 0; li < o.lengths.size(); ++li) {
      Haystack h = essay ? build_haystack_with(sentences, o.lengths[li], o.depths[di], gen.tokenizer(), o.needle,
                                               kEssayHeader, "\n\n" + o.question)
                         : build_haystack(sentences, o.lengths[li], o.depths[di], gen.tokenizer(), o.seed + di * 1000 + li);
      auto ids = gen.prompt_ids(h.text, o.chat_template, gen.context_length() - o.max_new_tokens);
      SamplingOptions so;
      so.max_new_tokens = o.max_new_tokens;
      std::string answer = gen.tokenizer().decode(gen.generate(ids, so));
      nlohmann::json cell = {{"length", o.lengths[li]}, {"prompt_tokens", ids.size()}, {"depth", o.depths[di]},
                             {"answer", answer}};
      std::optional<double> score;
      if (r.judged) {
        Judgment j = judge(*o.judge, fill_judge_prompt(kNeedleJudgePrompt, o.question, o.needle, answer));
        score = j.score;
        cell["judge_reply"] = j.reply;
        if (!j.score) cell["error"] = j.error;
      } else {
        const bool hit = essay ? normalized(answer).find(normalized(o.expected)) != std::string::npos
                               : answer.find(h.key) != std::string::npos;
        score = hit ? 1.0 : 0.0;
        if (!essay) cell["key"] = h.key;
      }
      cell["score"] = score ? nlohmann::json(*score) : nlohmann::json(nullptr);
      details.push_back(cell);
      r.score[di][li] = score.value_or(std::nan(""));
      if (score) {
        sum += *score;
        scored += 1;
      } else {
        r.unscored += 1;
      }
      log::info("needle length " + std::to_string(o.lengths[li]) + " depth " + std::to_string(int(o.depths[di] * 100)) +
                "%: " + (!score ? "unscored" : r.judged ? "score " + std::to_string(int(*score)) : *score > 0 ? "found" : "missed"));
    }
  r.mean = scored ? sum / double(scored) : 0.0;
  nlohmann::json scores = nlohmann::json::array();
  for (const auto& row : r.score) {
    nlohmann::json jr = nlohmann::json::array();
    for (double v : row) jr.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
    scores.push_back(jr);
  }
  nlohmann::json j = {{"style", essay ? "essay" : "passkey"},
                      {"scale", r.judged ? "judge 1-10" : "hit 1 / miss 0"},
                      {"lengths", o.lengths},
                      {"depths", o.depths},
                      {"scores", scores},
                      {"mean", r.mean},
                      {"unscored", r.unscored},
                      {"details", details}};
  if (essay) j["needle"] = o.needle, j["question"] = o.question, j["expected"] = o.expected;
  write_file_atomic(o.output_dir / "results.json", j.dump(2) + "\n");
  HeatmapSpec hm;
  hm.scores = r.score;
  hm.lengths = o.lengths;
  hm.depths = o.depths;
  char mean[64];
  if (r.judged) std::snprintf(mean, sizeof mean, "mean score %.2f / 10", r.mean);
  else std::snprintf(mean, sizeof mean, "accuracy %.1f%%", 100 * r.mean);
  hm.title = (o.model_name.empty() ? std::string("Needle in a haystack") : o.model_name + ": needle in a haystack") +
             ", " + mean;
  if (r.judged) hm.lo = 1, hm.hi = 10, hm.scale_label = "judge score (1-10)";
  else hm.lo = 0, hm.hi = 1, hm.scale_label = "found (1) / missed (0)";
  if (!write_heatmap(hm, o.output_dir / "heatmap.png", o.output_dir / "heatmap.svg"))
    log::warn("this build has no cairo (LONGALIGN_WITH_CAIRO=OFF): heatmap.svg only, no heatmap.png");
  return r;
}

}  // namespace longalign::eval
