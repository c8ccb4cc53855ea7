// Self-Instruct over long documents: documents -> jobs -> (question, answer) requests -> records,
// with durable appends and a resumable job log (see the header).
#include "longalign/data/instruct/selfinstruct.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/progress.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/text.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/data/tokenize/utf8.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::data {
namespace {

constexpr const char* kAskOnly = " Reply with the question alone, without an answer or any preface.";

// The prompts: one per task type (asks for the first question), `follow_up` (asks for the next
// question of a multi-turn conversation) and `answer` (asks for the answer). Placeholders:
// {document}, {question}, {history}, {task}.
std::map<std::string, std::string> default_prompts() {
  const std::string read = "{document}\n\nRead the document above. ";
  return {
      {"general_qa", read + "Write one question about it that a careful reader can answer only from the document, "
                            "about its main content rather than a minor detail." + kAskOnly},
      {"summary", read + "Write one request asking for a summary of the whole document or of one clearly identified "
                         "part of it." + kAskOnly},
      {"reasoning", read + "Write one question whose answer needs reasoning over several parts of the document: a "
                           "comparison, a cause and its effect, or a conclusion the document supports but does not "
                           "state." + kAskOnly},
      {"extraction", read + "Write one question that asks to find and extract specific information from the "
                            "document, such as names, numbers, dates or a list of items." + kAskOnly},
      {"follow_up", "{document}\n\nA user and an assistant are discussing the document above:\n\n{history}\n\nWrite "
                    "the user's next question: a follow-up that {task}." + std::string(kAskOnly)},
      {"answer", "{document}\n\nAnswer the following question about the document above. Be accurate and complete, "
                 "and use only what the document says.\n\nQuestion: {question}"},
  };
}

// What a follow-up question of each task type should do, for {task}.
const std::map<std::string, std::string>& follow_up_tasks() {
  static const std::map<std::string, std::string> m = {
      {"general_qa", "asks about another part of the document's content"},
      {"summary", "asks for a summary of another part of the document, or from another angle"},
      {"reasoning", "needs reasoning over several parts of the document"},
      {"extraction", "asks to extract more specific information from the document"}};
  return m;
}

std::map<std::string, std::string> load_prompts(const fs::path& file) {
  auto prompts = default_prompts();
  if (file.empty()) return prompts;
  auto text = read_file(file);
  if (!text) throw UsageError("--prompts " + file.string() + " does not exist");
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) throw UsageError(file.string() + ": expected a JSON object of prompt templates by name");
  for (const auto& item : j.items()) {
    const std::string key = item.key();  // a plain variable: lambdas may not capture structured bindings
    const json& value = item.value();
    if (!prompts.count(key)) {
      std::string names;
      for (const auto& [k, _] : prompts) names += (names.empty() ? "" : ", ") + k;
      throw UsageError(file.string() + ": unknown prompt '" + key + "'; the names are " + names);
    }
    if (!value.is_string()) throw UsageError(file.string() + ": prompt '" + key + "' must be a string");
    const std::string s = value.get<std::string>();
    auto need = [&](const char* placeholder) {
      if (s.find(placeholder) == std::string::npos)
        throw UsageError(file.string() + ": prompt '" + key + "' lacks the placeholder " + placeholder);
    };
    need("{document}");
    if (key == "answer") need("{question}");
    if (key == "follow_up") need("{history}");
    prompts[key] = s;
  }
  return prompts;
}

// A reply that declines the task instead of doing it.
bool is_refusal(const std::string& text) {
  std::string head = text.substr(0, 60);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  for (size_t p = head.find("\xE2\x80\x99"); p != std::string::npos; p = head.find("\xE2\x80\x99"))
    head.replace(p, 3, "'");  // a typographic apostrophe
  for (const char* p : {"i'm sorry", "i am sorry", "sorry, but", "i cannot", "i can't", "i can not", "i apologize",
                        "as an ai", "i'm unable", "i am unable", "i won't", "i will not"})
    if (head.rfind(p, 0) == 0) return true;
  return false;
}

struct Document {
  std::string id, text;
};

std::vector<Document> read_documents(const fs::path& docs) {
  std::vector<Document> out;
  std::set<std::string> ids;
  auto add = [&](Document d, const std::string& where) {
    if (size_t bad = find_invalid_utf8(d.text); bad != std::string::npos)
      throw UsageError(where + ": the text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    if (!ids.insert(d.id).second) throw UsageError(where + ": document id '" + d.id + "' appears twice; ids must be unique");
    out.push_back(std::move(d));
  };
  std::error_code ec;
  if (fs::is_directory(docs, ec)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(docs))
      if (e.is_regular_file() && (e.path().extension() == ".txt" || e.path().extension() == ".md")) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw UsageError("--docs " + docs.string() + " holds no .txt or .md file");
    for (const auto& f : files) {
      auto text = read_file(f);
      if (!text) throw UsageError("cannot read " + f.string());
      add({f.filename().string(), std::move(*text)}, f.string());
    }
    return out;
  }
  std::ifstream in(docs);
  if (!in || !fs::is_regular_file(docs, ec))
    throw UsageError("--docs " + docs.string() + " is neither a JSONL file nor a folder of .txt/.md files");
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = docs.string() + ":" + std::to_string(n);
    check_json_depth(line, where);  // document ids are echoed into the output
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      throw UsageError(where + ": expected {\"id\": ..., \"text\": \"...\"}");
    std::string id = !j.contains("id") ? "line " + std::to_string(n)
                     : j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    add({std::move(id), j["text"].get<std::string>()}, where);
  }
  return out;
}

uint64_t count_words(const std::string& s) {
  uint64_t n = 0;
  bool in_word = false;
  for (unsigned char c : s) {
    bool space = std::isspace(c);
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// The text up to the end of its `limit`-th word (whitespace-separated), or all of it.
std::string first_words(const std::string& s, uint64_t limit, bool& cut) {
  uint64_t n = 0;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool space = std::isspace(static_cast<unsigned char>(s[i]));
    if (!space && !in_word && ++n > limit) {
      cut = true;
      return trim(s.substr(0, i));
    }
    in_word = !space;
  }
  return s;
}

struct Job {
  size_t doc;
  std::string id, task;
};

// The task type of a job: a seeded hash of its id, so a re-run draws the same one.
std::string draw_task(const std::vector<std::string>& types, uint64_t seed, const std::string& job_id) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : job_id) h = (h ^ c) * 1099511628211ull;
  return types[h % types.size()];
}

// Jobs finished by earlier runs, and the first questions they asked.
struct Finished {
  std::set<std::string> jobs, questions;
};

// Reads a record file or dropped-job log of earlier runs. Every complete line must be one of
// ours, checked before anything is changed; a last line without its newline is what a killed
// run leaves (cut away), unless it parses, when the file is not ours to cut (an error).
void read_job_log(const fs::path& path, Finished& f, const char* what) {
  if (!fs::exists(path)) return;
  auto text = read_file(path);
  if (!text) throw UsageError("cannot read " + path.string());
  size_t n = 0, pos = 0;
  for (size_t nl; (nl = text->find('\n', pos)) != std::string::npos; pos = nl + 1) {
    ++n;
    const std::string line = text->substr(pos, nl - pos);
    if (line.empty()) continue;
    check_json_depth(line, path.string() + ":" + std::to_string(n));
    json j = json::parse(line, nullptr, false);
    const json* src = j.is_object() && j.contains("source") ? &j["source"] : &j;
    if (!src->is_object() || !src->contains("job") || !(*src)["job"].is_string())
      throw UsageError(path.string() + ":" + std::to_string(n) + ": not a " + what +
                       " of selfinstruct (no job id); write to a new --output or remove the line");
    f.jobs.insert((*src)["job"].get<std::string>());
    if (src->contains("question") && (*src)["question"].is_string()) f.questions.insert((*src)["question"].get<std::string>());
  }
  if (pos < text->size()) {
    if (!json::parse(text->substr(pos), nullptr, false).is_discarded())
      throw UsageError(path.string() + ":" + std::to_string(n + 1) +
                       ": the last line has no newline, so this file was not written by selfinstruct; write to a new "
                       "--output");
    const uint64_t cut = drop_partial_last_line(path);
    log::warn(path.string() + ": removed a half-written last line (" + std::to_string(cut) + " bytes) of a killed run");
  }
}

// Holds OUTPUT.lock for the run, so two runs never write the same output.
struct OutputLock {
  int fd = -1;
  explicit OutputLock(const fs::path& output) {
    const fs::path p = output.string() + ".lock";
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw RuntimeError("cannot create " + p.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      throw UsageError("another selfinstruct run is writing " + output.string() + " (it holds " + p.string() + ")");
    }
  }
  ~OutputLock() { ::close(fd); }
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;
};

}  // namespace

const std::vector<std::string>& selfinstruct_task_types() {
  static const std::vector<std::string> t = {"general_qa", "summary", "reasoning", "extraction"};
  return t;
}

fs::path selfinstruct_dropped_log(const fs::path& output) { return fs::path(output.string() + ".dropped"); }

std::string SelfInstructStats::summary() const {
  std::string s = fmt::format(
      "documents {} (skipped as too short {}, cut to length {})\n"
      "jobs {}: already done {}, written {}, dropped {}, failed {}\n"
      "requests {}, retries {}, tokens {} prompt + {} completion, {:.1f} s\n",
      documents, skipped_short, cut, jobs, already_done, written,
      [&] {
        uint64_t n = 0;
        for (const auto& [_, c] : dropped) n += c;
        return n;
      }(),
      failed, requests, retries, prompt_tokens, completion_tokens, seconds);
  for (const auto& [reason, c] : dropped) s += fmt::format("  dropped {:<20} {}\n", reason, c);
  return s;
}

SelfInstructStats run_selfinstruct(const SelfInstructOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.chat.url.empty()) throw UsageError("selfinstruct needs --endpoint URL (an OpenAI-compatible chat-completions URL)");
  if (o.chat.model.empty()) throw UsageError("selfinstruct needs --model NAME");
  if (o.output.empty()) throw UsageError("selfinstruct needs --output FILE");
  if (o.per_doc < 1 || o.per_doc > 1000) throw UsageError("--per-doc must lie in [1, 1000], got " + std::to_string(o.per_doc));
  if (o.turns < 1 || o.turns > 32) throw UsageError("--turns must lie in [1, 32], got " + std::to_string(o.turns));
  if (o.concurrency < 1 || o.concurrency > 256)
    throw UsageError("--concurrency must lie in [1, 256], got " + std::to_string(o.concurrency));
  if (o.max_doc_tokens < 1) throw UsageError("--max-doc-tokens must be positive, got " + std::to_string(o.max_doc_tokens));
  if (o.min_doc_words < 0) throw UsageError("--min-doc-words must not be negative, got " + std::to_string(o.min_doc_words));
  std::vector<std::string> types = o.task_types.empty() ? selfinstruct_task_types() : o.task_types;
  for (const auto& t : types)
    if (!follow_up_tasks().count(t))
      throw UsageError("unknown task type '" + t + "'; use general_qa, summary, reasoning or extraction");
  std::error_code ec;
  if (fs::is_directory(o.output, ec)) throw UsageError("--output " + o.output.string() + " is a directory; give a file");
  if (fs::exists(o.docs, ec) && fs::exists(o.output, ec) && fs::equivalent(o.docs, o.output, ec))
    throw UsageError("--output " + o.output.string() + " is the --docs input; give another file");
  check_writable_parent(o.output);
  const auto prompts = load_prompts(o.prompts);
  std::unique_ptr<Tokenizer> tok;
  if (!o.tokenizer.empty()) tok = load_tokenizer(o.tokenizer);

  SelfInstructStats st;
  std::vector<Document> docs = read_documents(o.docs);
  std::vector<Document> kept;
  for (auto& d : docs) {
    st.documents += 1;
    if (int64_t(count_words(d.text)) < o.min_doc_words) {
      st.skipped_short += 1;
      continue;
    }
    bool cut = false;
    if (tok) {
      auto ids = tok->encode(d.text);
      if (int64_t(ids.size()) > o.max_doc_tokens) {
        ids.resize(size_t(o.max_doc_tokens));
        d.text = tok->decode(ids);
        cut = true;
      }
    } else {
      d.text = first_words(d.text, uint64_t(o.max_doc_tokens), cut);
    }
    st.cut += cut;
    kept.push_back(std::move(d));
  }

  OutputLock lock_output(o.output);
  Finished done;
  const fs::path dropped_log = selfinstruct_dropped_log(o.output);
  read_job_log(o.output, done, "record");
  read_job_log(dropped_log, done, "dropped-job log");
  std::vector<Job> jobs;
  for (size_t d = 0; d < kept.size(); ++d)
    for (int k = 0; k < o.per_doc; ++k) {
      std::string id = kept[d].id + "#" + std::to_string(k);
      st.jobs += 1;
      if (done.jobs.count(id)) {
        st.already_done += 1;
        continue;
      }
      std::string task = draw_task(types, o.seed, id);
      jobs.push_back({d, std::move(id), std::move(task)});
    }
  log::info(fmt::format("selfinstruct: {} document(s), {} job(s), {} already done, {} to run with {} at {}",
                        kept.size(), st.jobs, st.already_done, jobs.size(), o.chat.model, o.chat.url));

  std::mutex mu;  // guards st, done.questions, the output files and the progress line
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::optional<Progress> progress;
  if (o.progress) progress.emplace("selfinstruct", jobs.size());
  uint64_t jobs_done = 0;
  std::exception_ptr write_error;

  // What became of a request: a reply; an error of this job alone (the endpoint rejected the
  // request, e.g. too long, or withheld the reply), which drops the job; or an error of the
  // endpoint (it is down, refuses the key, keeps failing), which stops the run.
  enum class Asked { reply, drop, fail };
  auto ask = [&](const std::vector<ChatMessage>& messages, std::string& reply) {
    ChatReply r = chat(o.chat, messages);
    std::lock_guard<std::mutex> lock(mu);
    st.requests += 1 + r.retries;
    st.retries += r.retries;
    st.prompt_tokens += r.prompt_tokens;
    st.completion_tokens += r.completion_tokens;
    if (r.ok()) {
      reply = trim(strip_zero_width(r.content));
      return Asked::reply;
    }
    reply = r.error;
    if (r.filtered || r.status == 400 || r.status == 413 || r.status == 422) return Asked::drop;
    if (st.first_error.empty()) st.first_error = r.error;
    return Asked::fail;
  };
  auto finish = [&](const Job& job, const json& line, bool written, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    if (write_error) return;  // after a failed write nothing more is appended
    if (written) {
      append_line_durable(o.output, line.dump());
      st.written += 1;
    } else {
      append_line_durable(dropped_log, line.dump());
      st.dropped[reason] += 1;
      log::info("job " + job.id + " dropped: " + reason);
    }
    jobs_done += 1;
    if (progress) progress->update(st.written, st.completion_tokens, jobs_done);
  };
  auto run_job = [&](const Job& job) {
    const Document& doc = kept[job.doc];
    json messages = json::array();
    std::vector<ChatMessage> conversation;  // what the answering request sees
    std::string history, first_question;
    auto drop = [&](const std::string& reason, const std::string& question, const std::string& detail = "") {
      json entry = {{"job", job.id}, {"reason", reason}, {"question", question}};
      if (!detail.empty()) entry["detail"] = detail;
      finish(job, entry, false, reason);
    };
    // A request that came back without a reply: drops the job or reports a failure.
    auto unanswered = [&](Asked a, const std::string& error) {
      if (a == Asked::drop) drop("rejected_or_filtered", first_question, error);
      return a == Asked::drop;
    };
    for (int turn = 0; turn < o.turns; ++turn) {
      std::string question, answer;
      const std::string ask_prompt =
          turn == 0 ? fill_placeholders(prompts.at(job.task), {{"{document}", doc.text}})
                    : fill_placeholders(prompts.at("follow_up"), {{"{document}", doc.text},
                                                                  {"{history}", history},
                                                                  {"{task}", follow_up_tasks().at(job.task)}});
      if (Asked a = ask({{"user", ask_prompt}}, question); a != Asked::reply) return unanswered(a, question);
      const char* bad = question.empty() ? "empty_question" : is_refusal(question) ? "refused_question" : nullptr;
      if (!bad && turn == 0) {
        std::lock_guard<std::mutex> lock(mu);
        if (!done.questions.insert(question).second) bad = "duplicate_question";
      }
      if (bad) {
        drop(bad, turn == 0 ? question : first_question);
        return true;
      }
      if (turn == 0) first_question = question;
      conversation.push_back(
          {"user", turn == 0 ? fill_placeholders(prompts.at("answer"), {{"{document}", doc.text}, {"{question}", question}})
                             : question});
      if (Asked a = ask(conversation, answer); a != Asked::reply) return unanswered(a, answer);
      bad = answer.empty() ? "empty_answer" : is_refusal(answer) ? "refused_answer" : nullptr;
      if (bad) {
        drop(bad, first_question);
        return true;
      }
      conversation.push_back({"assistant", answer});
      messages.push_back({{"role", "user"}, {"content", turn == 0 ? doc.text + "\n\n" + question : question}});
      messages.push_back({{"role", "assistant"}, {"content", answer}});
      history += "User: " + question + "\n\nAssistant: " + answer + "\n\n";
    }
    finish(job,
           {{"messages", messages},
            {"source", {{"doc_id", doc.id}, {"job", job.id}, {"task", job.task}, {"model", o.chat.model},
                        {"question", first_question}}}},
           true, "");
    return true;
  };

  auto worker = [&] {
    while (!stop) {
      const size_t i = next++;
      if (i >= jobs.size()) return;
      try {
        if (!run_job(jobs[i])) {
          std::lock_guard<std::mutex> lock(mu);
          st.failed += 1;
          stop = true;  // the endpoint is failing: finish what is in flight, start nothing new
        }
      } catch (...) {  // a failed write: stop everything and report it
        std::lock_guard<std::mutex> lock(mu);
        if (!write_error) write_error = std::current_exception();
        stop = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 0; t < std::min<size_t>(size_t(o.concurrency), jobs.size()); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (progress) progress->finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (write_error) std::rethrow_exception(write_error);
  if (st.failed > 0) {
    const uint64_t left = jobs.size() - jobs_done;
    throw RuntimeError(fmt::format("{} job(s) failed and {} were not started: {}. {} record(s) are saved in {}; "
                                   "re-run the same command to resume.\n{}",
                                   st.failed, left - st.failed, st.first_error, st.written, o.output.string(),
                                   st.summary()));
  }
  return st;
}

}  // namespace longalign::data
