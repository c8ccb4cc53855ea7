// LongBench-Chat runner; the results file is rewritten atomically after each item.
#include "longalign/eval/longbench_chat.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <map>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/text.hpp"
#include "longalign/eval/generator.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::eval {
namespace {

std::string key_of(const json& j) { return j.contains("idx") ? j["idx"].dump() : ""; }

std::string score_text(const json& s) {
  if (s.is_string()) return s.get<std::string>();
  if (s.is_number_integer() || s.is_number_unsigned()) return std::to_string(s.get<int64_t>());
  return s.dump();
}

// A list of {answer, score} objects; `where` names it in errors.
std::vector<ScoredExample> parse_examples(const json& list, const std::string& where) {
  std::vector<ScoredExample> out;
  if (!list.is_array()) throw RuntimeError(where + ": few-shot examples must be a list of {answer, score}");
  for (const auto& e : list) {
    if (!e.is_object() || !e.contains("answer") || !e["answer"].is_string() || !e.contains("score"))
      throw RuntimeError(where + ": each few-shot example needs a string `answer` and a `score`");
    out.push_back({e["answer"].get<std::string>(), score_text(e["score"])});
  }
  return out;
}

}  // namespace

LongBenchChatReport run_longbench_chat(Generator& gen, const LongBenchChatOptions& o) {
  auto data_text = read_file(o.data);
  if (!data_text) throw UsageError("LongBench-Chat data " + o.data.string() + " does not exist");
  std::vector<json> cases;
  auto add_case = [&](json j, const std::string& where) {
    if (!j.is_object() || !(j.contains("prompt") || j.contains("query")) || !j.contains("answer"))
      throw RuntimeError(where + ": expected an object with prompt (or query) and answer");
    if (!j.contains("idx")) j["idx"] = cases.size();
    for (const auto& prev : cases)
      if (prev["idx"] == j["idx"]) throw RuntimeError(where + ": idx " + j["idx"].dump() + " appears twice");
    cases.push_back(std::move(j));
  };
  const size_t first = data_text->find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (*data_text)[first] == '[') {  // the benchmark's test_cases.json
    check_json_depth(*data_text, o.data.string());  // fields are echoed into the results
    json all = json::parse(*data_text, nullptr, false);
    if (!all.is_array()) throw RuntimeError(o.data.string() + ": not valid JSON");
    for (size_t i = 0; i < all.size(); ++i) add_case(all[i], o.data.string() + " item " + std::to_string(i));
  } else {  // JSONL
    std::istringstream in(*data_text);
    std::string line;
    for (size_t n = 1; std::getline(in, line); ++n)
      if (line.find_first_not_of(" \t\r") != std::string::npos) {
        check_json_depth(line, o.data.string() + ":" + std::to_string(n));
        add_case(json::parse(line, nullptr, false), o.data.string() + ":" + std::to_string(n));
      }
  }
  json few_shot_file;
  if (!o.few_shots.empty()) {
    auto text = read_file(o.few_shots);
    if (!text) throw UsageError("--few-shots " + o.few_shots.string() + " does not exist");
    few_shot_file = json::parse(*text, nullptr, false);
    if (!few_shot_file.is_array())
      throw RuntimeError(o.few_shots.string() + ": expected a JSON list (item idx-1 holds the examples of idx)");
  }
  auto examples_of = [&](const json& c) -> std::vector<ScoredExample> {
    if (c.contains("few_shots")) return parse_examples(c["few_shots"], o.data.string() + " item " + key_of(c));
    if (few_shot_file.is_null()) return {};
    if (!c["idx"].is_number_integer() || c["idx"].get<int64_t>() < 1 || c["idx"].get<int64_t>() > int64_t(few_shot_file.size()))
      throw RuntimeError(o.few_shots.string() + " has no examples for item idx " + key_of(c) + " (it holds " +
                         std::to_string(few_shot_file.size()) + " items, idx counted from 1)");
    return parse_examples(few_shot_file[size_t(c["idx"].get<int64_t>() - 1)], o.few_shots.string() + " item " + key_of(c));
  };
  fs::create_directories(o.output_dir);
  const fs::path results = o.output_dir / "results.jsonl";
  std::map<std::string, json> done;
  std::string line;
  if (std::ifstream prev(results); prev)
    while (std::getline(prev, line)) {
      json j = json::parse(line, nullptr, false);
      if (j.is_object()) done[key_of(j)] = j;
    }
  auto save = [&] {
    std::string text;
    for (const auto& c : cases)
      if (done.count(key_of(c))) text += done[key_of(c)].dump() + "\n";
    write_file_atomic(results, text);
  };
  LongBenchChatReport rep;
  rep.items = cases.size();
  double sum = 0;
  for (const auto& c : cases) {
    json& r = done[key_of(c)];
    const auto examples = examples_of(c);
    if (!examples.empty()) rep.fewshot_items += 1;
    if (r.is_object() && r.contains("score") && r["score"].is_number()) {
      sum += r["score"].get<double>();
      rep.scored += 1;
      continue;  // judged in an earlier run
    }
    const std::string prompt = c.value("prompt", c.value("query", std::string()));
    const std::string query = c.value("query", prompt);
    const std::string reference = c["answer"].is_string() ? c["answer"].get<std::string>() : c["answer"].dump();
    JudgeOptions jo = o.judge;
    if (!examples.empty()) jo.system_prompt = longbench_chat_system_prompt();
    const std::string& tmpl = !o.judge_prompt.empty() ? o.judge_prompt
                              : examples.empty()      ? default_judge_prompt()
                                                      : default_fewshot_judge_prompt();
    fill_judge_prompt(tmpl, query, reference, "", examples);  // a template that cannot fit fails before generating
    if (!r.is_object() || !r.contains("prediction")) {
      SamplingOptions so;
      so.max_new_tokens = o.max_new_tokens;
      auto ids = gen.prompt_ids(prompt, o.chat_template, std::min(o.max_length, gen.context_length()) - o.max_new_tokens);
      r = {{"idx", c["idx"]}, {"prediction", gen.tokenizer().decode(gen.generate(ids, so))}, {"prompt_tokens", ids.size()}};
    }
    // The benchmark judges each prediction as its script stores it: one line, trimmed.
    std::string judged = r["prediction"].get<std::string>();
    std::replace(judged.begin(), judged.end(), '\n', ' ');
    judged = trim(judged);
    Judgment j = judge(jo, fill_judge_prompt(tmpl, query, reference, judged, examples));
    r["protocol"] = examples.empty() ? "generic" : "few-shot";
    r["judge_reply"] = j.reply;
    r["score"] = j.score ? json(*j.score) : json(nullptr);
    if (j.score) {
      sum += *j.score;
      rep.scored += 1;
      r.erase("error");
    } else {
      r["error"] = j.error;
      log::warn("item " + key_of(c) + " unscored: " + j.error);
    }
    save();
  }
  save();
  rep.mean = rep.scored ? sum / double(rep.scored) : 0.0;
  json report = {{"items", rep.items},
                 {"scored", rep.scored},
                 {"unscored", rep.items - rep.scored},
                 {"mean_score", rep.mean},
                 {"score_x10", rep.mean * 10},
                 {"fewshot_items", rep.fewshot_items},
                 {"protocol", rep.fewshot_items == rep.items ? "longbench-chat few-shot"
                              : rep.fewshot_items == 0       ? "generic prompt (no few-shot examples in the data)"
                                                             : "mixed"},
                 {"judge_model", o.judge.chat.model}};
  write_file_atomic(o.output_dir / "report.json", report.dump(2) + "\n");
  return rep;
}

}  // namespace longalign::eval
