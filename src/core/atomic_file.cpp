// Temp-then-rename writers. fsync on files and on the parent directory makes the rename durable.
#include "longalign/core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "longalign/core/error.hpp"

namespace fs = std::filesystem;

namespace longalign {
namespace {

std::string unique_suffix() {
  static std::random_device rd;
  return ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd() & 0xFFFFFF);
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

FileWriter::FileWriter(const fs::path& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "wb");
  if (!f_) fail("cannot create");
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
}

FileWriter::~FileWriter() {
  if (f_) std::fclose(f_);
}

void FileWriter::fail(const char* what) const {
  throw RuntimeError(std::string(what) + " " + path_.string() + ": " + std::strerror(errno) +
                     " (check free disk space and permissions)");
}

void FileWriter::write(const void* data, size_t n) {
  if (n == 0) return;
  if (std::fwrite(data, 1, n, f_) != n) fail("write failed for");
  bytes_ += n;
}

void FileWriter::close() {
  if (!f_) return;
  std::FILE* f = f_;
  f_ = nullptr;
  bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  int saved = errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    errno = saved ? saved : errno;
    fail("write failed for");
  }
}

void append_line_durable(const fs::path& path, std::string_view line) {
  std::string buf(line);
  buf += '\n';
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw RuntimeError("cannot open " + path.string() + " for appending: " + std::strerror(errno));
  const off_t start = ::lseek(fd, 0, SEEK_END);
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      if (start >= 0 && done > 0) (void)!::ftruncate(fd, start);  // best effort: leave no fragment behind
      ::close(fd);
      throw RuntimeError("cannot append to " + path.string() + ": " + std::strerror(e));
    }
    done += size_t(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int e = errno;
  if (::close(fd) != 0 || !synced)
    throw RuntimeError("cannot sync " + path.string() + ": " + std::strerror(synced ? errno : e));
}

uint64_t drop_partial_last_line(const fs::path& path) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec || size == 0) return 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw RuntimeError("cannot read " + path.string() + ": " + std::strerror(errno));
  // Scan backwards in blocks for the last newline.
  uint64_t keep = 0;
  char block[4096];
  for (uint64_t end = size; end > 0 && keep == 0;) {
    const uint64_t start = end > sizeof block ? end - sizeof block : 0;
    ssize_t n = ::pread(fd, block, end - start, off_t(start));
    if (n != ssize_t(end - start)) {
      ::close(fd);
      throw RuntimeError("cannot read " + path.string() + ": " + std::strerror(errno));
    }
    for (ssize_t i = n - 1; i >= 0; --i)
      if (block[i] == '\n') {
        keep = start + uint64_t(i) + 1;
        break;
      }
    end = start;
  }
  ::close(fd);
  if (keep == size) return 0;
  fs::resize_file(path, keep, ec);
  if (ec) throw RuntimeError("cannot truncate " + path.string() + ": " + ec.message());
  return size - keep;
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  fs::path tmp = path;
  tmp += unique_suffix();
  try {
    FileWriter w(tmp);
    w.write(content);
    w.close();
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  fsync_dir(path.parent_path());
}

StagedDir::StagedDir(fs::path final_path, bool overwrite, fs::path tmp_path)
    : final_(std::move(final_path)), overwrite_(overwrite) {
  if (fs::exists(final_) && !overwrite_)
    throw UsageError("output " + final_.string() + " already exists; pass --overwrite to replace it");
  check_writable_parent(final_);
  fs::path parent = final_.parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  if (tmp_path.empty()) {
    tmp_ = final_;
    tmp_ += unique_suffix();
  } else {
    tmp_ = std::move(tmp_path);
  }
  std::error_code ec;
  fs::create_directory(tmp_, ec);
  if (ec) throw RuntimeError("cannot create directory " + tmp_.string() + ": " + ec.message());
}

StagedDir::~StagedDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void StagedDir::commit() {
  fsync_dir(tmp_);
  std::error_code ec;
  if (fs::exists(final_)) {
    if (!overwrite_) throw UsageError("output " + final_.string() + " appeared while writing; not replacing it");
    // Move the old output aside first so that a crash between the two renames loses nothing.
    fs::path old = final_;
    old += unique_suffix() + ".old";
    fs::rename(final_, old);
    fs::rename(tmp_, final_);
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp_, final_, ec);
    if (ec) throw RuntimeError("cannot rename " + tmp_.string() + " to " + final_.string() + ": " + ec.message());
  }
  committed_ = true;
  fsync_dir(final_.parent_path());
}

void check_writable_parent(const fs::path& target) {
  fs::path p = fs::absolute(target).parent_path();
  while (!p.empty() && !fs::exists(p)) p = p.parent_path();
  if (p.empty()) p = "/";
  if (!fs::is_directory(p))
    throw UsageError("cannot write " + target.string() + ": " + p.string() + " is not a directory");
  if (::access(p.c_str(), W_OK) != 0)
    throw UsageError("cannot write " + target.string() + ": directory " + p.string() + " is not writable");
}

}  // namespace longalign
