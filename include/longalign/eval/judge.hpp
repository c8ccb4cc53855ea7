// An LLM judge behind an OpenAI-compatible chat-completions endpoint, as LongBench-Chat uses:
// the first number inside the reply's last [[...]] is the score (1-10). HTTP failures retry with
// exponential backoff; a reply without a valid score is asked again, then recorded as unscored.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "longalign/core/chat_client.hpp"

namespace longalign::eval {

// The benchmark's parse: the last "[[...]]" of `reply`, the first number in it ("[[7/10]]" is 7),
// when it lies in [1, 10]; nullopt otherwise (also when the last brackets hold no number).
std::optional<double> parse_judge_score(const std::string& reply);

struct JudgeOptions {
  ChatOptions chat;  // endpoint, model, key, HTTP retries and timeout
  int score_retries = 2;   // re-asks when the reply holds no valid score
  std::string system_prompt;  // sent as a system message when not empty
};

struct Judgment {
  std::optional<double> score;
  std::string reply;
  std::string error;  // why there is no score
};

Judgment judge(const JudgeOptions& o, const std::string& prompt);

// One scored example answer of LongBench-Chat's few-shot judging.
struct ScoredExample {
  std::string answer;
  std::string score;  // as the data file writes it ("7", "6.5")
};

// The judge prompt. Named placeholders {question}, {reference}, {examples} (the scored examples,
// rendered) and {prediction}; or, as the benchmark's own prompt_fs.txt writes them, positional
// "{}" filled in order with the question, the reference, each example's answer and score, and the
// prediction ("{{" and "}}" are literal braces). UsageError when the positional count does not fit.
std::string fill_judge_prompt(const std::string& tmpl, const std::string& question, const std::string& reference,
                              const std::string& prediction, const std::vector<ScoredExample>& examples = {});
// Without examples: question, reference and prediction. With them: LongBench-Chat's few-shot
// protocol (its structure; pass the benchmark's prompt_fs.txt for its exact words).
const std::string& default_judge_prompt();
const std::string& default_fewshot_judge_prompt();
// The benchmark's judge system prompt, sent with the few-shot protocol.
const std::string& longbench_chat_system_prompt();

}  // namespace longalign::eval
