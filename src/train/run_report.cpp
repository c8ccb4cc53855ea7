// The run report; see the header. Everything is read defensively: a missing or malformed file
// becomes a line saying so in the page, never a failed run.
#include "longalign/train/run_report.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/svg.hpp"

namespace longalign::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const Rgb kInk{0.1, 0.1, 0.1}, kGrid{0.88, 0.88, 0.88}, kAxis{0.45, 0.45, 0.45}, kLine{0.16, 0.40, 0.75};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A file's text; empty when absent, not a regular file, or larger than a side file may be (the
// project's bounded, non-blocking reader: a report never hangs on a FIFO in a run directory).
std::string slurp(const fs::path& p) { return read_file(p).value_or(std::string()); }

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// A tick's text: as short as the step between ticks allows.
std::string tick_text(double v, double step) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e5 || a < 1e-3) return fmt("%.1e", v);
  const int decimals = std::max(0, int(std::ceil(-std::log10(step) - 1e-9)));
  return fmt(("%." + std::to_string(std::min(decimals, 6)) + "f").c_str(), v);
}

struct Metrics {
  std::vector<double> step, loss, lr, grad_norm, tokens_per_s, tokens, elapsed;
  size_t skipped = 0, bad_lines = 0;
};

Metrics read_metrics(const fs::path& p) {
  Metrics m;
  std::istringstream f(slurp(p));
  auto num = [](const json& j, const char* k) {
    return j.contains(k) && j[k].is_number() ? j[k].get<double>() : kNaN;
  };
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      ++m.bad_lines;  // a line cut by a kill: the trainer drops it on resume
      continue;
    }
    m.step.push_back(num(j, "step"));
    m.loss.push_back(num(j, "loss"));
    m.lr.push_back(num(j, "lr"));
    m.grad_norm.push_back(num(j, "grad_norm"));
    m.tokens_per_s.push_back(num(j, "tokens_per_s"));
    m.tokens.push_back(num(j, "tokens"));
    m.elapsed.push_back(num(j, "elapsed_s"));
    m.skipped += j.value("skipped", false) ? 1 : 0;
  }
  return m;
}

std::string esc(const std::string& s) { return xml_escape(s); }

std::string row(const std::string& k, const std::string& v) { return "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>\n"; }

double finite_min(const std::vector<double>& v) {
  double m = kNaN;
  for (double x : v)
    if (std::isfinite(x) && !(m <= x)) m = x;
  return m;
}

double finite_mean(const std::vector<double>& v) {
  double s = 0;
  size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / double(n) : kNaN;
}

std::string training_section(const fs::path& dir) {
  const fs::path mp = dir / "metrics.jsonl";
  if (!fs::exists(mp)) return "<p>No metrics.jsonl in this run yet.</p>\n";
  const Metrics m = read_metrics(mp);
  if (m.step.empty()) return "<p>metrics.jsonl holds no step yet.</p>\n";
  std::string h = "<table>\n";
  h += row("steps logged", std::to_string(m.step.size()) + " (last: step " + fmt("%.0f", m.step.back()) + ")");
  h += row("loss", fmt("%.4f", m.loss.front()) + " (first) -> " + fmt("%.4f", m.loss.back()) + " (last), lowest " +
                       fmt("%.4f", finite_min(m.loss)));
  h += row("throughput", fmt("%.0f", finite_mean(m.tokens_per_s)) + " tokens/s on average");
  if (std::isfinite(m.elapsed.back())) h += row("time", fmt("%.1f", m.elapsed.back() / 60) + " min of training");
  if (m.skipped) h += row("skipped steps", std::to_string(m.skipped) + " (non-finite loss or gradient)");
  if (m.bad_lines) h += row("unreadable lines", std::to_string(m.bad_lines) + " in metrics.jsonl");
  h += "</table>\n<div class=\"charts\">\n";
  h += svg_line_chart("Loss", m.step, m.loss, "step");
  h += svg_line_chart("Learning rate", m.step, m.lr, "step");
  h += svg_line_chart("Gradient norm (before clipping)", m.step, m.grad_norm, "step");
  h += svg_line_chart("Throughput (tokens/s)", m.step, m.tokens_per_s, "step");
  return h + "</div>\n";
}

std::string histogram_svg(const json& hist) {
  const double W = 460, H = 260, x0 = 56, y0 = 30, pw = W - x0 - 16, ph = H - y0 - 56;
  SvgCanvas c(W, H);
  c.text(W / 2, 18, "Sequence lengths (tokens)", 14, TextAnchor::middle, true);
  double top = 0;
  for (const auto& b : hist) top = std::max(top, b.value("count", 0.0));
  const auto ticks = nice_ticks(0, std::max(top, 1.0), 4);
  const double ymax = ticks.back();
  for (double t : ticks) {
    const double y = y0 + ph * (1 - t / ymax);
    c.line(x0, y, x0 + pw, y, kGrid);
    c.text(x0 - 6, y + 4, tick_text(t, ticks.size() > 1 ? ticks[1] - ticks[0] : 1), 11, TextAnchor::end);
  }
  const double bw = pw / double(std::max<size_t>(hist.size(), 1));
  for (size_t i = 0; i < hist.size(); ++i) {
    const double n = hist[i].value("count", 0.0), h = ph * n / ymax;
    c.rect(x0 + double(i) * bw + 2, y0 + ph - h, bw - 4, h, kLine);
    const std::string lo = std::to_string(hist[i].value("min", int64_t(0)));
    if (hist.size() <= 12 || i % 2 == 0) c.text(x0 + double(i) * bw + bw / 2, y0 + ph + 16, lo, 10, TextAnchor::middle);
  }
  c.line(x0, y0 + ph, x0 + pw, y0 + ph, kAxis);
  c.text(x0 + pw / 2, H - 12, "bucket's lower bound (tokens)", 12, TextAnchor::middle);
  return c.str();
}

// The run's pack folder: RUN_DIR/data.pack, or the data.pack_dir its train_config.yaml names.
fs::path pack_dir_of(const fs::path& dir, const std::string& config) {
  if (fs::exists(dir / "data.pack" / "stats.json")) return dir / "data.pack";
  std::istringstream in(config);
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("pack_dir: ");
    if (at == std::string::npos || line.find_first_not_of(' ') != at) continue;
    std::string v = line.substr(at + 10);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {  // yaml_quoted: \\ and \" escaped
      std::string u;
      for (size_t i = 1; i + 1 < v.size(); ++i) u += (v[i] == '\\' && i + 2 < v.size()) ? v[++i] : v[i];
      v = u;
    }
    return v;
  }
  return dir / "data.pack";
}

std::string plan_section(const fs::path& dir, const std::string& config) {
  const fs::path pack = pack_dir_of(dir, config);
  const json s = json::parse(slurp(pack / "stats.json"), nullptr, false);
  if (!s.is_object()) return "<p>No readable stats.json in " + esc(pack.string()) + ".</p>\n";
  std::string h = "<table>\n";
  auto n = [&](const json& j, const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : kNaN; };
  h += row("sequences", fmt("%.0f", n(s, "sequences")) + " of " + fmt("%.0f", n(s, "records")) + " records");
  h += row("tokens", fmt("%.0f", n(s, "tokens")) + " (" + fmt("%.0f", n(s, "target_tokens")) + " trained on)");
  h += row("steps per epoch", fmt("%.0f", n(s, "steps")));
  h += row("token fill (efficiency)", fmt("%.3f", n(s, "efficiency")) + ", padding " + fmt("%.0f", n(s, "padding_tokens")) + " tokens");
  if (s.contains("plan_quality") && s["plan_quality"].is_object()) {
    const json& q = s["plan_quality"];
    h += row("rank imbalance (busiest rank / mean)",
             fmt("%.3f", n(q, "rank_imbalance_mean")) + " on average, " + fmt("%.3f", n(q, "rank_imbalance_max")) +
                 " at worst, for " + fmt("%.0f", n(q, "balance_world_size")) + " rank(s)");
    if (q.contains("useful_work_efficiency") && q["useful_work_efficiency"].is_number())
      h += row("useful-work efficiency", fmt("%.3f", n(q, "useful_work_efficiency")) +
                                             " (GPU time on real tokens, not waiting for the busiest rank or padding)");
    if (q.contains("sequences_per_step") && q["sequences_per_step"].is_object())
      h += row("sequences per step", fmt("%.0f", n(q["sequences_per_step"], "min")) + " to " +
                                         fmt("%.0f", n(q["sequences_per_step"], "max")) + ", mean " +
                                         fmt("%.1f", n(q["sequences_per_step"], "mean")));
    h += row("loss weight CV", fmt("%.3g", n(q, "weight_cv")));
  }
  h += "</table>\n";
  if (s.contains("length_histogram") && s["length_histogram"].is_array() && !s["length_histogram"].empty())
    h += "<div class=\"charts\">" + histogram_svg(s["length_histogram"]) + "</div>\n";
  return h;
}

std::string eval_section(const fs::path& dir) {
  std::vector<fs::path> places{dir};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && e.path().filename() != "checkpoints" && e.path().filename() != "data.pack")
      places.push_back(e.path());
  std::sort(places.begin() + 1, places.end());
  std::string h;
  for (const auto& p : places) {
    const std::string svg = slurp(p / "heatmap.svg");
    if (svg.rfind("<svg", 0) == 0)
      h += "<h3>Needle in a haystack: " + esc(fs::relative(p, dir, ec).string()) + "</h3>\n<div class=\"heatmap\">" + svg + "</div>\n";
    const json r = json::parse(slurp(p / "report.json"), nullptr, false);
    if (r.is_object() && r.contains("mean_score") && r["mean_score"].is_number()) {
      h += "<h3>LongBench-Chat: " + esc(fs::relative(p, dir, ec).string()) + "</h3>\n<table>\n";
      h += row("score (x10, as the paper reports)", fmt("%.1f", r.value("score_x10", 0.0)));
      h += row("items scored", std::to_string(r.value("scored", 0)) + " of " + std::to_string(r.value("items", 0)));
      if (r.contains("protocol") && r["protocol"].is_string()) h += row("protocol", r["protocol"].get<std::string>());
      if (r.contains("judge_model") && r["judge_model"].is_string()) h += row("judge", r["judge_model"].get<std::string>());
      h += "</table>\n";
    }
  }
  return h.empty() ? "<p>No evaluation beside this run. <code>longalign eval needle -m CHECKPOINT -o RUN_DIR/needle</code> "
                     "and <code>longalign eval longbench-chat ... -o RUN_DIR/longbench</code> put theirs here.</p>\n"
                   : h;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int n) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi <= lo) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad, hi += pad;
  }
  const double raw = (hi - lo) / std::max(1, n), mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::floor(lo / step) * step; v <= hi + step * 0.5 && t.size() < 20; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  if (t.back() < hi) t.push_back(t.back() + step);
  return t;
}

std::string svg_line_chart(const std::string& title, const std::vector<double>& x, const std::vector<double>& y,
                           const std::string& x_label) {
  const double W = 460, H = 260, x0 = 64, y0 = 30, pw = W - x0 - 16, ph = H - y0 - 52;
  SvgCanvas c(W, H);
  c.text(W / 2, 18, title, 14, TextAnchor::middle, true);
  double xl = kNaN, xh = kNaN, yl = kNaN, yh = kNaN;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    xl = std::isnan(xl) ? x[i] : std::min(xl, x[i]), xh = std::isnan(xh) ? x[i] : std::max(xh, x[i]);
    yl = std::isnan(yl) ? y[i] : std::min(yl, y[i]), yh = std::isnan(yh) ? y[i] : std::max(yh, y[i]);
  }
  if (std::isnan(xl)) {
    c.text(W / 2, H / 2, "no finite values", 12, TextAnchor::middle);
    return c.str();
  }
  const auto yt = nice_ticks(yl, yh), xt = nice_ticks(xl, xh);
  const double ylo = yt.front(), yhi = yt.back(), xlo = xt.front(), xhi = xt.back();
  auto px = [&](double v) { return x0 + pw * (v - xlo) / (xhi - xlo); };
  auto py = [&](double v) { return y0 + ph * (1 - (v - ylo) / (yhi - ylo)); };
  for (double t : yt) {
    c.line(x0, py(t), x0 + pw, py(t), kGrid);
    c.text(x0 - 6, py(t) + 4, tick_text(t, yt.size() > 1 ? yt[1] - yt[0] : 1), 11, TextAnchor::end);
  }
  for (double t : xt) {
    c.line(px(t), y0 + ph, px(t), y0 + ph + 4, kAxis);
    c.text(px(t), y0 + ph + 17, tick_text(t, xt.size() > 1 ? xt[1] - xt[0] : 1), 11, TextAnchor::middle);
  }
  c.frame(x0, y0, pw, ph, kAxis);
  c.text(x0 + pw / 2, H - 10, x_label, 12, TextAnchor::middle);
  std::vector<std::pair<double, double>> run;  // a non-finite value ends a segment
  for (size_t i = 0; i <= x.size() && i <= y.size(); ++i) {
    const bool ok = i < x.size() && i < y.size() && std::isfinite(x[i]) && std::isfinite(y[i]);
    if (ok) run.emplace_back(px(x[i]), py(y[i]));
    if (!ok) {
      if (run.size() == 1) c.rect(run[0].first - 1.5, run[0].second - 1.5, 3, 3, kLine);
      else c.polyline(run, kLine);
      run.clear();
    }
  }
  return c.str();
}

std::string run_report_html(const fs::path& run_dir) {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const std::string name = fs::absolute(run_dir).lexically_normal().filename().string();
  std::string config = slurp(run_dir / "train_config.yaml");
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>longalign run report: " +
                  esc(name) + "</title>\n<style>\n"
                  "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#1a1a1a;padding:0 16px}\n"
                  "h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h3{font-size:16px}\n"
                  "table{border-collapse:collapse;margin:8px 0}th,td{text-align:left;padding:3px 12px 3px 0;vertical-align:top}th{font-weight:600;color:#444}\n"
                  ".charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #eee;background:#fff}\n"
                  ".heatmap svg{max-width:100%;height:auto}pre{background:#f6f6f6;padding:12px;overflow-x:auto;font-size:13px}\n"
                  "</style></head><body>\n";
  h += "<h1>Run report: " + esc(name) + "</h1>\n<p>" + esc(fs::absolute(run_dir).lexically_normal().string()) +
       ", written " + when + " by longalign.</p>\n";
  h += "<h2>Training</h2>\n" + training_section(run_dir);
  h += "<h2>Data plan</h2>\n" + plan_section(run_dir, config);
  h += "<h2>Evaluation</h2>\n" + eval_section(run_dir);
  h += "<h2>Configuration</h2>\n" + (config.empty() ? std::string("<p>No train_config.yaml in this run.</p>\n")
                                                    : "<pre>" + esc(config) + "</pre>\n");
  return h + "</body></html>\n";
}

fs::path write_run_report(const fs::path& run_dir, fs::path out) {
  if (out.empty()) out = run_dir / "report.html";
  write_file_atomic(out, run_report_html(run_dir));
  return out;
}

}  // namespace longalign::train
