// The needle-in-a-haystack heatmap as the paper draws it: context length on x, needle depth on y,
// cells coloured by score on a fixed scale with a colour bar, unscored cells marked in a legend,
// a title with the model and the mean. One drawing, written as PNG (cairo) and SVG (real text).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "longalign/core/svg.hpp"

namespace longalign::eval {

struct HeatmapSpec {
  std::vector<std::vector<double>> scores;  // [depth][length]; NaN: unscored
  std::vector<int64_t> lengths;             // context lengths in tokens (x)
  std::vector<double> depths;               // needle depths 0..1 (y)
  double lo = 0, hi = 1;                    // the colour scale's ends (judge: 1 and 10)
  std::string scale_label;                  // the colour bar's title
  std::string title;
};

// Where everything goes, in pixels (the SVG's user units): fixed, whatever the grid's size, so a
// 1 x 1 and a 40 x 40 grid are both readable.
struct HeatmapLayout {
  double width = 960, height = 640;
  double plot_x = 96, plot_y = 64, plot_w = 700, plot_h = 440;  // the cells
  double bar_x = 830, bar_y = 64, bar_w = 24, bar_h = 440;      // the colour bar
  double cell_w(const HeatmapSpec& s) const { return plot_w / double(s.lengths.size()); }
  double cell_h(const HeatmapSpec& s) const { return plot_h / double(s.depths.size()); }
};

// The paper's colour map (red, yellow, green) at t in [0, 1].
Rgb heatmap_color(double t);
Rgb unscored_color();

// "16K", "1.5K", "512": a context length as the x axis labels it.
std::string length_label(int64_t tokens);

// Draws the heatmap into `svg_path` and, where the build has cairo, `png_path` (each written to a
// temporary file and renamed). Returns false when the PNG could not be made (no cairo).
bool write_heatmap(const HeatmapSpec& spec, const std::filesystem::path& png_path, const std::filesystem::path& svg_path);

}  // namespace longalign::eval
