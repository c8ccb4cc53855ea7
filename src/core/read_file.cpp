// Small-file reader shared by every loader of JSON/YAML side files.
#include "longalign/core/read_file.hpp"

#include <fstream>
#include <iterator>

namespace longalign {

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace longalign
