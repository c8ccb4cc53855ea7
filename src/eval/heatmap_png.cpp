// RGB heatmap through libpng's simplified write API; written to a temp file and renamed.
#include "longalign/eval/heatmap_png.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "longalign/core/error.hpp"

namespace longalign::eval {

void write_heatmap_png(const std::filesystem::path& path, const std::vector<std::vector<double>>& scores) {
  if (scores.empty() || scores[0].empty()) throw RuntimeError("heatmap: no scores");
  const int rows = int(scores.size()), cols = int(scores[0].size());
  const int w = cols * kCellWidth, h = rows * kCellHeight;
  std::vector<uint8_t> rgb(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int r = y / kCellHeight, c = x / kCellWidth;
      const bool border = x % kCellWidth == 0 || y % kCellHeight == 0;
      const double s = std::clamp(scores[r][c], 0.0, 1.0);
      uint8_t* px = &rgb[(size_t(y) * w + x) * 3];
      if (std::isnan(scores[r][c]) && !border) {  // no score: black
        px[0] = px[1] = px[2] = 0;
        continue;
      }
      px[0] = border ? 255 : uint8_t(220 - 170 * s);
      px[1] = border ? 255 : uint8_t(60 + 130 * s);
      px[2] = border ? 255 : uint8_t(60 + 30 * s);
    }
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = PNG_FORMAT_RGB;
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  if (!png_image_write_to_file(&img, tmp.c_str(), 0, rgb.data(), w * 3, nullptr)) {
    std::filesystem::remove(tmp);
    throw RuntimeError("cannot write " + path.string() + ": " + img.message);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace longalign::eval
