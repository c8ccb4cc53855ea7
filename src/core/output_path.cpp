// Up-front path checks shared by every command; see output_path.hpp.
#include "longalign/core/output_path.hpp"

#include <unistd.h>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"

namespace fs = std::filesystem;

namespace longalign {
namespace {

std::string kind_of(const fs::file_status& st) {
  switch (st.type()) {
    case fs::file_type::directory: return "a directory";
    case fs::file_type::fifo: return "a FIFO";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    case fs::file_type::socket: return "a socket";
    default: return "not a regular file";
  }
}

fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path r = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : r;
}

bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec) && !ec;
  return resolved(a) == resolved(b);
}

// Whether `p` lies strictly inside `dir`, compared by resolved path components.
bool inside(const fs::path& dir, const fs::path& p) {
  const fs::path d = resolved(dir), q = resolved(p);
  auto di = d.begin(), qi = q.begin();
  for (; di != d.end(); ++di, ++qi)
    if (qi == q.end() || *di != *qi) return false;
  return qi != q.end();
}

}  // namespace

void check_output_path(const fs::path& out, OutputKind kind, const std::string& flag,
                       const std::vector<fs::path>& inputs) {
  const std::string what = flag + " " + out.string();
  if (out.empty()) throw UsageError(flag + " is empty; give a path");
  for (const auto& in : inputs)
    if (!in.empty() && same_file(out, in))
      throw UsageError(what + " is also an input (" + in.string() + "); writing it would destroy the input");
  std::error_code ec;
  const fs::file_status st = fs::status(out, ec);
  const bool wants_dir = kind == OutputKind::dir || kind == OutputKind::replaced_dir;
  if (fs::exists(st)) {
    if (wants_dir && !fs::is_directory(st))
      throw UsageError(what + " is " + (fs::is_regular_file(st) ? "a file" : kind_of(st)) + ", not a directory");
    if (!wants_dir && fs::is_directory(st)) throw UsageError(what + " is a directory; give a file path");
    if (kind == OutputKind::file && !fs::is_regular_file(st))
      throw UsageError(what + " is " + kind_of(st) + ", not a regular file");
  }
  if (kind == OutputKind::replaced_dir)
    for (const auto& in : inputs)
      if (!in.empty() && inside(out, in))
        throw UsageError(what + " contains the input " + in.string() + "; replacing the directory would delete it");
  check_writable_parent(out);
}

void check_input_file(const fs::path& in, const std::string& flag) {
  std::error_code ec;
  const fs::file_status st = fs::status(in, ec);
  const std::string what = flag + " " + in.string();
  if (in.empty()) throw UsageError(flag + " is empty; give a path");
  if (!fs::exists(st)) throw UsageError(what + " does not exist");
  if (fs::is_directory(st)) throw UsageError(what + " is a directory, not a file");
  if (!fs::is_regular_file(st)) throw UsageError(what + " is " + kind_of(st) + ", not a regular file");
  if (::access(in.c_str(), R_OK) != 0) throw UsageError(what + " is not readable");
}

void check_input_dir(const fs::path& in, const std::string& flag) {
  std::error_code ec;
  const fs::file_status st = fs::status(in, ec);
  const std::string what = flag + " " + in.string();
  if (in.empty()) throw UsageError(flag + " is empty; give a path");
  if (!fs::exists(st)) throw UsageError(what + " does not exist");
  if (!fs::is_directory(st)) throw UsageError(what + " is " + (fs::is_regular_file(st) ? "a file" : kind_of(st)) + ", not a directory");
}

}  // namespace longalign
