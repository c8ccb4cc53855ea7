// An LLM judge behind an OpenAI-compatible chat-completions endpoint, as LongBench-Chat uses:
// the reply's last [[score]] (1-10) is the score. HTTP failures retry with exponential backoff;
// a reply without a valid score is asked again, then recorded as unscored.
#pragma once
#include <optional>
#include <string>

namespace longalign::eval {

// The number in the last "[[x]]" of `reply` when it lies in [1, 10]; nullopt otherwise.
std::optional<double> parse_judge_score(const std::string& reply);

struct JudgeOptions {
  std::string url;    // e.g. https://api.openai.com/v1/chat/completions
  std::string model;  // e.g. gpt-4
  std::string api_key;
  int max_retries = 5;       // HTTP errors, timeouts, 429 and 5xx
  int backoff_ms = 1000;     // first wait; doubles each retry
  int score_retries = 2;     // re-asks when the reply holds no valid score
  double timeout_s = 120;
};

struct Judgment {
  std::optional<double> score;
  std::string reply;
  std::string error;  // why there is no score
};

Judgment judge(const JudgeOptions& o, const std::string& prompt);

// The judge prompt: `tmpl` with {question}, {reference} and {prediction} substituted.
std::string fill_judge_prompt(const std::string& tmpl, const std::string& question, const std::string& reference,
                              const std::string& prediction);
const std::string& default_judge_prompt();

}  // namespace longalign::eval
