// Running a helper program to completion with a deadline: used where a step may crash its whole
// process (an unproven GPU kernel faulting poisons the CUDA context), so it runs in a child and
// the parent only reads the verdict.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace longalign {

struct ProcessResult {
  int exit_code = -1;      // when it exited normally
  int signal = 0;          // the signal that killed it, 0 if none
  bool timed_out = false;  // killed by us at the deadline
  bool started = false;    // false: the program could not be started (output says why)
  std::string output;      // stdout and stderr together, as written
};

// Runs argv[0] (found on PATH when it has no slash) with argv, inheriting the environment;
// kills it (SIGKILL) after timeout_s seconds.
ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s);

// One line describing how it ended ("exited with code 3", "killed by signal 11 (Segmentation
// fault)", "timed out after 60 s"), for error messages.
std::string describe_end(const ProcessResult& r, double timeout_s);

// The running program's own file (/proc/self/exe).
std::filesystem::path self_executable();

}  // namespace longalign
