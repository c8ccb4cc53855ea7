// Reading files that the program did not choose itself. A model directory, an index's
// weight_map, a pack folder or a resume folder names files; a downloaded or hand-edited one can
// name anything (`../../etc/passwd`, an absolute path, a FIFO that blocks forever, a symlink to
// /dev/zero that is read until memory runs out). Every such file goes through contained_file()
// before it is opened, and small files are read through read_regular_file(), which never blocks
// on open and never reads more than its bound.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace longalign {

// Bounds for files read whole into memory. tokenizer.json of the largest vocabularies is tens
// of MiB; configs, plans and state files are far smaller.
constexpr uint64_t kMaxSideFileBytes = uint64_t{1} << 30;   // tokenizer.json, plan.json, jsonl side files
constexpr uint64_t kMaxConfigFileBytes = uint64_t{64} << 20;  // config.json, *_config.json, indexes, state
constexpr uint64_t kUnbounded = UINT64_MAX;                    // mapped, never copied (shards, token files)

// The file's bytes, or nullopt when it cannot be opened, is not a regular file (a FIFO or a
// device is never opened for reading) or is larger than max_bytes.
std::optional<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes = kMaxSideFileBytes);

// The file `name` inside `dir`, checked before anything opens it: `name` is relative and has no
// `..`, the path resolves (through symlinks) to a place inside `dir`, it is a regular file and
// at most max_bytes long. `named_by` says who named it (e.g. "model.safetensors.index.json's
// weight_map entry for lm_head.weight") and goes into the RuntimeError thrown otherwise.
// Symlinks out of a Hugging Face cache snapshot (snapshots/<rev>/x -> ../../blobs/<hash>) stay
// allowed: the blobs folder beside the snapshots is the snapshot's own storage.
std::filesystem::path contained_file(const std::filesystem::path& dir, const std::string& name,
                                     const std::string& named_by, uint64_t max_bytes);

// As contained_file(), but nullopt when nothing by that name exists (optional side files such
// as generation_config.json). A dangling symlink counts as existing and is refused.
std::optional<std::filesystem::path> contained_file_if_present(const std::filesystem::path& dir,
                                                               const std::string& name,
                                                               const std::string& named_by, uint64_t max_bytes);

// The whole file, read without blocking on open and re-checked after opening (the file may have
// been swapped for a FIFO in between): a RuntimeError naming `what` and the path when it is not
// a regular file, is larger than max_bytes or cannot be read.
std::string read_regular_file(const std::filesystem::path& path, const std::string& what, uint64_t max_bytes);

// `s` cut to at most max_chars bytes with a note of how much was left out: untrusted values
// (a nested JSON value, a server's reply) go into messages only through this.
std::string truncate_for_message(const std::string& s, size_t max_chars = 200);

// Deeper than any config, tokenizer or record needs, shallow enough that the recursive walks of
// a parsed value (nlohmann's dump(), comparisons, copies) stay far from the stack's end.
constexpr int kMaxJsonDepth = 128;

// A RuntimeError naming `what` and the byte offset when `text` nests arrays and objects deeper
// than max_depth. A linear scan, run before parsing any JSON the program did not write.
void check_json_depth(std::string_view text, const std::string& what, int max_depth = kMaxJsonDepth);

}  // namespace longalign
