// Reader thread -> worker threads -> in-order writer (the calling thread). The reader stops
// when `max_inflight` chunks or 64 MB of lines are unwritten (whichever comes first; a single
// larger line still goes alone), which bounds memory to a few copies of the lines in flight.
#include "longalign/data/pack/tokenize_pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "longalign/core/error.hpp"
#include "longalign/core/progress.hpp"
#include "longalign/core/rng.hpp"

namespace fs = std::filesystem;

namespace longalign::data {
namespace {

constexpr size_t kChunkLines = 256;
constexpr size_t kChunkBytes = 4 << 20;
constexpr uint64_t kMaxInflightBytes = 64 << 20;
constexpr size_t kMaxInvalidExamples = 5;

struct Chunk {
  uint64_t seq = 0;
  size_t file = 0;
  uint64_t first_line = 0;  // 1-based line number of lines[0]
  InputFormat format = InputFormat::detect;
  std::vector<std::pair<uint64_t, std::string>> lines;  // (line number, text)
  uint64_t bytes_end = 0;   // bytes read from all inputs once this chunk is consumed
  uint64_t text_bytes = 0;  // the lines' bytes, for the in-flight budget
};

// What happened to one line, in input order.
struct Outcome {
  enum class Kind { kept, skipped, invalid, too_long_error } kind;
  uint64_t line;
  TokenizedRecord rec;
  bool truncated = false;
  std::string reason, detail;
};

struct ChunkResult {
  size_t file = 0;
  uint64_t bytes_end = 0;
  uint64_t text_bytes = 0;
  std::vector<Outcome> outcomes;
};

Outcome process_line(const std::string& line, uint64_t line_no, InputFormat fmt, const TokenizeOptions& opts,
                     const Tokenizer* tok) {
  Outcome out{Outcome::Kind::kept, line_no, {}, false, {}, {}};
  ParsedRecord p = parse_record(line, fmt);
  auto skip = [&](Outcome::Kind k, std::string reason, std::string detail) {
    out.kind = k;
    out.reason = std::move(reason);
    out.detail = std::move(detail);
    return out;
  };
  if (p.kind == ParsedRecord::Kind::invalid) return skip(Outcome::Kind::invalid, p.reason, p.detail);
  if (p.kind == ParsedRecord::Kind::skipped) return skip(Outcome::Kind::skipped, p.reason, p.detail);
  if (p.kind == ParsedRecord::Kind::tokens) {
    out.rec = std::move(p.tokens);
    if (tok) {
      for (int32_t id : out.rec.ids)
        if (id >= tok->vocab_size())
          return skip(Outcome::Kind::skipped, "bad_token",
                      "token id " + std::to_string(id) + " is outside the tokenizer's vocabulary");
      for (const auto& r : out.rec.relabels)
        if (r.label >= tok->vocab_size())
          return skip(Outcome::Kind::skipped, "bad_labels",
                      "label " + std::to_string(r.label) + " is outside the tokenizer's vocabulary");
    }
  } else {
    if (!tok) throw UsageError("chat-format input needs a tokenizer: pass --tokenizer PATH");
    // Past max_length + 1 ids the rest is cut off or refused anyway: no need to encode it.
    out.rec = encode_segments(render_template(p.conv, opts.chat_template), *tok, size_t(opts.max_length));
    p.conv = Conversation{};  // the record's text is no longer needed: free it before the ids grow
  }
  auto count_targets = [&] { return std::count(out.rec.target.begin(), out.rec.target.end(), 1); };
  if (count_targets() == 0) return skip(Outcome::Kind::skipped, "no_target", "no target token");
  if (static_cast<int64_t>(out.rec.ids.size()) > opts.max_length) {
    // Chat records stop encoding at max_length + 1 ids, so their length is a lower bound.
    std::string len = (p.kind == ParsedRecord::Kind::tokens ? "" : "at least ") + std::to_string(out.rec.ids.size());
    if (opts.overflow == Overflow::error)
      return skip(Outcome::Kind::too_long_error, "too_long",
                  "sequence of " + len + " tokens exceeds --max-tokens " + std::to_string(opts.max_length) +
                      "; raise it or use --overflow truncate|drop");
    if (opts.overflow == Overflow::drop) return skip(Outcome::Kind::skipped, "too_long", len + " tokens");
    out.rec.ids.resize(opts.max_length);
    out.rec.target.resize(opts.max_length);
    auto& rl = out.rec.relabels;
    rl.erase(std::remove_if(rl.begin(), rl.end(), [&](const Relabel& r) { return int64_t(r.pos) >= opts.max_length; }),
             rl.end());
    out.truncated = true;
    if (count_targets() == 0)
      return skip(Outcome::Kind::skipped, "no_target_after_truncation", "all targets lie past --max-tokens");
  }
  return out;
}

class Pipeline {
 public:
  Pipeline(const TokenizeOptions& opts, const Tokenizer* tok) : opts_(opts), tok_(tok) {}

  void run(DatasetWriter& writer, PackStats& stats) {
    uint64_t total_bytes = 0;
    for (const auto& f : opts_.inputs) {
      std::error_code ec;
      if (!fs::is_regular_file(f, ec)) throw UsageError("input " + f.string() + " does not exist or is not a file");
      total_bytes += fs::file_size(f);
    }
    int n_workers = opts_.threads > 0 ? opts_.threads : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> threads;
    threads.emplace_back([this] { guarded([this] { read_all(); }); });
    for (int i = 0; i < n_workers; ++i) threads.emplace_back([this] { guarded([this] { work(); }); });
    struct Joiner {
      Pipeline* p;
      std::vector<std::thread>& t;
      ~Joiner() {
        p->stop();
        for (auto& th : t) th.join();
      }
    } joiner{this, threads};

    Progress progress("tokenize", opts_.progress ? total_bytes : 0);
    for (uint64_t next = 0;; ++next) {
      ChunkResult r;
      {
        std::unique_lock lk(mu_);
        cv_done_.wait(lk, [&] { return failure_ || done_.count(next) || (reader_done_ && next >= produced_); });
        if (failure_) std::rethrow_exception(failure_);
        if (!done_.count(next)) break;
        r = std::move(done_[next]);
        done_.erase(next);
        written_ = next + 1;
        inflight_bytes_ -= r.text_bytes;
      }
      cv_space_.notify_all();
      consume(r, writer, stats);
      if (opts_.progress) progress.update(stats.records, stats.tokens, r.bytes_end);
    }
    if (opts_.progress) progress.finish();
  }

 private:
  template <typename F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      std::lock_guard lk(mu_);
      if (!failure_) failure_ = std::current_exception();
      stop_ = true;
      cv_done_.notify_all();
      cv_space_.notify_all();
      cv_work_.notify_all();
    }
  }

  void stop() {
    std::lock_guard lk(mu_);
    stop_ = true;
    cv_space_.notify_all();
    cv_work_.notify_all();
  }

  std::string where(size_t file, uint64_t line) const {
    return opts_.inputs[file].string() + ":" + std::to_string(line);
  }

  InputFormat resolve_format(size_t file, const std::string& first_line, uint64_t line_no) {
    if (opts_.format != InputFormat::detect) return opts_.format;
    InputFormat f = detect_format(first_line);
    if (f != InputFormat::detect) return f;
    if (parse_record(first_line, InputFormat::longalign).kind == ParsedRecord::Kind::invalid)
      return InputFormat::longalign;  // malformed: let the worker report it with its line number
    throw UsageError("cannot detect the format of " + where(file, line_no) +
                     ": expected a \"messages\", \"conversations\", \"instruction\" or \"input_ids\" key; "
                     "pass --format");
  }

  void push(Chunk&& c) {
    std::unique_lock lk(mu_);
    // A chunk may be one huge line: bound the bytes in flight as well as the chunks.
    cv_space_.wait(lk, [&] {
      return stop_ || (produced_ - written_ < max_inflight_ &&
                       (inflight_bytes_ == 0 || inflight_bytes_ + c.text_bytes <= kMaxInflightBytes));
    });
    if (stop_) return;
    inflight_bytes_ += c.text_bytes;
    c.seq = produced_++;
    queue_.push_back(std::move(c));
    cv_work_.notify_one();
  }

  void read_all() {
    uint64_t bytes = 0;
    for (size_t fi = 0; fi < opts_.inputs.size() && !stopped(); ++fi) {
      const double ratio = fi < opts_.ratios.size() ? opts_.ratios[fi] : 1.0;
      Rng mix(opts_.mix_seed * 1000003 + fi);
      std::ifstream in(opts_.inputs[fi], std::ios::binary);
      if (!in) throw UsageError("cannot read input " + opts_.inputs[fi].string());
      Chunk c;
      c.file = fi;
      size_t chunk_bytes = 0;
      std::string line;
      uint64_t line_no = 0;
      while (std::getline(in, line)) {
        ++line_no;
        bytes += line.size() + 1;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        if (c.format == InputFormat::detect) c.format = resolve_format(fi, line, line_no);
        // Each record is used floor(ratio) times, plus once more with probability frac(ratio).
        int copies = static_cast<int>(ratio);
        if (mix.uniform() < ratio - copies) ++copies;
        chunk_bytes += line.size() * copies;
        for (int k = 0; k < copies; ++k) c.lines.emplace_back(line_no, k + 1 == copies ? std::move(line) : line);
        line.clear();
        if (c.lines.size() >= kChunkLines || chunk_bytes >= kChunkBytes) {
          c.bytes_end = bytes;
          c.text_bytes = chunk_bytes;
          InputFormat f = c.format;
          push(std::move(c));
          c = Chunk{};
          c.file = fi;
          c.format = f;
          chunk_bytes = 0;
          if (stopped()) return;
        }
      }
      if (in.bad()) throw RuntimeError("read error in " + opts_.inputs[fi].string());
      c.bytes_end = bytes;
      c.text_bytes = chunk_bytes;
      if (!c.lines.empty()) push(std::move(c));
    }
    std::lock_guard lk(mu_);
    reader_done_ = true;
    cv_work_.notify_all();
    cv_done_.notify_all();
  }

  bool stopped() {
    std::lock_guard lk(mu_);
    return stop_;
  }

  void work() {
    for (;;) {
      Chunk c;
      {
        std::unique_lock lk(mu_);
        cv_work_.wait(lk, [&] { return stop_ || !queue_.empty() || reader_done_; });
        if (stop_ || queue_.empty()) return;
        c = std::move(queue_.front());
        queue_.pop_front();
      }
      ChunkResult r{c.file, c.bytes_end, c.text_bytes, {}};
      r.outcomes.reserve(c.lines.size());
      for (auto& [no, text] : c.lines) r.outcomes.push_back(process_line(text, no, c.format, opts_, tok_));
      std::lock_guard lk(mu_);
      done_[c.seq] = std::move(r);
      cv_done_.notify_all();
    }
  }

  void consume(ChunkResult& r, DatasetWriter& writer, PackStats& stats) {
    for (auto& o : r.outcomes) {
      stats.records += 1;
      switch (o.kind) {
        case Outcome::Kind::invalid:
          if (!opts_.skip_invalid)
            throw RuntimeError(where(r.file, o.line) + ": " + o.detail + " (pass --skip-invalid to skip such lines)");
          stats.invalid += 1;
          stats.dropped[o.reason] += 1;
          if (stats.invalid_examples.size() < kMaxInvalidExamples)
            stats.invalid_examples.push_back(where(r.file, o.line) + ": " + o.detail);
          break;
        case Outcome::Kind::too_long_error:
          throw RuntimeError(where(r.file, o.line) + ": " + o.detail);
        case Outcome::Kind::skipped:
          stats.dropped[o.reason] += 1;
          if (stats.first_skipped.empty())
            stats.first_skipped = where(r.file, o.line) + ": " + (o.detail.empty() ? o.reason : o.detail);
          break;
        case Outcome::Kind::kept:
          writer.add(o.rec);
          stats.sequences += 1;
          stats.truncated += o.truncated;
          stats.tokens += o.rec.ids.size();
          stats.target_tokens += std::count(o.rec.target.begin(), o.rec.target.end(), 1);
          stats.add_length(o.rec.ids.size());
          break;
      }
    }
  }

  const TokenizeOptions& opts_;
  const Tokenizer* tok_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_, cv_space_;
  std::deque<Chunk> queue_;
  std::map<uint64_t, ChunkResult> done_;
  uint64_t produced_ = 0, written_ = 0, inflight_bytes_ = 0;
  const uint64_t max_inflight_ = 16;
  bool reader_done_ = false, stop_ = false;
  std::exception_ptr failure_;
};

}  // namespace

Overflow parse_overflow(const std::string& name) {
  if (name == "truncate") return Overflow::truncate;
  if (name == "drop") return Overflow::drop;
  if (name == "error") return Overflow::error;
  throw UsageError("unknown overflow policy '" + name + "'; use truncate, drop or error");
}

const char* to_string(Overflow o) {
  return o == Overflow::truncate ? "truncate" : o == Overflow::drop ? "drop" : "error";
}

void tokenize_to_dataset(const TokenizeOptions& opts, const Tokenizer* tok, DatasetWriter& writer,
                         PackStats& stats) {
  if (opts.max_length <= 0)
    throw UsageError("--max-tokens must be positive, got " + std::to_string(opts.max_length));
  Pipeline(opts, tok).run(writer, stats);
}

}  // namespace longalign::data
