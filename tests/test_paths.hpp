// Where a test finds the source tree and the Python of its oracles. tests/CMakeLists.txt compiles
// both in; LONGALIGN_TEST_SOURCE_DIR and LONGALIGN_TEST_PYTHON override them at run time, because
// prebuilt test binaries (scripts/gpu_bundle.sh) run from another checkout with another Python
// (scripts/gpu_check.sh --prebuilt sets both).
#pragma once
#include <cstdlib>
#include <string>

namespace longalign::fixture {

inline std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

inline std::string source_dir() { return env_or("LONGALIGN_TEST_SOURCE_DIR", LONGALIGN_SOURCE_DIR); }
inline std::string python() { return env_or("LONGALIGN_TEST_PYTHON", LONGALIGN_PYTHON); }

}  // namespace longalign::fixture
