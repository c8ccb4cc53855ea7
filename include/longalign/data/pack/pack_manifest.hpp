// checksums.json: the size and CRC-32C of every file of a pack, written last (just before the
// pack is published) and checked when the pack is opened, so that a pack is verified, not
// trusted. A cheap check compares every size and the CRC of every file but the two big token
// files; a full check also reads tokens.bin and targets.bin (CRC-32C runs at GB/s).
#pragma once
#include <filesystem>
#include <string>

namespace longalign::data {

enum class Verify { cheap, full };
Verify parse_verify(const std::string& name);  // UsageError naming the choices
const char* to_string(Verify v);

// Records every regular file directly in `dir` (but checksums.json itself).
void write_pack_manifest(const std::filesystem::path& dir);

// RuntimeError naming the pack and the file on a missing manifest, a missing file, a size or a
// CRC that differs.
void verify_pack_manifest(const std::filesystem::path& dir, Verify level);

// The CRC that the manifest records for `file` ("" when it records none): fingerprints of a
// pack's plan and data that checkpoints keep, to tell whether a resume continues the same run.
std::string recorded_crc(const std::filesystem::path& dir, const std::string& file);

}  // namespace longalign::data
