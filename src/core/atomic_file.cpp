// Temp-then-rename writers. fsync on files and on the parent directory makes the rename durable.
#include "longalign/core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"

namespace fs = std::filesystem;

namespace longalign {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  std::string h(buf);
  for (char& c : h)
    if (c == '-' || c == '/' || c == '.') c = '_';  // keeps the suffix parseable
  return h;
}

// ".tmp-HOST-PID-RANDOM": the host and pid let a later run tell a dead writer's leftovers from
// a live writer's staging area (on this host; another host's are never touched).
std::string unique_suffix() {
  static std::random_device rd;
  static const std::string host = host_name();
  return ".tmp-" + host + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() & 0xFFFFFF);
}

// Removes `final`'s staging leftovers (".tmp-HOST-PID-N", ".tmp-HOST-PID-N.old") of processes
// on this host that no longer run: a run killed by SIGKILL or the OOM killer leaves them.
void remove_stale_staging(const fs::path& final_path) {
  const fs::path parent = final_path.parent_path().empty() ? fs::path(".") : final_path.parent_path();
  const std::string prefix = final_path.filename().string() + ".tmp-" + host_name() + "-";
  std::error_code ec;
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == ::getpid() || ::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (!rm) log::warn("removed " + it->path().string() + ", left by an earlier run that did not finish");
  }
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
  // The first failure's errno is the one to report (a full disk shows up at flush or fsync).
  int err = std::fflush(f) == 0 ? 0 : errno;
  if (!err && ::fsync(::fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && !err) err = errno;
  if (err) {
    errno = err;
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

namespace {

// A device or FIFO (/dev/null, /dev/full, a pipe) cannot be replaced by a rename, and renaming
// over it would destroy the node: it is written in place. O_NONBLOCK makes opening a FIFO that
// nobody reads fail (ENXIO) instead of blocking forever.
void write_in_place(const fs::path& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    throw RuntimeError("cannot open " + path.string() + " for writing: " + std::strerror(e) +
                       (e == ENXIO ? " (a FIFO that nobody reads)" : ""));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  for (size_t done = 0; done < content.size();) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      ::close(fd);
      throw RuntimeError("write failed for " + path.string() + ": " + std::strerror(e));
    }
    done += size_t(n);
  }
  if (::close(fd) != 0) throw RuntimeError("write failed for " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

void write_file_atomic(const fs::path& target, std::string_view content) {
  std::error_code ec;
  const fs::file_status st = fs::status(target, ec);
  if (fs::is_directory(st)) throw RuntimeError("cannot write " + target.string() + ": it is a directory");
  if (fs::exists(st) && !fs::is_regular_file(st)) return write_in_place(target, content);
  // Through a symlink the file it points at is replaced, never the link itself.
  fs::path path = target;
  if (fs::exists(st) && fs::is_symlink(fs::symlink_status(target, ec))) path = fs::canonical(target, ec);
  if (ec) path = target;
  fs::path tmp = path;
  tmp += unique_suffix();
  try {
    FileWriter w(tmp);
    w.write(content);
    w.close();
    fs::rename(tmp, path, ec);
    if (ec) throw RuntimeError("cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  } catch (...) {
    std::error_code rm;
    fs::remove(tmp, rm);
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
    remove_stale_staging(final_);
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
