// Where a test finds the source tree and the Python of its oracles. tests/CMakeLists.txt compiles
// both in; LONGALIGN_TEST_SOURCE_DIR and LONGALIGN_TEST_PYTHON override them at run time, because
// prebuilt test binaries (scripts/gpu_bundle.sh) run from another checkout with another Python
// (scripts/gpu_check.sh --prebuilt sets both).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "test_util.hpp"

namespace longalign::fixture {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string source_dir() { return env_or("LONGALIGN_TEST_SOURCE_DIR", LONGALIGN_SOURCE_DIR); }
inline std::string python() { return env_or("LONGALIGN_TEST_PYTHON", LONGALIGN_PYTHON); }

// A temporary directory that `python tests/SCRIPT DIR` fills, once per process (oracle models,
// hostile files); the directory goes when the process ends.
inline const std::filesystem::path& python_made_dir(const std::string& script) {
  static std::map<std::string, std::unique_ptr<TempDir>> made;
  auto& dir = made[script];
  if (!dir) {
    auto d = std::make_unique<TempDir>();
    const std::string cmd = python() + " " + source_dir() + "/tests/" + script + " " + d->path.string() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0)
      throw std::runtime_error("could not run tests/" + script + " with " + python() + "; run scripts/setup.sh");
    dir = std::move(d);
  }
  return dir->path;
}

}  // namespace longalign::fixture
