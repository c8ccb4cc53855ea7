// The needle heatmap as a PNG (lengths on x, depths on y, red = miss, green = hit), written with
// libpng; no Python at run time.
#pragma once
#include <filesystem>
#include <vector>

namespace longalign::eval {

constexpr int kCellWidth = 48, kCellHeight = 32;

// scores[row][col] in [0, 1] (NaN: no score, black); the image is cols*kCellWidth x
// rows*kCellHeight, row 0 at the top.
void write_heatmap_png(const std::filesystem::path& path, const std::vector<std::vector<double>>& scores);

}  // namespace longalign::eval
