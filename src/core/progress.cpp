// Progress rendering. A TTY gets a carriage-return redraw at most 10 times a second; anything
// else gets one log line every 10 s so CI logs stay short.
#include "longalign/core/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "longalign/core/log.hpp"

namespace longalign {
namespace {
std::string human(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, uint64_t total_bytes)
    : label_(std::move(label)), total_(total_bytes), tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (tty_ && !finished_) std::fputc('\n', stderr);
}

void Progress::update(uint64_t records, uint64_t tokens, uint64_t bytes_done) {
  records_ = records;
  tokens_ = tokens;
  bytes_ = bytes_done;
  auto now = std::chrono::steady_clock::now();
  auto since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.1 : 10.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rps = secs > 0 ? records_ / secs : 0, tps = secs > 0 ? tokens_ / secs : 0;
  double frac = total_ ? std::min(1.0, double(bytes_) / double(total_)) : 0.0;
  char eta[32] = "?";
  if (total_ && frac > 0) {
    int rem = static_cast<int>(secs / frac - secs);
    std::snprintf(eta, sizeof eta, "%02d:%02d", rem / 60, rem % 60);
  }
  char line[256];
  if (tty_) {
    char bar[31];
    int filled = static_cast<int>(frac * 30);
    for (int i = 0; i < 30; ++i) bar[i] = i < filled ? '#' : '.';
    bar[30] = 0;
    std::snprintf(line, sizeof line, "\r%s [%s] %3.0f%% %s rec/s %s tok/s ETA %s ", label_.c_str(), bar,
                  frac * 100, human(rps).c_str(), human(tps).c_str(), final ? "00:00" : eta);
    std::fputs(line, stderr);
    if (final) std::fputc('\n', stderr);
    std::fflush(stderr);
  } else {
    std::snprintf(line, sizeof line, "%s: %s records, %s tokens, %.0f%%, %s rec/s, %s tok/s%s%s", label_.c_str(),
                  human(records_).c_str(), human(tokens_).c_str(), frac * 100, human(rps).c_str(),
                  human(tps).c_str(), final ? "" : ", ETA ", final ? "" : eta);
    log::info(line);
  }
}

}  // namespace longalign
