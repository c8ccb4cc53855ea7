// LongBench-Chat runner; the results file is rewritten atomically after each item.
#include "longalign/eval/longbench_chat.hpp"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/eval/generator.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::eval {
namespace {

std::string key_of(const json& j) { return j.contains("idx") ? j["idx"].dump() : ""; }

}  // namespace

LongBenchChatReport run_longbench_chat(Generator& gen, const LongBenchChatOptions& o) {
  std::ifstream in(o.data);
  if (!in) throw UsageError("LongBench-Chat data " + o.data.string() + " does not exist");
  std::vector<json> cases;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !(j.contains("prompt") || j.contains("query")) || !j.contains("answer"))
      throw RuntimeError(o.data.string() + ":" + std::to_string(n) + ": expected an object with prompt (or query) and answer");
    if (!j.contains("idx")) j["idx"] = cases.size();
    cases.push_back(std::move(j));
  }
  fs::create_directories(o.output_dir);
  const fs::path results = o.output_dir / "results.jsonl";
  std::map<std::string, json> done;
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
  const std::string tmpl = o.judge_prompt.empty() ? default_judge_prompt() : o.judge_prompt;
  LongBenchChatReport rep;
  rep.items = cases.size();
  double sum = 0;
  for (const auto& c : cases) {
    json& r = done[key_of(c)];
    if (r.is_object() && r.contains("score") && r["score"].is_number()) {
      sum += r["score"].get<double>();
      rep.scored += 1;
      continue;  // judged in an earlier run
    }
    const std::string prompt = c.value("prompt", c.value("query", std::string()));
    const std::string query = c.value("query", prompt);
    if (!r.is_object() || !r.contains("prediction")) {
      SamplingOptions so;
      so.max_new_tokens = o.max_new_tokens;
      auto ids = gen.prompt_ids(prompt, o.chat_template, std::min(o.max_length, gen.context_length()) - o.max_new_tokens);
      r = {{"idx", c["idx"]}, {"prediction", gen.tokenizer().decode(gen.generate(ids, so))}, {"prompt_tokens", ids.size()}};
    }
    Judgment j = judge(o.judge, fill_judge_prompt(tmpl, query, c["answer"].is_string() ? c["answer"].get<std::string>()
                                                                                       : c["answer"].dump(),
                                                  r["prediction"].get<std::string>()));
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
  json report = {{"items", rep.items}, {"scored", rep.scored}, {"unscored", rep.items - rep.scored}, {"mean_score", rep.mean},
                 {"judge_model", o.judge.model}};
  write_file_atomic(o.output_dir / "report.json", report.dump(2) + "\n");
  return rep;
}

}  // namespace longalign::eval
