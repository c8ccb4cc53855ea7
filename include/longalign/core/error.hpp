// Error kinds and the exit codes they map to: the CLI's contract is 0 ok, 1 runtime, 2 usage/config.
#pragma once
#include <stdexcept>
#include <string>

namespace longalign {

// A mistake in how the program was invoked or configured (bad flag, unknown key, missing file
// named by the user). The CLI exits with 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Anything that goes wrong while doing valid work: bad data, I/O failure, corruption. Exit 1.
struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

}  // namespace longalign
