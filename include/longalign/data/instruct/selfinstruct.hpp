// `longalign selfinstruct`: the LongAlign recipe's first step. Long documents become long
// instruction data through any OpenAI-compatible chat model (Self-Instruct): for each document
// and each of --per-doc jobs, a task type is drawn (general QA, summary, reasoning, information
// extraction), one request asks the model for a question of that type about the document, and
// one asks it to answer that question from the document (--turns > 1 adds follow-ups). Each
// finished job is one LongAlign `messages` record (the document and the question in the first
// user turn, the answer as the assistant turn) with its provenance, ready for `pack`.
//
// Resumable: records are appended durably one by one, jobs that were dropped (an empty or
// refused reply, a duplicate question) are logged beside the output, and a re-run skips every
// job found in either, so it never sends a request twice for a finished job nor duplicates a
// record. A job whose request fails after the retries is not recorded; the run then stops
// taking new jobs and fails, and a re-run picks the job up again.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "longalign/core/chat_client.hpp"

namespace longalign::data {

// The task types of the recipe, in their default order.
const std::vector<std::string>& selfinstruct_task_types();

struct SelfInstructOptions {
  std::filesystem::path docs;       // JSONL of {"id", "text"} or a folder of .txt/.md files
  std::filesystem::path output;     // JSONL of records, appended
  ChatOptions chat;
  std::filesystem::path tokenizer;  // optional: --max-doc-tokens counts its tokens, else words
  int64_t max_doc_tokens = 60000;   // longer documents are cut to this
  int64_t min_doc_words = 200;      // shorter documents are skipped
  std::vector<std::string> task_types;  // empty: all of selfinstruct_task_types()
  std::filesystem::path prompts;        // optional JSON object overriding prompt templates
  int per_doc = 1;
  int turns = 1;
  int concurrency = 4;
  uint64_t seed = 42;
  bool progress = true;
};

struct SelfInstructStats {
  uint64_t documents = 0, skipped_short = 0, cut = 0;
  uint64_t jobs = 0, already_done = 0, written = 0, failed = 0;
  std::map<std::string, uint64_t> dropped;  // reason -> jobs
  uint64_t requests = 0, retries = 0, prompt_tokens = 0, completion_tokens = 0;
  std::string first_error;
  double seconds = 0;
  std::string summary() const;
};

// Where dropped jobs are logged: OUTPUT with ".dropped" appended.
std::filesystem::path selfinstruct_dropped_log(const std::filesystem::path& output);

// Runs every job not already finished. Throws UsageError for bad options or inputs (naming the
// file and line), RuntimeError when jobs failed after their retries (after saving the rest).
SelfInstructStats run_selfinstruct(const SelfInstructOptions& opts);

}  // namespace longalign::data
