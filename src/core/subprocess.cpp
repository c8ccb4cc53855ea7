// Child processes through fork and exec with one pipe for stdout and stderr, read with poll() until
// the child closes it or the deadline passes. Not posix_spawn: only a forked child can ask to be
// killed when its parent dies (PR_SET_PDEATHSIG), which a hung GPU self-check must be, or it would
// spin on the GPU after its trainer was killed.
#include "longalign/core/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

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
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child reports a failed exec through this pipe (closed unwritten by a successful exec).
  int errfds[2];
  if (pipe2(errfds, O_CLOEXEC) != 0) {
    close(fds[0]), close(fds[1]);
    r.output = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec: the parent may have other threads
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before the line above
    setpgid(0, 0);  // its own group, so that a kill at the deadline reaches anything it started too
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    // Nothing else of ours reaches the child (a trainer's store or NCCL sockets) but the error
    // pipe, which closes itself at exec.
    for (int fd = 3; fd < errfds[1]; ++fd) close(fd);
    close_range(unsigned(errfds[1]) + 1, ~0u, 0);
    execvp(args[0], args.data());
    const int e = errno;
    (void)!write(errfds[1], &e, sizeof e);
    _exit(127);
  }
  close(fds[1]);
  close(errfds[1]);
  int err = pid < 0 ? errno : 0;
  if (pid > 0) {
    int e = 0;
    ssize_t n;
    while ((n = read(errfds[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
    if (n == ssize_t(sizeof e)) {
      err = e;
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  close(errfds[0]);
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
