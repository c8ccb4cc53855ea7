// Metrics fan-out; the JSONL file is appended to so resumed runs keep one history.
#include "longalign/train/metrics.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"

namespace longalign::train {

MetricsSink::MetricsSink(const std::filesystem::path& run_dir, bool tensorboard) : tty_(::isatty(STDERR_FILENO) == 1) {
  std::filesystem::create_directories(run_dir);
  jsonl_.open(run_dir / "metrics.jsonl", std::ios::app);
  if (!jsonl_) throw RuntimeError("cannot write " + (run_dir / "metrics.jsonl").string());
  if (tensorboard) tb_.emplace(run_dir / "tensorboard");
}

void MetricsSink::record(const StepMetrics& m, bool show) {
  double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  nlohmann::json j = {{"step", m.step},       {"loss", m.loss},         {"lr", m.lr},
                      {"grad_norm", m.grad_norm}, {"tokens", m.tokens}, {"tokens_per_s", m.tokens_per_s},
                      {"elapsed_s", m.elapsed_s}, {"micro_steps", m.micro_steps}, {"skipped", m.skipped},
                      {"time", wall}};
  if (!std::isfinite(m.loss)) j["loss"] = nullptr;
  if (!std::isfinite(m.grad_norm)) j["grad_norm"] = nullptr;
  jsonl_ << j.dump() << "\n";
  jsonl_.flush();
  if (tb_ && !m.skipped) {
    tb_->scalar("train/loss", float(m.loss), m.step, wall);
    tb_->scalar("train/lr", float(m.lr), m.step, wall);
    tb_->scalar("train/grad_norm", float(m.grad_norm), m.step, wall);
    tb_->scalar("train/tokens_per_s", float(m.tokens_per_s), m.step, wall);
    tb_->flush();
  }
  if (!show) return;
  int eta = m.step > 0 ? int(m.elapsed_s / m.step * (m.total_steps - m.step)) : 0;
  char line[256];
  std::snprintf(line, sizeof line, "step %lld/%lld loss %.4f lr %.3g gnorm %.3f %.0f tok/s ETA %02d:%02d%s",
                (long long)m.step, (long long)m.total_steps, m.loss, m.lr, m.grad_norm, m.tokens_per_s, eta / 60,
                eta % 60, m.skipped ? " (skipped: non-finite)" : "");
  if (tty_) {
    std::fprintf(stderr, "\r%-100s", line);
    std::fflush(stderr);
  } else {
    log::info(line);
  }
}

void MetricsSink::close() {
  if (tty_) std::fputc('\n', stderr);
  jsonl_.close();
}

}  // namespace longalign::train
