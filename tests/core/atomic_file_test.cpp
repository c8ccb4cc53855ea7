// Atomic outputs: nothing partial survives a failure, existing outputs are protected, and write
// errors (a full disk) surface with the file's name.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {
size_t entries(const fs::path& dir) { return std::distance(fs::directory_iterator(dir), fs::directory_iterator()); }
}  // namespace

TEST(AtomicFile, WriteFileAtomicLeavesOnlyTheFinalFile) {
  fixture::TempDir tmp;
  write_file_atomic(tmp / "a.txt", "hello");
  EXPECT_EQ(fixture::read_text(tmp / "a.txt"), "hello");
  write_file_atomic(tmp / "a.txt", "again");
  EXPECT_EQ(fixture::read_text(tmp / "a.txt"), "again");
  EXPECT_EQ(entries(tmp.path), 1u);
}

TEST(AtomicFile, StagedDirIsRemovedWhenNotCommitted) {
  fixture::TempDir tmp;
  try {
    StagedDir d(tmp / "out", false);
    fixture::write_text(d.path() / "partial.bin", "xx");
    throw std::runtime_error("simulated failure mid-write");
  } catch (const std::runtime_error&) {
  }
  EXPECT_FALSE(fs::exists(tmp / "out"));
  EXPECT_EQ(entries(tmp.path), 0u);  // no temp directory left behind
}

TEST(AtomicFile, StagedDirCommitPublishesAndProtectsExisting) {
  fixture::TempDir tmp;
  {
    StagedDir d(tmp / "out", false);
    fixture::write_text(d.path() / "f", "1");
    d.commit();
  }
  EXPECT_EQ(fixture::read_text(tmp / "out" / "f"), "1");
  EXPECT_THROW(StagedDir(tmp / "out", false), UsageError);
  {
    StagedDir d(tmp / "out", true);
    fixture::write_text(d.path() / "g", "2");
    EXPECT_TRUE(fs::exists(tmp / "out" / "f"));  // old output intact until commit
    d.commit();
  }
  EXPECT_FALSE(fs::exists(tmp / "out" / "f"));
  EXPECT_EQ(fixture::read_text(tmp / "out" / "g"), "2");
  EXPECT_EQ(entries(tmp.path), 1u);
}

TEST(AtomicFile, FullDiskIsAnErrorNamingTheFile) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  try {
    FileWriter w("/dev/full");
    std::string block(4 << 20, 'x');  // larger than the buffer, so fwrite itself hits ENOSPC
    w.write(block);
    w.close();
    FAIL() << "writing to /dev/full succeeded";
  } catch (const RuntimeError& e) {
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
}

TEST(AtomicFile, UnwritableTargetIsRefusedUpFront) {
  fixture::TempDir tmp;
  fixture::write_text(tmp / "file", "x");
  // A regular file where a parent directory should be.
  EXPECT_THROW(check_writable_parent(tmp / "file" / "out"), UsageError);
}

TEST(AtomicFile, DurableAppendsAndPartialLastLineRecovery) {
  fixture::TempDir tmp;
  const fs::path log = tmp / "log.jsonl";
  EXPECT_EQ(drop_partial_last_line(log), 0u);  // missing: left alone
  append_line_durable(log, "{\"a\":1}");
  append_line_durable(log, "{\"b\":2}");
  EXPECT_EQ(fixture::read_text(log), "{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(drop_partial_last_line(log), 0u);  // complete: unchanged
  // A writer killed mid-line leaves a fragment; recovery cuts exactly that fragment, also when
  // it is longer than the backwards scan's block.
  for (size_t len : {5, 10000}) {
    std::ofstream(log, std::ios::app) << std::string(len, 'x');
    EXPECT_EQ(drop_partial_last_line(log), len);
    EXPECT_EQ(fixture::read_text(log), "{\"a\":1}\n{\"b\":2}\n");
  }
  fixture::write_text(log, "no newline at all");
  EXPECT_EQ(drop_partial_last_line(log), 17u);
  EXPECT_EQ(fs::file_size(log), 0u);
  EXPECT_THROW(append_line_durable(tmp / "missing-dir" / "x", "y"), RuntimeError);
  if (fs::exists("/dev/full")) {
    EXPECT_THROW(append_line_durable("/dev/full", "y"), RuntimeError);  // a full disk
  }
}

// A writer killed mid-way (SIGKILL, the OOM killer) runs no destructor and leaves its staging
// directory; the next writer of the same output removes it, but never a live process's.
TEST(AtomicFile, StagingLeftByADeadProcessIsRemovedByTheNextRun) {
  fixture::TempDir tmp;
  auto leave_staging = [&](bool hang) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      auto* d = new StagedDir(tmp / "out", false);  // never destroyed: as if killed
      (void)d;
      char ok = 1;
      (void)!::write(fds[1], &ok, 1);
      if (hang) ::pause();
      ::_exit(0);
    }
    char ok = 0;
    EXPECT_EQ(::read(fds[0], &ok, 1), 1);
    ::close(fds[0]);
    ::close(fds[1]);
    return pid;
  };
  struct Reaper {  // the live child must not outlive a failed assertion
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } alive{leave_staging(true)};
  ::waitpid(leave_staging(false), nullptr, 0);
  ASSERT_EQ(entries(tmp.path), 2u);  // two staging directories
  {
    StagedDir next(tmp / "out", false);
    EXPECT_EQ(entries(tmp.path), 2u);  // the dead one's went; the live one's and ours remain
    const std::string live_tag = "-" + std::to_string(alive.pid) + "-";
    size_t live = 0;
    for (const auto& e : fs::directory_iterator(tmp.path))
      live += e.path().filename().string().find(live_tag) != std::string::npos;
    EXPECT_EQ(live, 1u);
  }
}
