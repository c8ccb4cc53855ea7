// Crash-safe output: everything is written beside its final path, fsynced, then renamed into
// place, so a reader never sees a half-written file or directory and a failure leaves nothing.
#pragma once
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace longalign {

// Buffered binary writer whose every failure (ENOSPC, EIO, EACCES) throws RuntimeError naming
// the file. close() flushes and fsyncs.
class FileWriter {
 public:
  explicit FileWriter(const std::filesystem::path& path);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void write(const void* data, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void close();
  uint64_t bytes_written() const { return bytes_; }

 private:
  [[noreturn]] void fail(const char* what) const;
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
  uint64_t bytes_ = 0;
};

// Writes `content` to `path` via a temp file in the same directory and rename() (through a
// symlink, to the file it points at). A device or FIFO (/dev/null, a pipe) is written in place.
// RuntimeError with the errno text on any failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// A directory populated under a temporary name and published with commit(). If the object is
// destroyed before commit (an exception, a failed write) the temporary directory is removed.
// An existing target is refused unless `overwrite`, in which case it is replaced only at commit.
class StagedDir {
 public:
  // `tmp_path` (optional) names the staging directory, for writers in several processes.
  StagedDir(std::filesystem::path final_path, bool overwrite, std::filesystem::path tmp_path = {});
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  const std::filesystem::path& path() const { return tmp_; }  // write files here
  const std::filesystem::path& final_path() const { return final_; }
  void commit();

 private:
  std::filesystem::path final_, tmp_;
  bool overwrite_, committed_ = false;
};

// Appends `line` and a newline to `path` (created if missing) in one write(2), then fsyncs: a
// record-per-line log that a killed process leaves with at most one partial last line.
// RuntimeError naming the file on any failure (a full disk included).
void append_line_durable(const std::filesystem::path& path, std::string_view line);

// Cuts a file back to just after its last newline (a line a killed writer left half-written);
// returns the number of bytes removed. A missing file is left alone.
uint64_t drop_partial_last_line(const std::filesystem::path& path);

// Fails early, before any work, when `dir` (or the nearest existing parent) is not writable.
void check_writable_parent(const std::filesystem::path& target);

}  // namespace longalign
