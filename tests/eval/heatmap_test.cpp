// The needle heatmap read back as a person would see it: the PNG's size is the layout's for any
// grid from 1 x 1 to 40 x 40, the colour bar and cells hold the colours of their scores where the
// layout puts them, unscored cells are black with a legend, and the SVG carries the title, axis
// titles and tick labels as text, thinned so that 40 lengths never overlap.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#ifdef LONGALIGN_HAVE_CAIRO
#include <cairo.h>
#endif

#include "longalign/eval/heatmap.hpp"
#include "test_util.hpp"

using namespace longalign;

namespace {

eval::HeatmapSpec grid(size_t depths, size_t lengths, double lo, double hi) {
  eval::HeatmapSpec s;
  s.lo = lo, s.hi = hi, s.scale_label = "score", s.title = "tiny-model: mean 5.5";
  for (size_t l = 0; l < lengths; ++l) s.lengths.push_back(int64_t(2000 * (l + 1)));
  for (size_t d = 0; d < depths; ++d) s.depths.push_back(depths == 1 ? 0.5 : double(d) / double(depths - 1));
  s.scores.assign(depths, std::vector<double>(lengths, lo));
  for (size_t d = 0; d < depths; ++d)
    for (size_t l = 0; l < lengths; ++l) s.scores[d][l] = lo + (hi - lo) * double((d * lengths + l) % 7) / 6.0;
  return s;
}

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

#ifdef LONGALIGN_HAVE_CAIRO
struct Png {
  cairo_surface_t* s;
  explicit Png(const std::filesystem::path& p) : s(cairo_image_surface_create_from_png(p.c_str())) {}
  ~Png() { cairo_surface_destroy(s); }
  bool ok() const { return cairo_surface_status(s) == CAIRO_STATUS_SUCCESS; }
  int width() const { return cairo_image_surface_get_width(s); }
  int height() const { return cairo_image_surface_get_height(s); }
  Rgb at(double x, double y) const {
    cairo_surface_flush(s);
    const auto* row = cairo_image_surface_get_data(s) + size_t(y) * size_t(cairo_image_surface_get_stride(s));
    uint32_t px;
    std::memcpy(&px, row + 4 * size_t(x), 4);  // native-endian 0xAARRGGBB
    return {((px >> 16) & 255) / 255.0, ((px >> 8) & 255) / 255.0, (px & 255) / 255.0};
  }
};

// Within `tol` per channel (255ths).
void expect_color(Rgb got, Rgb want, double tol, const std::string& where) {
  EXPECT_NEAR(got.r * 255, want.r * 255, tol) << where;
  EXPECT_NEAR(got.g * 255, want.g * 255, tol) << where;
  EXPECT_NEAR(got.b * 255, want.b * 255, tol) << where;
}
#endif

}  // namespace

TEST(Heatmap, LengthLabels) {
  EXPECT_EQ(eval::length_label(512), "512");
  EXPECT_EQ(eval::length_label(1000), "1K");
  EXPECT_EQ(eval::length_label(1500), "1.5K");
  EXPECT_EQ(eval::length_label(1024), "1K");
  EXPECT_EQ(eval::length_label(16000), "16K");
  EXPECT_EQ(eval::length_label(16384), "16K");
  EXPECT_EQ(eval::length_label(128000), "128K");
}

TEST(Heatmap, ColourMapEndsAreThePapers) {
  const Rgb lo = eval::heatmap_color(0), mid = eval::heatmap_color(0.5), hi = eval::heatmap_color(1);
  EXPECT_EQ(css_color(lo), "#f0496e");
  EXPECT_EQ(css_color(mid), "#ebb839");
  EXPECT_EQ(css_color(hi), "#0cd79f");
}

TEST(Heatmap, SvgCarriesTheLabelsAsText) {
  fixture::TempDir tmp;
  auto s = grid(3, 4, 1, 10);
  s.scores[1][2] = std::nan("");
  eval::write_heatmap(s, tmp / "h.png", tmp / "h.svg");
  const std::string svg = read(tmp / "h.svg");
  for (const char* want : {"tiny-model: mean 5.5", "Context length (tokens)", "Needle depth (%)", ">2K<", ">8K<", ">0%<",
                           ">50%<", ">100%<", ">score<", ">1<", ">10<", "unscored: 1 of 12 cells"})
    EXPECT_NE(svg.find(want), std::string::npos) << want;
}

TEST(Heatmap, FortyLengthsAreThinnedNotOverlapped) {
  fixture::TempDir tmp;
  const auto s = grid(40, 40, 0, 1);
  eval::write_heatmap(s, tmp / "h.png", tmp / "h.svg");
  const std::string svg = read(tmp / "h.svg");
  // x labels sit on one baseline under the plot: collect their x positions.
  const eval::HeatmapLayout L;
  const std::string baseline = "y=\"" + std::to_string(int(L.plot_y + L.plot_h + 20)) + "\"";
  std::regex label("<text x=\"([0-9.]+)\" " + baseline + "[^>]*>([0-9.]+K)</text>");
  std::vector<double> xs;
  size_t widest = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), label); it != std::sregex_iterator(); ++it) {
    xs.push_back(std::stod((*it)[1]));
    widest = std::max(widest, (*it)[2].str().size());
  }
  ASSERT_GE(xs.size(), 4u);
  EXPECT_LT(xs.size(), 40u);  // thinned
  for (size_t i = 1; i < xs.size(); ++i) EXPECT_GE(xs[i] - xs[i - 1], 0.64 * 12 * double(widest)) << "labels overlap";
}

#ifdef LONGALIGN_HAVE_CAIRO
TEST(Heatmap, PngIsTheLayoutAtAnyGridSize) {
  for (auto [d, l] : {std::pair<size_t, size_t>{1, 1}, {2, 3}, {40, 40}}) {
    fixture::TempDir tmp;
    ASSERT_TRUE(eval::write_heatmap(grid(d, l, 0, 1), tmp / "h.png", tmp / "h.svg"));
    Png png(tmp / "h.png");
    ASSERT_TRUE(png.ok());
    const eval::HeatmapLayout L;
    EXPECT_EQ(png.width(), int(L.width)) << d << "x" << l;
    EXPECT_EQ(png.height(), int(L.height)) << d << "x" << l;
  }
}

TEST(Heatmap, ColourBarAndCellsWhereTheLayoutSays) {
  fixture::TempDir tmp;
  auto s = grid(2, 3, 1, 10);
  s.scores = {{1, 10, 5.5}, {std::nan(""), 7, 3}};
  s.title = "";
  ASSERT_TRUE(eval::write_heatmap(s, tmp / "h.png", tmp / "h.svg"));
  Png png(tmp / "h.png");
  ASSERT_TRUE(png.ok());
  const eval::HeatmapLayout L;
  // The bar: its top is the scale's high end, its bottom the low end (110 slices: within one).
  expect_color(png.at(L.bar_x + L.bar_w / 2, L.bar_y + 2), eval::heatmap_color(1), 6, "colour bar top");
  expect_color(png.at(L.bar_x + L.bar_w / 2, L.bar_y + L.bar_h - 3), eval::heatmap_color(0), 6, "colour bar bottom");
  // Each cell near its top-left corner (clear of borders and of the value written in its middle).
  for (size_t d = 0; d < 2; ++d)
    for (size_t l = 0; l < 3; ++l) {
      const double x = L.plot_x + double(l) * L.cell_w(s) + 8, y = L.plot_y + double(d) * L.cell_h(s) + 8;
      const double v = s.scores[d][l];
      expect_color(png.at(x, y), std::isnan(v) ? eval::unscored_color() : eval::heatmap_color((v - 1) / 9), 2,
                   "cell " + std::to_string(d) + "," + std::to_string(l));
    }
  expect_color(png.at(L.plot_x + 7, L.height - 38), eval::unscored_color(), 2, "the legend's unscored square");
  expect_color(png.at(5, 5), {1, 1, 1}, 0, "background");
}
#endif
