// run_process against programs whose ends are known: output, exit codes, a crash, a hang.
#include <gtest/gtest.h>

#include <chrono>

#include "longalign/core/subprocess.hpp"

using namespace longalign;

TEST(Subprocess, CapturesStdoutAndStderrAndExitCode) {
  auto r = run_process({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 30);
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.output.find("out\n"), std::string::npos);
  EXPECT_NE(r.output.find("err\n"), std::string::npos);
  EXPECT_EQ(describe_end(r, 30), "exited with code 3");
}

TEST(Subprocess, ReportsTheSignalThatKilledIt) {
  auto r = run_process({"/bin/sh", "-c", "kill -SEGV $$"}, 30);
  EXPECT_EQ(r.signal, 11);
  EXPECT_NE(describe_end(r, 30).find("signal 11"), std::string::npos) << describe_end(r, 30);
}

TEST(Subprocess, KillsAHangAtTheDeadline) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({"/bin/sh", "-c", "echo started; exec sleep 30"}, 0.5);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(s, 10);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_EQ(describe_end(r, 0.5), "timed out after 0.5 s");
}

TEST(Subprocess, SaysWhenTheProgramCannotStart) {
  auto r = run_process({"/nonexistent/longalign-helper"}, 5);
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.output.find("/nonexistent/longalign-helper"), std::string::npos);
}

TEST(Subprocess, KnowsItsOwnExecutable) {
  EXPECT_EQ(self_executable().filename(), "core_tests");
}
