// libcurl-based judge client. Without libcurl at build time the judge reports that it is
// unavailable (the GPU machine, for instance, builds without it).
#include "longalign/eval/judge.hpp"

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"

#ifdef LONGALIGN_HAVE_CURL
#include <curl/curl.h>
#endif

namespace longalign::eval {
namespace {

struct HttpResult {
  long status = 0;  // 0: transport failure
  std::string body, error;
};

#ifdef LONGALIGN_HAVE_CURL
size_t collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

HttpResult post_json(const JudgeOptions& o, const std::string& body) {
  static const bool init = curl_global_init(CURL_GLOBAL_DEFAULT) == 0;
  HttpResult r;
  CURL* c = init ? curl_easy_init() : nullptr;
  if (!c) return {0, "", "cannot initialise libcurl"};
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!o.api_key.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + o.api_key).c_str());
  curl_easy_setopt(c, CURLOPT_URL, o.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, long(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(o.timeout_s * 1000));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  else r.error = curl_easy_strerror(rc);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}
#else
HttpResult post_json(const JudgeOptions&, const std::string&) {
  return {0, "", "this longalign was built without libcurl (install libcurl4-openssl-dev and rebuild)"};
}
#endif

// One chat completion with retries on transport errors, 429 and 5xx.
HttpResult ask(const JudgeOptions& o, const std::string& prompt) {
  nlohmann::json req = {{"model", o.model}, {"temperature", 0}, {"max_tokens", 512},
                        {"messages", {{{"role", "user"}, {"content", prompt}}}}};
  HttpResult r;
  int wait = o.backoff_ms;
  for (int attempt = 0; attempt <= o.max_retries; ++attempt) {
    r = post_json(o, req.dump());
    const bool retry = r.status == 0 || r.status == 429 || r.status >= 500;
    if (!retry) return r;
    log::warn("judge request failed (" + (r.status ? "HTTP " + std::to_string(r.status) : r.error) + "); retry " +
              std::to_string(attempt + 1) + "/" + std::to_string(o.max_retries) + " in " + std::to_string(wait) + " ms");
    if (attempt < o.max_retries) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    wait *= 2;
  }
  return r;
}

}  // namespace

std::optional<double> parse_judge_score(const std::string& reply) {
  size_t end = reply.rfind("]]");
  while (end != std::string::npos) {
    size_t begin = reply.rfind("[[", end);
    if (begin == std::string::npos) break;
    std::string inner = reply.substr(begin + 2, end - begin - 2);
    char* stop = nullptr;
    double v = std::strtod(inner.c_str(), &stop);
    if (!inner.empty() && stop && *stop == '\0' && v >= 1 && v <= 10) return v;
    if (end == 0) break;
    end = reply.rfind("]]", end - 1);
  }
  return std::nullopt;
}

Judgment judge(const JudgeOptions& o, const std::string& prompt) {
  Judgment j;
  for (int attempt = 0; attempt <= o.score_retries; ++attempt) {
    HttpResult r = ask(o, prompt);
    if (r.status != 200) {
      j.error = r.status ? "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200) : r.error;
      return j;
    }
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    try {
      j.reply = body.at("choices").at(0).at("message").at("content").get<std::string>();
    } catch (const std::exception&) {
      j.error = "malformed chat-completions response: " + r.body.substr(0, 200);
      continue;
    }
    j.score = parse_judge_score(j.reply);
    if (j.score) {
      j.error.clear();
      return j;
    }
    j.error = "the judge's reply holds no [[score]] between 1 and 10";
  }
  return j;
}

std::string fill_judge_prompt(const std::string& tmpl, const std::string& question, const std::string& reference,
                              const std::string& prediction) {
  std::string out = tmpl;
  auto put = [&](const std::string& key, const std::string& value) {
    for (size_t p = out.find(key); p != std::string::npos; p = out.find(key, p + value.size()))
      out.replace(p, key.size(), value);
  };
  put("{question}", question);
  put("{reference}", reference);
  put("{prediction}", prediction);
  return out;
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

}  // namespace longalign::eval
