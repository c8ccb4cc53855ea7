// `auto`'s verdict on the project's kernel, read from a child process's end and report: children
// that crash, hang, fail or print nothing useful must all mean "use FlashAttention-2", and a
// report decides by correctness and the measured speed ratio. The real child (`longalign
// attention-self-check`) runs here too, on a machine without a GPU, through the same path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "longalign/ops/cuda_kernel_self_check.hpp"

using namespace longalign;
using namespace longalign::ops;

namespace {
KernelVerdict judge_shell(const std::string& script, double timeout_s = 30) {
  return judge_self_check(run_process({"/bin/sh", "-c", script}, timeout_s), timeout_s);
}
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(KernelSelfCheck, ACrashingChildMeansNoKernel) {
  // What a kernel fault looks like from outside: the child dies mid-way, the parent lives on.
  const KernelVerdict v = judge_shell("echo 'launching'; kill -SEGV $$");
  EXPECT_FALSE(v.use_kernel);
  EXPECT_FALSE(v.correct);
  EXPECT_TRUE(has(v.message, "signal 11")) << v.message;
  EXPECT_TRUE(has(v.message, "launching")) << v.message;
}

TEST(KernelSelfCheck, AHangingChildIsKilledAndMeansNoKernel) {
  const KernelVerdict v = judge_shell("exec sleep 30", 0.5);
  EXPECT_FALSE(v.use_kernel);
  EXPECT_TRUE(has(v.message, "timed out after 0.5 s")) << v.message;
}

TEST(KernelSelfCheck, AFailingOrSilentChildMeansNoKernel) {
  KernelVerdict v = judge_shell("echo 'CUDA error: an illegal memory access was encountered' >&2; exit 1");
  EXPECT_FALSE(v.use_kernel);
  EXPECT_TRUE(has(v.message, "exited with code 1")) << v.message;
  EXPECT_TRUE(has(v.message, "illegal memory access")) << v.message;
  v = judge_shell("echo all good");
  EXPECT_FALSE(v.use_kernel);
  EXPECT_TRUE(has(v.message, "no report line")) << v.message;
  v = judge_shell("echo 'attention-self-check: correct=1 error=oops'");
  EXPECT_FALSE(v.use_kernel);
  EXPECT_TRUE(has(v.message, "unreadable report line")) << v.message;
}

TEST(KernelSelfCheck, AReportDecidesByCorrectnessThenSpeed) {
  SelfCheckReport r;
  r.correct = true, r.error = 0.0123, r.tolerance = 0.05, r.speedup = 1.25;
  KernelVerdict v = judge_shell("echo 'some log line'; echo '" + format_self_check_report(r) + "'");
  EXPECT_TRUE(v.correct);
  EXPECT_TRUE(v.use_kernel);
  EXPECT_TRUE(has(v.message, "1.250x FlashAttention-2")) << v.message;
  r.speedup = 0.8;
  v = judge_shell("echo '" + format_self_check_report(r) + "'");
  EXPECT_TRUE(v.correct);
  EXPECT_FALSE(v.use_kernel) << "a correct kernel slower than FlashAttention-2 must not be chosen";
  EXPECT_TRUE(has(v.message, "0.800x")) << v.message;
  r.correct = false, r.error = 0.9, r.detail = "dq differs between two deterministic runs";
  v = judge_shell("echo '" + format_self_check_report(r) + "'");
  EXPECT_FALSE(v.correct);
  EXPECT_FALSE(v.use_kernel);
  EXPECT_TRUE(has(v.message, "dq differs between two deterministic runs")) << v.message;
}

TEST(KernelSelfCheck, ReportLineRoundTrips) {
  SelfCheckReport r;
  r.correct = true, r.error = 0.00731, r.tolerance = 0.05, r.speedup = 1.07;
  const SelfCheckReport back = parse_self_check_report("noise\n" + format_self_check_report(r) + "\n");
  EXPECT_TRUE(back.correct);
  EXPECT_DOUBLE_EQ(back.error, 0.00731);
  EXPECT_DOUBLE_EQ(back.tolerance, 0.05);
  EXPECT_DOUBLE_EQ(back.speedup, 1.07);
}

// The real child, found beside this test binary, on whatever this machine is: without a GPU it
// must end with a clear error, which the parent turns into "no kernel".
TEST(KernelSelfCheck, TheRealChildRunsAndIsJudged) {
  const auto argv = self_check_command(0, at::kBFloat16, 128, 32, 8);
  ASSERT_FALSE(argv.empty()) << "no longalign binary beside the test binary";
  EXPECT_TRUE(has(argv[0], "longalign"));
  const ProcessResult child = run_process(argv, 300);
  const KernelVerdict v = judge_self_check(child, 300);
  if (torch::cuda::is_available()) {
    // On a GPU the kernel must pass its own check, unless it does not serve the card at all.
    EXPECT_TRUE(v.correct || has(v.message, "does not serve")) << v.message;
  } else {
    EXPECT_FALSE(v.use_kernel);
    EXPECT_TRUE(has(v.message, "exited with code 1")) << v.message;
    EXPECT_TRUE(has(v.message, "no CUDA device") || has(v.message, "no CUDA kernels")) << v.message;
  }
}
