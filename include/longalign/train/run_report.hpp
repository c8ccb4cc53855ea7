// `report.html` for a training run: one self-contained page (charts inline as SVG, no network) with
// loss, learning rate, gradient norm and tokens/s per step, the plan's length histogram and
// efficiency, the configuration, and the evaluations found beside the run (needle heatmaps,
// LongBench-Chat scores). Reads only the files the run and `eval` wrote.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace longalign::train {

// The page for RUN_DIR as text.
std::string run_report_html(const std::filesystem::path& run_dir);

// Writes it to `out` (default RUN_DIR/report.html) atomically; returns the path written.
std::filesystem::path write_run_report(const std::filesystem::path& run_dir, std::filesystem::path out = {});

// A line chart of y over x as an <svg> element (NaN points leave gaps), with nice axis ticks.
std::string svg_line_chart(const std::string& title, const std::vector<double>& x, const std::vector<double>& y,
                           const std::string& x_label);

// About `n` round tick values ("1, 2, 5 x 10^k" steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int n = 5);

}  // namespace longalign::train
