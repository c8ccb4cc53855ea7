// `longalign selfinstruct`: long instruction data from long documents (data/instruct/selfinstruct.hpp).
#include <cstdlib>
#include <iostream>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/data/instruct/selfinstruct.hpp"
#include "options.hpp"

namespace fs = std::filesystem;

namespace longalign::cli {
namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (size_t b = 0; b <= s.size();) {
    size_t e = s.find(',', b);
    if (e == std::string::npos) e = s.size();
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

// --docs is a file or a folder; everything else named is a file. The output is appended to
// and renamed from nowhere, so a device or FIFO there is refused like a directory.
void check_paths(const data::SelfInstructOptions& o) {
  if (!fs::is_directory(o.docs)) check_input_file(o.docs, "--docs");
  if (!o.tokenizer.empty()) check_input_file(o.tokenizer, "--tokenizer");
  if (!o.prompts.empty()) check_input_file(o.prompts, "--prompts");
  check_output_path(o.output, OutputKind::file, "--output", {o.docs, o.tokenizer, o.prompts});
}

}  // namespace

void add_selfinstruct(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand(
      "selfinstruct", "Make long instruction data from long documents with an OpenAI-compatible model (Self-Instruct)");
  auto o = std::make_shared<data::SelfInstructOptions>();
  auto docs = std::make_shared<std::string>(), out = std::make_shared<std::string>();
  auto key_env = std::make_shared<std::string>("OPENAI_API_KEY"), types = std::make_shared<std::string>();
  auto tokenizer = std::make_shared<std::string>(), prompts = std::make_shared<std::string>();
  auto no_progress = std::make_shared<bool>(false);
  o->chat.temperature = 0.7;  // varied questions across documents and jobs
  o->chat.max_tokens = 1024;
  cmd->add_option("--docs", *docs, "JSONL of {\"id\", \"text\"} documents, or a folder of .txt/.md files")->required();
  cmd->add_option("--endpoint", o->chat.url, "OpenAI-compatible chat-completions URL")->required();
  cmd->add_option("--model", o->chat.model, "Model name sent to the endpoint")->required();
  cmd->add_option("-o,--output", *out, "Output JSONL (appended; a re-run resumes)")->required();
  cmd->add_option("--key-env", *key_env, "Environment variable holding the API key")->capture_default_str();
  cmd->add_option("-t,--tokenizer", *tokenizer, "sentencepiece model to measure documents in tokens (default: words)");
  cmd->add_option("--max-doc-tokens", o->max_doc_tokens, "Longer documents are cut to this")
      ->capture_default_str()
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--min-doc-words", o->min_doc_words, "Shorter documents are skipped")
      ->capture_default_str()
      ->check(int_range(0, kMaxTokens));
  cmd->add_option("--task-types", *types, "Comma list of general_qa, summary, reasoning, extraction (default: all)");
  cmd->add_option("--prompts", *prompts,
                  "JSON object overriding prompt templates by name (general_qa, summary, reasoning, extraction, "
                  "follow_up, answer; placeholders {document} {question} {history} {task})");
  cmd->add_option("--per-doc", o->per_doc, "Records per document")->capture_default_str()->check(int_range(1, 1000));
  cmd->add_option("--turns", o->turns, "Question-answer rounds per record")->capture_default_str()->check(int_range(1, 100));
  cmd->add_option("--concurrency", o->concurrency, "Requests in flight at once")
      ->capture_default_str()
      ->check(int_range(1, kMaxThreads));
  cmd->add_option("--retries", o->chat.max_retries, "Retries of a request on timeouts, 429 and 5xx")
      ->capture_default_str()
      ->check(int_range(0, 100));
  cmd->add_option("--backoff-ms", o->chat.backoff_ms, "First retry wait (doubles; a longer Retry-After wins; at most 120 s)")
      ->capture_default_str()
      ->check(int_range(0, 120000));
  cmd->add_option("--timeout", o->chat.timeout_s, "Seconds a request may take")
      ->capture_default_str()
      ->check(real_range(0, 86400, true));
  cmd->add_option("--max-reply-bytes", o->chat.max_reply_bytes, "Largest endpoint reply accepted (bytes)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 34));
  cmd->add_option("--temperature", o->chat.temperature, "Sampling temperature")->capture_default_str()->check(real_range(0, 2));
  cmd->add_option("--max-reply-tokens", o->chat.max_tokens, "max_tokens of each request")
      ->capture_default_str()
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--seed", o->seed, "Seed of the task-type draw")->capture_default_str()->check(any_seed());
  cmd->add_flag("--no-progress", *no_progress, "No progress output");
  cmd->footer(
      "Example:\n"
      "  longalign selfinstruct --docs books/ --endpoint https://api.openai.com/v1/chat/completions \\\n"
      "    --model gpt-4o --output long.jsonl --per-doc 2 --concurrency 8");
  cmd->callback([&action, o, docs, out, key_env, types, tokenizer, prompts, no_progress] {
    action = [=] {
      o->docs = *docs;
      o->output = *out;
      o->tokenizer = *tokenizer;
      o->prompts = *prompts;
      o->task_types = split_commas(*types);
      o->progress = !*no_progress;
      check_paths(*o);
      if (const char* k = std::getenv(key_env->c_str())) o->chat.api_key = k;
      else log::warn("$" + *key_env + " is not set: requests carry no API key");
      data::SelfInstructStats st = data::run_selfinstruct(*o);
      std::cout << st.summary();
      log::info("records in " + o->output.string() + "; dropped jobs in " +
                data::selfinstruct_dropped_log(o->output).string());
      return 0;
    };
  });
}

}  // namespace longalign::cli
