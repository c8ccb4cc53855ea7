// Child processes through posix_spawn with one pipe for stdout and stderr, read with poll() until
// the child closes it or the deadline passes.
#include "longalign/core/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace longalign {

ProcessResult run_process(const std::vector<std::string>& argv, double timeout_s) {
  ProcessResult r;
  if (argv.empty()) {
    r.output = "no program given";
    return r;
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    r.output = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  // Nothing else of ours reaches the child: a trainer's store or NCCL sockets stay with it.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // Its own process group, so that a kill at the deadline reaches anything it started too.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    r.output = "cannot start " + argv[0] + ": " + std::strerror(err);
    return r;
  }
  r.started = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto ms_left = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
  };
  // Output until the pipe closes (the child and anything holding it ended) or the deadline.
  char buf[4096];
  bool open = true;
  while (open && ms_left() > 0) {
    pollfd p{fds[0], POLLIN, 0};
    const int n = poll(&p, 1, int(std::min<int64_t>(ms_left(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    const ssize_t got = read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) open = false;
    else r.output.append(buf, size_t(got));
  }
  close(fds[0]);
  // The exit, within what is left of the deadline: a child may close its output and still hang.
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(pid, &status, WNOHANG)) == 0 && ms_left() > 0) usleep(10000);
  if (done == 0) {
    r.timed_out = true;
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return r;
  }
  if (done < 0) {
    r.output += std::string("\nwaitpid: ") + std::strerror(errno);
    return r;
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

std::string describe_end(const ProcessResult& r, double timeout_s) {
  if (!r.started) return "could not start (" + r.output + ")";
  if (r.timed_out) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", timeout_s);
    return std::string("timed out after ") + secs + " s";
  }
  if (r.signal != 0) return "killed by signal " + std::to_string(r.signal) + " (" + strsignal(r.signal) + ")";
  return "exited with code " + std::to_string(r.exit_code);
}

std::filesystem::path self_executable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : p;
}

}  // namespace longalign
