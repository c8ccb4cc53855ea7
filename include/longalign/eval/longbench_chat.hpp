// LongBench-Chat: generate an answer for each test case (prompt middle-truncated to the
// context, 1024 new tokens), have the judge score it, and report the mean (and x10, as the
// paper's tables). When an item has scored example answers (its own `few_shots` field, or the
// benchmark's few_shots.json by idx), it is judged by the benchmark's protocol: its system
// prompt, and a prompt holding that question's own examples; otherwise by the generic prompt.
// Results are saved after every item, so a re-run skips what was already judged (and reuses
// saved predictions).
#pragma once
#include <filesystem>
#include <string>

#include "longalign/data/chat/chat_template.hpp"
#include "longalign/eval/judge.hpp"

namespace longalign::eval {

class Generator;

struct LongBenchChatOptions {
  std::filesystem::path data;        // JSONL: idx, prompt (or query), answer, optional few_shots
  std::filesystem::path few_shots;   // optional: the benchmark's few_shots.json (item idx-1 = its examples)
  std::filesystem::path output_dir;  // results.jsonl, report.json
  JudgeOptions judge;
  std::string judge_prompt;          // template; default_judge_prompt() when empty
  data::Template chat_template = data::Template::llama2;
  int64_t max_length = 65536;
  int64_t max_new_tokens = 1024;
};

struct LongBenchChatReport {
  size_t items = 0, scored = 0, fewshot_items = 0;  // judged with the few-shot protocol
  double mean = 0;
};

LongBenchChatReport run_longbench_chat(Generator& gen, const LongBenchChatOptions& o);

}  // namespace longalign::eval
