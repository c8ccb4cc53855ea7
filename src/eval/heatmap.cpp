// The needle heatmap; see the header. One drawing routine over two canvases with the same calls:
// SvgCanvas (text) and a cairo image surface (PNG). Label positions come from an estimate of text
// width rather than from either renderer, so both files place the same labels.
#include "longalign/eval/heatmap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#ifdef LONGALIGN_HAVE_CAIRO
#include <cairo.h>
#endif

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"

namespace longalign::eval {
namespace {

// DejaVu Sans digits and capitals are about 0.64 em wide: an upper bound for the labels drawn.
double text_width(const std::string& s, double size) { return 0.64 * size * double(s.size()); }

std::string fmt(const char* f, double v) {
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Colour-bar ticks: every integer on a scale of up to 10 steps (the judge's 1-10), else quarters.
std::vector<double> bar_ticks(double lo, double hi) {
  std::vector<double> t;
  if (hi - lo >= 4 && hi - lo <= 10 && lo == std::floor(lo))
    for (double v = lo; v <= hi + 1e-9; v += 1) t.push_back(v);
  else
    for (int i = 0; i <= 4; ++i) t.push_back(lo + (hi - lo) * i / 4.0);
  return t;
}

template <class Canvas>
void draw(Canvas& c, const HeatmapSpec& s, const HeatmapLayout& L) {
  const Rgb white{1, 1, 1}, ink{0.1, 0.1, 0.1}, grey{0.45, 0.45, 0.45};
  c.rect(0, 0, L.width, L.height, white);
  c.text(L.plot_x + L.plot_w / 2, 36, s.title, 18, TextAnchor::middle, true);
  const size_t nx = s.lengths.size(), ny = s.depths.size();
  const double cw = L.cell_w(s), ch = L.cell_h(s);
  size_t unscored = 0;
  for (size_t d = 0; d < ny; ++d)
    for (size_t l = 0; l < nx; ++l) {
      const double v = s.scores[d][l], x = L.plot_x + double(l) * cw, y = L.plot_y + double(d) * ch;
      const bool none = std::isnan(v);
      unscored += none;
      c.rect(x, y, cw, ch, none ? unscored_color() : heatmap_color((v - s.lo) / (s.hi - s.lo)));
      if (!none && cw >= 36 && ch >= 20)  // room for the value itself
        c.text(x + cw / 2, y + ch / 2 + 5, fmt(s.hi - s.lo > 1.5 ? "%.0f" : "%.2g", v), 13, TextAnchor::middle, false,
               false, ink);
    }
  if (cw >= 8 && ch >= 8) {  // cell borders where cells are large enough to separate
    for (size_t l = 1; l < nx; ++l) c.line(L.plot_x + double(l) * cw, L.plot_y, L.plot_x + double(l) * cw, L.plot_y + L.plot_h, white);
    for (size_t d = 1; d < ny; ++d) c.line(L.plot_x, L.plot_y + double(d) * ch, L.plot_x + L.plot_w, L.plot_y + double(d) * ch, white);
  }
  c.frame(L.plot_x, L.plot_y, L.plot_w, L.plot_h, grey);

  // x: context lengths under the cell centres, thinned so that labels never overlap.
  double widest = 0;
  for (int64_t n : s.lengths) widest = std::max(widest, text_width(length_label(n), 12));
  const size_t xstep = size_t(std::max(1.0, std::ceil((widest + 8) / cw)));
  for (size_t l = 0; l < nx; l += xstep) {
    const double x = L.plot_x + (double(l) + 0.5) * cw;
    c.line(x, L.plot_y + L.plot_h, x, L.plot_y + L.plot_h + 5, grey);
    c.text(x, L.plot_y + L.plot_h + 20, length_label(s.lengths[l]), 12, TextAnchor::middle);
  }
  c.text(L.plot_x + L.plot_w / 2, L.plot_y + L.plot_h + 48, "Context length (tokens)", 14, TextAnchor::middle, true);
  // y: depths beside the cell centres, thinned likewise (labels are ~14 px tall).
  const size_t ystep = size_t(std::max(1.0, std::ceil(16 / ch)));
  for (size_t d = 0; d < ny; d += ystep) {
    const double y = L.plot_y + (double(d) + 0.5) * ch;
    c.line(L.plot_x - 5, y, L.plot_x, y, grey);
    c.text(L.plot_x - 9, y + 4, fmt("%.0f%%", s.depths[d] * 100), 12, TextAnchor::end);
  }
  c.text(30, L.plot_y + L.plot_h / 2, "Needle depth (%)", 14, TextAnchor::middle, true, true);

  // The colour bar: the scale from lo (bottom) to hi (top), ticked.
  const int slices = 110;
  for (int i = 0; i < slices; ++i) {
    const double t = (i + 0.5) / slices, h = L.bar_h / slices;
    c.rect(L.bar_x, L.bar_y + L.bar_h - (i + 1) * h, L.bar_w, h + 0.5, heatmap_color(t));
  }
  c.frame(L.bar_x, L.bar_y, L.bar_w, L.bar_h, grey);
  for (double v : bar_ticks(s.lo, s.hi)) {
    const double y = L.bar_y + L.bar_h * (1 - (v - s.lo) / (s.hi - s.lo));
    c.line(L.bar_x + L.bar_w, y, L.bar_x + L.bar_w + 5, y, grey);
    c.text(L.bar_x + L.bar_w + 9, y + 4, fmt(s.hi - s.lo > 1.5 ? "%.0f" : "%.2f", v), 12);
  }
  c.text(L.bar_x + L.bar_w + 52, L.bar_y + L.bar_h / 2, s.scale_label, 13, TextAnchor::middle, false, true);

  if (unscored > 0) {  // the legend names what black means
    const double y = L.height - 34;
    c.rect(L.plot_x, y - 11, 14, 14, unscored_color());
    c.text(L.plot_x + 22, y, "unscored: " + std::to_string(unscored) + " of " + std::to_string(nx * ny) +
                                 " cells (no score; left out of the mean)", 13);
  }
}

#ifdef LONGALIGN_HAVE_CAIRO
class CairoCanvas {
 public:
  explicit CairoCanvas(cairo_t* cr) : cr_(cr) {}
  void rect(double x, double y, double w, double h, Rgb f) {
    cairo_set_source_rgb(cr_, f.r, f.g, f.b);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_fill(cr_);
  }
  void frame(double x, double y, double w, double h, Rgb s, double width = 1) {
    cairo_set_source_rgb(cr_, s.r, s.g, s.b);
    cairo_set_line_width(cr_, width);
    cairo_rectangle(cr_, x + 0.5, y + 0.5, w - 1, h - 1);
    cairo_stroke(cr_);
  }
  void line(double x1, double y1, double x2, double y2, Rgb s, double width = 1) {
    cairo_set_source_rgb(cr_, s.r, s.g, s.b);
    cairo_set_line_width(cr_, width);
    cairo_move_to(cr_, x1, y1);
    cairo_line_to(cr_, x2, y2);
    cairo_stroke(cr_);
  }
  void text(double x, double y, const std::string& s, double size, TextAnchor anchor = TextAnchor::start,
            bool bold = false, bool rotated = false, Rgb color = {}) {
    cairo_select_font_face(cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    const double shift = anchor == TextAnchor::start ? 0 : anchor == TextAnchor::middle ? e.x_advance / 2 : e.x_advance;
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    if (rotated) cairo_rotate(cr_, -M_PI / 2);
    cairo_set_source_rgb(cr_, color.r, color.g, color.b);
    cairo_move_to(cr_, -shift, 0);
    cairo_show_text(cr_, s.c_str());
    cairo_restore(cr_);
  }

 private:
  cairo_t* cr_;
};

cairo_status_t append_bytes(void* out, const unsigned char* data, unsigned int n) {
  static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(data), n);
  return CAIRO_STATUS_SUCCESS;
}

std::string render_png(const HeatmapSpec& s, const HeatmapLayout& L) {
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, int(L.width), int(L.height));
  cairo_t* cr = cairo_create(surface);
  CairoCanvas canvas(cr);
  draw(canvas, s, L);
  cairo_destroy(cr);
  std::string png;
  const cairo_status_t st = cairo_surface_write_to_png_stream(surface, append_bytes, &png);
  cairo_surface_destroy(surface);
  if (st != CAIRO_STATUS_SUCCESS) throw RuntimeError(std::string("heatmap: cairo: ") + cairo_status_to_string(st));
  return png;
}
#endif

}  // namespace

Rgb heatmap_color(double t) {
  // The reference's colour list: #F0496E (low), #EBB839, #0CD79F (high), linear in between.
  static const Rgb stops[3] = {{0xF0 / 255.0, 0x49 / 255.0, 0x6E / 255.0},
                               {0xEB / 255.0, 0xB8 / 255.0, 0x39 / 255.0},
                               {0x0C / 255.0, 0xD7 / 255.0, 0x9F / 255.0}};
  t = std::clamp(std::isnan(t) ? 0.0 : t, 0.0, 1.0) * 2;
  const int i = std::min(1, int(t));
  const double f = t - i;
  const Rgb a = stops[i], b = stops[i + 1];
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

Rgb unscored_color() { return {0, 0, 0}; }

std::string length_label(int64_t tokens) {
  if (tokens < 1000) return std::to_string(tokens);
  const double k = double(tokens) / 1000;
  std::string s = k >= 10 ? fmt("%.0f", k) : fmt("%.1f", k);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);  // 1.024 -> "1K"
  return s + "K";
}

bool write_heatmap(const HeatmapSpec& s, const std::filesystem::path& png_path, const std::filesystem::path& svg_path) {
  if (s.lengths.empty() || s.depths.empty() || s.scores.size() != s.depths.size())
    throw RuntimeError("heatmap: scores must have one row per depth, lengths and depths non-empty");
  for (const auto& row : s.scores)
    if (row.size() != s.lengths.size()) throw RuntimeError("heatmap: a row of scores does not match the lengths");
  if (!(s.hi > s.lo)) throw RuntimeError("heatmap: the colour scale needs hi > lo");
  const HeatmapLayout L;
  SvgCanvas svg(L.width, L.height);
  draw(svg, s, L);
  write_file_atomic(svg_path, svg.str());
#ifdef LONGALIGN_HAVE_CAIRO
  write_file_atomic(png_path, render_png(s, L));
  return true;
#else
  (void)png_path;
  return false;
#endif
}

}  // namespace longalign::eval
