// Progress for long work: a redrawn bar on a terminal, periodic plain lines in logs and CI.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace longalign {

class Progress {
 public:
  // total_bytes == 0 means unknown (no percentage or ETA).
  Progress(std::string label, uint64_t total_bytes);
  ~Progress();
  // Cumulative counts so far.
  void update(uint64_t records, uint64_t tokens, uint64_t bytes_done);
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  uint64_t total_ = 0, records_ = 0, tokens_ = 0, bytes_ = 0;
  bool tty_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace longalign
