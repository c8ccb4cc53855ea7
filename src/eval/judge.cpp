// The LLM judge: the chat client plus the [[score]] protocol.
#include "longalign/eval/judge.hpp"

#include <cctype>
#include <cstdlib>

#include "longalign/core/error.hpp"
#include "longalign/core/text.hpp"

namespace longalign::eval {

std::optional<double> parse_judge_score(const std::string& reply) {
  const size_t end = reply.rfind("]]");
  if (end == std::string::npos) return std::nullopt;
  const size_t begin = reply.rfind("[[", end);
  if (begin == std::string::npos) return std::nullopt;
  // The first number inside, as before ("[[7/10]]" is 7), but only a plain decimal: skipping to
  // the first digit read "[[-5]]" as 5, and strtod read "[[0x9]]" as 9.
  const std::string inner = reply.substr(begin + 2, end - begin - 2);
  const size_t digit = inner.find_first_of("0123456789");
  if (digit == std::string::npos) return std::nullopt;
  if (digit > 0 && (inner[digit - 1] == '-' || inner[digit - 1] == '+' || inner[digit - 1] == '.')) return std::nullopt;
  size_t stop = inner.find_first_not_of("0123456789", digit);
  if (stop != std::string::npos && inner[stop] == '.' && stop + 1 < inner.size() && std::isdigit(static_cast<unsigned char>(inner[stop + 1])))
    stop = inner.find_first_not_of("0123456789", stop + 1);
  if (stop != std::string::npos && (std::isalnum(static_cast<unsigned char>(inner[stop])) || inner[stop] == '.')) return std::nullopt;
  const std::string number = inner.substr(digit, stop == std::string::npos ? std::string::npos : stop - digit);
  const double v = std::strtod(number.c_str(), nullptr);
  if (v >= 1 && v <= 10) return v;
  return std::nullopt;
}

Judgment judge(const JudgeOptions& o, const std::string& prompt) {
  Judgment j;
  for (int attempt = 0; attempt <= o.score_retries; ++attempt) {
    std::vector<ChatMessage> msgs;
    if (!o.system_prompt.empty()) msgs.push_back({"system", o.system_prompt});
    msgs.push_back({"user", prompt});
    ChatReply r = chat(o.chat, msgs);
    if (!r.ok() && r.status != 200) {
      j.error = r.error;
      return j;
    }
    if (!r.ok()) {  // a malformed response: ask again
      j.error = r.error;
      continue;
    }
    j.reply = r.content;
    j.score = parse_judge_score(j.reply);
    if (j.score) {
      j.error.clear();
      return j;
    }
    j.error = "the judge's reply holds no [[score]] between 1 and 10";
  }
  return j;
}

namespace {

// Python str.format with positional "{}" only, as the benchmark fills prompt_fs.txt.
std::string fill_positional(const std::string& tmpl, const std::vector<std::string>& values) {
  std::string out;
  size_t used = 0, slots = 0;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl.compare(i, 2, "{{") == 0 || tmpl.compare(i, 2, "}}") == 0) {
      out += tmpl[i++];
      continue;
    }
    if (tmpl.compare(i, 2, "{}") == 0) {
      if (slots < values.size()) out += values[slots];
      ++slots, ++i;
      used = slots;
      continue;
    }
    out += tmpl[i];
  }
  if (used != values.size())
    throw UsageError("the judge prompt has " + std::to_string(used) + " {} placeholders but this item needs " +
                     std::to_string(values.size()) + " (question, reference, answer and score of each of " +
                     std::to_string((values.size() - 3) / 2) + " examples, prediction)");
  return out;
}

std::string render_examples(const std::vector<ScoredExample>& examples) {
  std::string out;
  for (const auto& e : examples)
    out += "[Answer of an assistant]\n" + e.answer + "\n[End of that answer]\nRating: [[" + e.score + "]]\n\n";
  return out;
}

}  // namespace

std::string fill_judge_prompt(const std::string& tmpl, const std::string& question, const std::string& reference,
                              const std::string& prediction, const std::vector<ScoredExample>& examples) {
  if (tmpl.find("{}") != std::string::npos) {
    std::vector<std::string> values = {question, reference};
    for (const auto& e : examples) values.push_back(e.answer), values.push_back(e.score);
    values.push_back(prediction);
    return fill_positional(tmpl, values);
  }
  return fill_placeholders(tmpl, {{"{question}", question},
                                 {"{reference}", reference},
                                 {"{prediction}", prediction},
                                 {"{examples}", render_examples(examples)}});
}

const std::string& default_judge_prompt() {
  // Follows LongBench-Chat's protocol (question, reference answer, scored examples, the
  // assistant's answer, a [[score]] from 1 to 10). Pass --judge-prompt with the benchmark's own
  // few-shot text for scores comparable with the paper.
  static const std::string p =
      "[Instruction]\nYou are asked to evaluate the quality of the AI assistant's answer to a user question as an "
      "impartial judge. Your evaluation should consider correctness and helpfulness. You will be given a reference "
      "answer and the assistant's answer. Compare the assistant's answer with the reference, identify any mistakes, "
      "and be as objective as possible. After a short explanation, rate the response on a scale of 1 to 10 in the "
      "format \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n"
      "[Example 1]\nQuestion: What year did the expedition reach the summit?\nReference: 1953.\n"
      "Assistant: The expedition reached the summit in 1953.\nRating: [[10]]\n\n"
      "[Example 2]\nQuestion: List the three causes named in the report.\nReference: drought, pests and floods.\n"
      "Assistant: The report names drought and pests.\nRating: [[6]]\n\n"
      "[Example 3]\nQuestion: Who signed the treaty?\nReference: The two foreign ministers.\n"
      "Assistant: The treaty was signed by the kings of both countries.\nRating: [[2]]\n\n"
      "[Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
      "[The Start of Assistant's Answer]\n{prediction}\n[The End of Assistant's Answer]";
  return p;
}

const std::string& default_fewshot_judge_prompt() {
  // LongBench-Chat's few-shot protocol in this project's words: principles (correctness first,
  // then helpfulness, accuracy, relevance), the question, the reference, the question's own scored
  // example answers, then the answer to rate.
  static const std::string p =
      "[Instructions]\nAs an impartial judge, rate the quality of an AI assistant's answer to a user's question. "
      "Weigh correctness above all, then helpfulness, accuracy and relevance:\n"
      "1. Compare the answer with the reference answer.\n"
      "2. Find every error in the answer and judge how much it harms the answer to the question.\n"
      "3. Judge how directly and fully the answer gives the user the information asked for.\n"
      "4. Check that anything the answer adds is correct and relevant; deduct points when it is not.\n\n"
      "Give one overall integer rating from 1 to 10, written exactly as \"[[rating]]\", for example \"[[5]]\".\n\n"
      "[Question]\n{question}\n\n[Reference answer]\n{reference}\n[End of reference answer]\n\n"
      "Some answers of other assistants, with their ratings:\n\n{examples}"
      "Rate the following answer by the principles and the examples above:\n\n"
      "[Answer of an assistant]\n{prediction}\n[End of that answer]\n\nRating: ";
  return p;
}

const std::string& longbench_chat_system_prompt() {
  static const std::string p = "You're a good assistant at evaluating the quality of texts.";
  return p;
}

}  // namespace longalign::eval
