// SVG text for the project's pictures; see the header.
#include "longalign/core/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace longalign {
namespace {
std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  std::string s = b;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}
}  // namespace

std::string css_color(Rgb c) {
  auto byte = [](double v) { return int(std::lround(std::clamp(v, 0.0, 1.0) * 255)); };
  char b[8];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return b;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(ch) >= 0x20 || ch == '\t' || ch == '\n') out += ch;
    }
  }
  return out;
}

SvgCanvas::SvgCanvas(double width, double height) : w_(width), h_(height) {}

void SvgCanvas::rect(double x, double y, double w, double h, Rgb fill) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + css_color(fill) + "\"/>\n";
}

void SvgCanvas::frame(double x, double y, double w, double h, Rgb stroke, double width) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"none\" stroke=\"" + css_color(stroke) + "\" stroke-width=\"" + num(width) + "\"/>\n";
}

void SvgCanvas::line(double x1, double y1, double x2, double y2, Rgb stroke, double width) {
  body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
           "\" stroke=\"" + css_color(stroke) + "\" stroke-width=\"" + num(width) + "\"/>\n";
}

void SvgCanvas::polyline(const std::vector<std::pair<double, double>>& pts, Rgb stroke, double width) {
  if (pts.empty()) return;
  std::string p;
  for (const auto& [x, y] : pts) p += num(x) + "," + num(y) + " ";
  p.pop_back();
  body_ += "<polyline points=\"" + p + "\" fill=\"none\" stroke=\"" + css_color(stroke) + "\" stroke-width=\"" +
           num(width) + "\" stroke-linejoin=\"round\"/>\n";
}

void SvgCanvas::text(double x, double y, const std::string& s, double size, TextAnchor anchor, bool bold, bool rotated,
                     Rgb color) {
  const char* a = anchor == TextAnchor::start ? "start" : anchor == TextAnchor::middle ? "middle" : "end";
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) + "\" text-anchor=\"" + a + "\"" +
           (bold ? " font-weight=\"bold\"" : "") + (color.r + color.g + color.b > 0 ? " fill=\"" + css_color(color) + "\"" : "") +
           (rotated ? " transform=\"rotate(-90 " + num(x) + " " + num(y) + ")\"" : "") + ">" + xml_escape(s) + "</text>\n";
}

std::string SvgCanvas::str() const {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(w_) + "\" height=\"" + num(h_) + "\" viewBox=\"0 0 " +
         num(w_) + " " + num(h_) + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" + body_ + "</svg>\n";
}

}  // namespace longalign
