// LongBench-Chat: generate an answer for each test case (prompt middle-truncated to the
// context, 1024 new tokens), have the judge score it, and report the mean. Results are saved
// after every item, so a re-run skips what was already judged (and reuses saved predictions).
#pragma once
#include <filesystem>
#include <string>

#include "longalign/data/chat_template.hpp"
#include "longalign/eval/judge.hpp"

namespace longalign::eval {

class Generator;

struct LongBenchChatOptions {
  std::filesystem::path data;        // JSONL: idx, prompt (or query), answer
  std::filesystem::path output_dir;  // results.jsonl, report.json
  JudgeOptions judge;
  std::string judge_prompt;          // template; default_judge_prompt() when empty
  data::Template chat_template = data::Template::llama2;
  int64_t max_length = 65536;
  int64_t max_new_tokens = 1024;
};

struct LongBenchChatReport {
  size_t items = 0, scored = 0;
  double mean = 0;
};

LongBenchChatReport run_longbench_chat(Generator& gen, const LongBenchChatOptions& o);

}  // namespace longalign::eval
