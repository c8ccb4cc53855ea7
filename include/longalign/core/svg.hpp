// A minimal SVG writer for the project's pictures (needle heatmap, run report charts): shapes and
// real <text> elements, so labels stay searchable and selectable, and the file needs no library.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace longalign {

struct Rgb {
  double r = 0, g = 0, b = 0;  // 0..1
};
std::string css_color(Rgb c);          // "#rrggbb"
std::string xml_escape(const std::string& s);

enum class TextAnchor { start, middle, end };

class SvgCanvas {
 public:
  SvgCanvas(double width, double height);
  void rect(double x, double y, double w, double h, Rgb fill);
  void frame(double x, double y, double w, double h, Rgb stroke, double width = 1);  // outline only
  void line(double x1, double y1, double x2, double y2, Rgb stroke, double width = 1);
  void polyline(const std::vector<std::pair<double, double>>& pts, Rgb stroke, double width = 1.5);
  // `rotated`: turned 90 degrees counter-clockwise about (x, y) (a vertical axis title).
  void text(double x, double y, const std::string& s, double size, TextAnchor anchor = TextAnchor::start,
            bool bold = false, bool rotated = false, Rgb color = {});
  std::string str() const;  // the whole document

 private:
  double w_, h_;
  std::string body_;
};

}  // namespace longalign
