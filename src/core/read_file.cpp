// The one rule for files named by directories and indexes the program was given (see
// read_file.hpp), and the bounded, non-blocking whole-file reader every loader uses.
#include "longalign/core/read_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "longalign/core/error.hpp"

namespace fs = std::filesystem;

namespace longalign {
namespace {

std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

std::string size_text(uint64_t b) {
  if (b >= (uint64_t{1} << 30)) return std::to_string(b >> 30) + " GiB";
  if (b >= (uint64_t{1} << 20)) return std::to_string(b >> 20) + " MiB";
  return std::to_string(b) + " bytes";
}

// Whether `p` lies inside `root` (both canonical), by path components.
bool under(const fs::path& root, const fs::path& p) {
  auto ri = root.begin(), pi = p.begin();
  for (; ri != root.end(); ++ri, ++pi)
    if (pi == p.end() || *ri != *pi) return false;
  return true;
}

// Opens for reading without blocking (O_NONBLOCK: opening a FIFO with no writer returns at once)
// and checks what was opened; -1 with `why` set otherwise.
int open_regular(const fs::path& path, uint64_t max_bytes, uint64_t& size, std::string& why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    why = std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    why = "it is " + kind_of(st.st_mode) + ", not a regular file";
    ::close(fd);
    return -1;
  }
  size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    why = "it is " + size_text(size) + ", more than the " + size_text(max_bytes) + " such a file may have";
    ::close(fd);
    return -1;
  }
  // Back to blocking reads: a regular file never blocks anyway, and this keeps read() simple.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// Reads at most max_bytes: a file that grew after fstat is refused rather than read on.
bool read_all(int fd, uint64_t size, uint64_t max_bytes, std::string& out, std::string& why) {
  out.clear();
  out.reserve(size);
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::strerror(errno);
      return false;
    }
    if (n == 0) return true;
    if (out.size() + uint64_t(n) > max_bytes) {
      why = "it grew past " + size_text(max_bytes) + " while being read";
      return false;
    }
    out.append(buf, size_t(n));
  }
}

}  // namespace

std::optional<std::string> read_file(const fs::path& path, uint64_t max_bytes) {
  uint64_t size = 0;
  std::string why, out;
  const int fd = open_regular(path, max_bytes, size, why);
  if (fd < 0) return std::nullopt;
  const bool ok = read_all(fd, size, max_bytes, out, why);
  ::close(fd);
  if (!ok) return std::nullopt;
  return out;
}

std::string read_regular_file(const fs::path& path, const std::string& what, uint64_t max_bytes) {
  uint64_t size = 0;
  std::string why, out;
  const int fd = open_regular(path, max_bytes, size, why);
  if (fd < 0) throw RuntimeError(what + " " + path.string() + " cannot be read: " + why);
  const bool ok = read_all(fd, size, max_bytes, out, why);
  ::close(fd);
  if (!ok) throw RuntimeError(what + " " + path.string() + " cannot be read: " + why);
  return out;
}

std::optional<fs::path> contained_file_if_present(const fs::path& dir, const std::string& name,
                                                  const std::string& named_by, uint64_t max_bytes) {
  const std::string where = named_by + " names " + (name.empty() ? std::string("an empty path") : "'" + truncate_for_message(name, 120) + "'");
  const std::string fix = "; a model, pack or checkpoint directory may only name regular files inside itself";
  if (name.empty()) throw RuntimeError(where + fix);
  if (name.find('\0') != std::string::npos) throw RuntimeError(where + ", which holds a NUL byte" + fix);
  const fs::path rel(name);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory())
    throw RuntimeError(where + ", an absolute path" + fix + " (give the file name relative to " + dir.string() + ")");
  for (const auto& part : rel)
    if (part == "..") throw RuntimeError(where + ", which climbs out of " + dir.string() + " with '..'" + fix);
  const fs::path p = dir / rel;
  struct stat lst {};
  if (::lstat(p.c_str(), &lst) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw RuntimeError(where + ", which cannot be examined (" + std::strerror(errno) + ")");
  }
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec) throw RuntimeError("cannot resolve the directory " + dir.string() + ": " + ec.message());
  const fs::path real = fs::canonical(p, ec);
  if (ec) throw RuntimeError(where + " in " + dir.string() + ", a symlink that leads nowhere (" + ec.message() + ")");
  bool inside = under(root, real);
  // A Hugging Face cache snapshot keeps its files as symlinks into models--org--name/blobs.
  if (!inside && root.parent_path().filename() == "snapshots")
    inside = under(root.parent_path().parent_path() / "blobs", real);
  if (!inside)
    throw RuntimeError(where + " in " + dir.string() + ", which resolves to " + real.string() + ", outside it" + fix);
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0) throw RuntimeError(where + ", which cannot be examined (" + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) throw RuntimeError(where + " in " + dir.string() + ", which is " + kind_of(st.st_mode) + fix);
  if (uint64_t(st.st_size) > max_bytes)
    throw RuntimeError(where + " in " + dir.string() + ", which is " + size_text(uint64_t(st.st_size)) + ", more than the " +
                       size_text(max_bytes) + " such a file may have");
  return p;
}

fs::path contained_file(const fs::path& dir, const std::string& name, const std::string& named_by, uint64_t max_bytes) {
  if (auto p = contained_file_if_present(dir, name, named_by, max_bytes)) return *p;
  throw RuntimeError(named_by + " names '" + truncate_for_message(name, 120) + "', which does not exist in " + dir.string());
}

std::string truncate_for_message(const std::string& s, size_t max_chars) {
  if (s.size() <= max_chars) return s;
  size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
  return s.substr(0, cut) + "... (" + std::to_string(s.size() - cut) + " more bytes)";
}

void check_json_depth(std::string_view text, const std::string& what, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw RuntimeError(what + ": JSON nested deeper than " + std::to_string(max_depth) + " levels (at byte " +
                           std::to_string(i) + "); no file this program reads needs that, so it is refused as malformed");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

}  // namespace longalign
