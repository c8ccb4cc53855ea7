// Needle-in-a-haystack. The needle and question are the `synth` passkey task's, so a model
// trained on synth data is evaluated on the skill it was taught, at longer contexts.
#include "longalign/eval/needle.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/synth.hpp"
#include "longalign/eval/generator.hpp"
#include "longalign/eval/heatmap_png.hpp"

namespace fs = std::filesystem;

namespace longalign::eval {
namespace {

const char* kHeader =
    "There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it.\n\n";
const char* kQuestion = "\n\nWhat is the pass key?";

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

Haystack build_haystack(const std::vector<std::string>& sentences, int64_t target_tokens, double depth,
                        const data::Tokenizer& tok, uint64_t seed) {
  Rng rng(seed);
  Haystack h;
  h.key = std::to_string(rng.range(10000, 99999));
  const std::string needle = "The pass key is " + h.key + ". Remember it. " + h.key + " is the pass key.";
  auto count = [&](const std::string& s) { return int64_t(tok.encode(s).size()); };
  const int64_t budget = std::max<int64_t>(0, target_tokens - count(kHeader) - count(kQuestion) - count(needle) - 16);
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
  h.text = kHeader;
  h.context_begin = h.text.size();
  for (size_t i = 0; i <= chosen.size(); ++i) {
    if (i == at) {
      h.needle_offset = h.text.size();
      h.text += needle + " ";
    }
    if (i < chosen.size()) h.text += chosen[i] + " ";
  }
  h.context_end = h.text.size();
  h.text += kQuestion;
  return h;
}

std::vector<int64_t> default_lengths(int64_t max_length, int n) {
  std::vector<int64_t> v;
  for (int i = 1; i <= n; ++i) v.push_back(max_length * i / n);
  return v;
}

std::vector<double> default_depths(int m) {
  std::vector<double> v;
  for (int i = 0; i < m; ++i) v.push_back(m == 1 ? 0.5 : double(i) / (m - 1));
  return v;
}

NeedleResult run_needle(Generator& gen, const NeedleOptions& o) {
  if (o.lengths.empty() || o.depths.empty()) throw UsageError("eval needle: the grid is empty");
  fs::create_directories(o.output_dir);
  auto sentences = load_filler_sentences(o.haystack, o.seed);
  NeedleResult r;
  r.score.assign(o.depths.size(), std::vector<double>(o.lengths.size(), 0.0));
  nlohmann::json details = nlohmann::json::array();
  double sum = 0;
  for (size_t di = 0; di < o.depths.size(); ++di)
    for (size_t li = 0; li < o.lengths.size(); ++li) {
      Haystack h = build_haystack(sentences, o.lengths[li], o.depths[di], gen.tokenizer(), o.seed + di * 1000 + li);
      auto ids = gen.prompt_ids(h.text, o.chat_template, gen.context_length() - o.max_new_tokens);
      SamplingOptions so;
      so.max_new_tokens = o.max_new_tokens;
      std::string answer = gen.tokenizer().decode(gen.generate(ids, so));
      const bool hit = answer.find(h.key) != std::string::npos;
      r.score[di][li] = hit ? 1.0 : 0.0;
      sum += r.score[di][li];
      details.push_back({{"length", o.lengths[li]}, {"prompt_tokens", ids.size()}, {"depth", o.depths[di]},
                         {"key", h.key}, {"answer", answer}, {"hit", hit}});
      log::info("needle length " + std::to_string(o.lengths[li]) + " depth " + std::to_string(int(o.depths[di] * 100)) +
                "%: " + (hit ? "found" : "missed"));
    }
  r.mean = sum / double(o.depths.size() * o.lengths.size());
  nlohmann::json j = {{"lengths", o.lengths}, {"depths", o.depths}, {"scores", r.score}, {"mean", r.mean},
                      {"details", details}};
  write_file_atomic(o.output_dir / "results.json", j.dump(2) + "\n");
  write_heatmap_png(o.output_dir / "heatmap.png", r.score);
  return r;
}

}  // namespace longalign::eval
