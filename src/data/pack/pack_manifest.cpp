// Writer and checker of a pack's checksums.json (see the header).
#include "longalign/data/pack/pack_manifest.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/crc32c.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/mmap_file.hpp"
#include "longalign/core/read_file.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace longalign::data {
namespace {

constexpr const char* kManifest = "checksums.json";

// The big files a cheap check only sizes.
bool is_bulk(const std::string& name) { return name == "tokens.bin" || name == "targets.bin"; }

std::string crc_hex(const fs::path& file) {
  MappedFile f(file);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", crc32c(f.data(), f.size()));
  return buf;
}

}  // namespace

Verify parse_verify(const std::string& name) {
  if (name == "cheap") return Verify::cheap;
  if (name == "full") return Verify::full;
  throw UsageError("unknown verification level '" + name + "'; use full or cheap");
}

const char* to_string(Verify v) { return v == Verify::full ? "full" : "cheap"; }

void write_pack_manifest(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != kManifest) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  json m = {{"format", "longalign-checksums"}, {"version", 1}, {"algorithm", "crc32c"}, {"files", json::object()}};
  for (const auto& f : files)
    m["files"][f.filename().string()] = {{"bytes", fs::file_size(f)}, {"crc32c", crc_hex(f)}};
  write_file_atomic(dir / kManifest, m.dump(2) + "\n");
}

void verify_pack_manifest(const fs::path& dir, Verify level) {
  auto corrupt = [&](const std::string& why) {
    return RuntimeError("pack " + dir.string() + " is corrupt: " + why + "; re-run `longalign pack` to rebuild it");
  };
  const fs::path mpath = dir / kManifest;
  auto text = read_file(mpath);
  if (!text)
    throw RuntimeError("pack " + dir.string() + " has no " + kManifest +
                       " (an interrupted or older pack); re-run `longalign pack` to rebuild it");
  check_json_depth(*text, mpath.string());
  json m = json::parse(*text, nullptr, false);
  if (!m.is_object() || m.value("format", "") != "longalign-checksums" || !m.contains("files") ||
      !m["files"].is_object())
    throw corrupt(std::string(kManifest) + " is not a checksum list");
  for (const char* required : {"header.json", "tokens.bin", "targets.bin", "index.bin", "plan.json"})
    if (!m["files"].contains(required)) throw corrupt(std::string(kManifest) + " does not list " + required);
  for (const auto& [name, entry] : m["files"].items()) {
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw corrupt(std::string(kManifest) + " names a file outside the pack: '" + truncate_for_message(name, 80) + "'");
    // The listed files are read (CRC) and mapped: each must be a regular file inside the pack,
    // also after resolving symlinks.
    const auto found = contained_file_if_present(dir, name, "pack " + dir.string() + "'s " + kManifest, kUnbounded);
    if (!found) throw corrupt(name + " is missing");
    const fs::path f = *found;
    uint64_t want_bytes = 0;
    std::string want_crc;
    try {
      want_bytes = entry.at("bytes").get<uint64_t>();
      want_crc = entry.at("crc32c").get<std::string>();
    } catch (const json::exception&) {
      throw corrupt(std::string(kManifest) + " has a malformed entry for " + name);
    }
    const uint64_t bytes = fs::file_size(f);
    if (bytes != want_bytes)
      throw corrupt(name + " has " + std::to_string(bytes) + " bytes, expected " + std::to_string(want_bytes) +
                    " (truncated or replaced)");
    if ((level == Verify::full || !is_bulk(name)) && crc_hex(f) != want_crc)
      throw corrupt(name + " fails its CRC-32C check (its bytes changed after packing)");
  }
}

std::string recorded_crc(const fs::path& dir, const std::string& file) {
  json m = json::parse(read_file(dir / kManifest).value_or(""), nullptr, false);
  if (!m.is_object() || !m.contains("files") || !m["files"].is_object() || !m["files"].contains(file)) return "";
  const json& e = m["files"][file];
  return e.is_object() && e.contains("crc32c") && e["crc32c"].is_string() ? e["crc32c"].get<std::string>() : "";
}

}  // namespace longalign::data
