// Helpers shared by the libFuzzer targets: a per-process scratch directory for loaders that
// read files, and the rule for which exceptions are findings.
//
// The rule: a loader given bad bytes must say so with longalign::RuntimeError or UsageError
// (the types the CLI turns into exit codes 1 and 2). Any other exception (nlohmann's or
// yaml-cpp's, std::out_of_range, std::filesystem_error, ...) would reach the user as an
// unexplained crash, so it is reported as a finding: printed, then abort() for libFuzzer.
#pragma once
#include <cxxabi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>

#include "longalign/core/error.hpp"

namespace longalign::fuzz {

// $TMPDIR/longalign-fuzz-<pid>: each libFuzzer worker is its own process, so parallel jobs
// never share files. Removed when the process exits normally.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* t = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(t && *t ? t : "/tmp") / ("longalign-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return dir;
}

inline void write_bytes(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "fuzz harness: cannot write %s\n", p.c_str());
    std::abort();  // a harness problem, not a finding, but it must not pass silently
  }
}

// A broken invariant in what a loader accepted: a finding.
[[noreturn]] inline void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

#define LONGALIGN_FUZZ_CHECK(cond)                                         \
  do {                                                                     \
    if (!(cond)) ::longalign::fuzz::invariant_failed(#cond);               \
  } while (0)

// Runs `body`; the project's error types are expected outcomes, anything else is a finding.
template <typename F>
void expect_project_errors(F&& body) {
  try {
    body();
  } catch (const longalign::RuntimeError&) {
  } catch (const longalign::UsageError&) {
  } catch (const std::exception& e) {
    int status = 0;
    char* type = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
    std::fprintf(stderr, "fuzz: unexpected exception %s (not RuntimeError/UsageError): %s\n",
                 type ? type : typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: unexpected non-std exception\n");
    std::abort();
  }
}

}  // namespace longalign::fuzz
