// Whole-file reads for small text files (headers, configs, plans).
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace longalign {

// The file's bytes, or nullopt when it cannot be opened.
std::optional<std::string> read_file(const std::filesystem::path& path);

}  // namespace longalign
