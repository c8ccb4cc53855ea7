// run_process against programs whose ends are known: output, exit codes, a crash, a hang.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

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
  auto r = run_process({"/bin/sh", "-c", "echo started; exec sleep 30"}, 2);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(s, 15);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_EQ(describe_end(r, 2), "timed out after 2 s");
}

// A child that closes its output and then hangs is killed at the deadline too, and so is what it
// started (its process group).
TEST(Subprocess, KillsAHangAfterTheOutputClosesAndItsChildren) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_process({"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $! >&2; exec >&- 2>&-; wait"}, 2);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(s, 15);
  const int grandchild = std::stoi(r.output);
  // Dead means gone, or a zombie waiting for whoever adopted it to reap it.
  auto alive = [&] {
    std::ifstream stat("/proc/" + std::to_string(grandchild) + "/stat");
    std::string pid, comm, state;
    return stat >> pid >> comm >> state && state != "Z";
  };
  for (int i = 0; i < 50 && alive(); ++i) usleep(20000);
  EXPECT_FALSE(alive()) << "the child's own child outlived the deadline";
}

// Only stdin/stdout/stderr reach the child: a descriptor of ours without close-on-exec does not.
TEST(Subprocess, PassesNoOtherDescriptors) {
  // No O_CLOEXEC, as a library's socket might be; numbered high so that it cannot be mistaken
  // for the descriptor `ls` opens itself.
  const int low = open("/dev/null", O_RDONLY);
  const int fd = fcntl(low, F_DUPFD, 100);
  close(low);
  ASSERT_GE(fd, 100);
  auto r = run_process({"/bin/sh", "-c", "ls /proc/self/fd"}, 30);
  close(fd);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output.find("\n" + std::to_string(fd) + "\n"), std::string::npos) << r.output;
}

TEST(Subprocess, SaysWhenTheProgramCannotStart) {
  auto r = run_process({"/nonexistent/longalign-helper"}, 5);
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.output.find("/nonexistent/longalign-helper"), std::string::npos);
}

TEST(Subprocess, KnowsItsOwnExecutable) {
  EXPECT_EQ(self_executable().filename(), "core_tests");
}

// A child outlives nothing: when the process that started it dies (a trainer killed while its
// GPU self-check hangs), the kernel kills the child too instead of leaving it running.
TEST(Subprocess, ChildDiesWithItsParent) {
  int pids[2];
  ASSERT_EQ(pipe(pids), 0);
  const pid_t parent = fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {  // the "trainer": starts a hanging child that reports its pid, then waits
    close(pids[0]);
    // Only stdio reaches the child: it writes its pid through its parent's descriptor 5.
    dup2(pids[1], 5);
    run_process({"/bin/sh", "-c", "echo $$ >/proc/$PPID/fd/5; exec sleep 30"}, 60);
    _exit(0);
  }
  close(pids[1]);
  char buf[32] = {};
  ssize_t n = 0;
  for (int i = 0; i < 500 && n <= 0; ++i) {
    n = read(pids[0], buf, sizeof buf - 1);
    if (n <= 0) usleep(10000);
  }
  close(pids[0]);
  ASSERT_GT(n, 0) << "the child did not report its pid";
  const int child = std::atoi(buf);
  kill(parent, SIGKILL);
  waitpid(parent, nullptr, 0);
  auto alive = [&] {
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string pid, comm, state;
    return stat >> pid >> comm >> state && state != "Z";
  };
  for (int i = 0; i < 100 && alive(); ++i) usleep(20000);
  EXPECT_FALSE(alive()) << "the child (pid " << child << ") outlived its parent";
}
