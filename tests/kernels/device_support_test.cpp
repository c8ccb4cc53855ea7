// The device rule against real cards' published limits (compute capability, opt-in shared memory
// per block) and the kernels' shared-memory layouts worked out by hand:
//   forward  (128 + 4 x 64 rows) x D x 2 bytes: 96 KiB at D=128, 48 KiB at D=64;
//   backward 2 x 64 x D x 2 (K, V) + 2 stages x (2 x 64 x D x 2 + 2 x 64 x 4) + 64 x 40 x 2 (dS):
//            102 KiB (104448 bytes) at D=128, 54 KiB (55296 bytes) at D=64.
// And the launch plan launches nothing for an empty batch.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "longalign/kernels/device_support.hpp"
#include "longalign/kernels/varlen_attention_launch.hpp"

using namespace longalign::kernels;

TEST(DeviceSupport, SharedMemoryMatchesTheLayoutsWorkedOutByHand) {
  EXPECT_EQ(varlen_attention_smem_bytes(128), 104448);
  EXPECT_EQ(varlen_attention_smem_bytes(64), 55296);
  EXPECT_EQ(varlen_attention_smem_bytes(96), 0);
}

TEST(DeviceSupport, AcceptsAmpereAndHopperDatacenterCards) {
  for (int d : {64, 128}) {
    EXPECT_EQ(varlen_attention_device_problem(8, 0, 166912, d), "") << "A100, D=" << d;
    EXPECT_EQ(varlen_attention_device_problem(9, 0, 232448, d), "") << "H100, D=" << d;
  }
}

TEST(DeviceSupport, RefusesHeadDim128WhereOnly99KiBAreGranted) {
  for (int minor : {6, 9}) {  // A10 / RTX 3090 (8.6), L40S / RTX 4090 (8.9)
    const std::string why = varlen_attention_device_problem(8, minor, 101376, 128);
    EXPECT_NE(why.find("102 KiB"), std::string::npos) << why;
    EXPECT_NE(why.find("99 KiB"), std::string::npos) << why;
    EXPECT_EQ(varlen_attention_device_problem(8, minor, 101376, 64), "");
  }
}

TEST(DeviceSupport, RefusesPreAmpereCards) {
  const std::string why = varlen_attention_device_problem(7, 5, 65536, 64);  // T4
  EXPECT_NE(why.find("compute capability 7.5"), std::string::npos) << why;
}

namespace {
// Records every launch the plan asks for.
struct CountingExec {
  std::vector<std::string> launches;
  void fwd(Grid) { launches.push_back("fwd"); }
  void zero_dq_accum() { launches.push_back("zero"); }
  void delta(Grid) { launches.push_back("delta"); }
  template <int kPart, bool kAtomicDq>
  void dkdv(Grid) { launches.push_back("dkdv"); }
  void dq(Grid) { launches.push_back("dq"); }
  void dq_convert(Grid) { launches.push_back("dq_convert"); }
};
}  // namespace

TEST(LaunchPlan, LaunchesNothingForZeroTokens) {
  const int32_t cu[] = {0, 0, 0};  // two empty sequences
  float accum = 0;
  VarlenAttentionParams p{};
  p.cu_seqlens = cu, p.total = 0, p.batch = 2, p.num_heads = 8, p.num_kv_heads = 2, p.head_dim = 128, p.max_seqlen = 0;
  for (float* dq_accum : {static_cast<float*>(nullptr), &accum}) {
    VarlenAttentionBwdParams bp{p, nullptr, nullptr, nullptr, nullptr, nullptr, dq_accum};
    CountingExec ex;
    plan_fwd(p, ex);
    plan_bwd<128, Bf16>(bp, ex);
    EXPECT_TRUE(ex.launches.empty()) << ex.launches.size() << " launches, first " << ex.launches.front();
  }
  // One token: the same plan launches (the counter sees something), so the test is not vacuous.
  p.total = 1;
  VarlenAttentionBwdParams bp{p, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
  CountingExec ex;
  plan_fwd(p, ex);
  plan_bwd<128, Bf16>(bp, ex);
  EXPECT_EQ(ex.launches, (std::vector<std::string>{"fwd", "delta", "dkdv", "dkdv", "dq"}));
}
