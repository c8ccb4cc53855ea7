// The forward kernel's source, launched by the shared launch plan in the CPU harness, against an
// fp64 oracle computed here from the same 16-bit inputs: ragged sequences (length 1, lengths off
// the tile sizes), GQA 2:1, 1:1 and 4:1, head_dim 64 and 128, bf16 and fp16. Outputs are poisoned
// first, so any element left unwritten fails; every ldmatrix must be free of bank conflicts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "longalign/kernels/cpu_harness.hpp"
#include "longalign/kernels/varlen_attention_launch.hpp"

using namespace longalign::kernels;

namespace {

// Runs the launch plan's forward on the CPU, as the CUDA launcher runs it on a GPU.
template <int D, typename E>
struct CpuFwd {
  const VarlenAttentionParams& p;
  void fwd(Grid g) {
    launch_on_cpu({int(g.x), int(g.y)}, kFwdThreads, fwd_smem_bytes<D>(),
                  [&](char* smem) { varlen_attention_fwd_entry<D, E>(p, smem, block_x(), block_y(), int(g.y)); });
  }
};

// max_seqlen > 0 replaces the true longest length in the parameters (a caller's mistake).
template <int D, typename E>
void check(int hq, int hkv, std::vector<int> lens, double tol, int max_seqlen = 0) {
  auto from_bf16 = [](uint16_t h) { return E::to_f32(h); };
  std::vector<int32_t> cu = {0};
  for (int l : lens) cu.push_back(cu.back() + l);
  const int total = cu.back();
  int max_len = 0;
  for (int l : lens) max_len = std::max(max_len, l);
  std::mt19937 rng(D + hq * 7 + hkv);
  std::normal_distribution<float> nd;
  auto rand_bf16 = [&](size_t n) {
    std::vector<uint16_t> v(n);
    for (auto& x : v) x = E::from_f32(nd(rng));
    return v;
  };
  auto q = rand_bf16(size_t(total) * hq * D), k = rand_bf16(size_t(total) * hkv * D), v = rand_bf16(size_t(total) * hkv * D);
  std::vector<uint16_t> o(size_t(total) * hq * D, E::kDtype ? 0x7E00 : 0x7FC0);  // NaN poison
  std::vector<float> lse(size_t(hq) * total, NAN);
  VarlenAttentionParams p{q.data(), k.data(), v.data(), o.data(), lse.data(), cu.data(),
                          hq * D, hkv * D, hkv * D, hq * D, D, D, D, D, total, int(lens.size()), hq, hkv, D, max_len,
                          float(1.0 / std::sqrt(double(D))), E::kDtype};
  if (max_seqlen > 0) p.max_seqlen = max_seqlen;
  reset_harness_counters();
  CpuFwd<D, E> ex{p};
  plan_fwd(p, ex);

  EXPECT_GT(harness_counters().ldmatrix, 0u);
  EXPECT_EQ(harness_counters().bank_conflicts, 0u) << "shared-memory bank conflicts in ldmatrix (tile swizzle)";
  double err2 = 0, ref2 = 0, worst_lse = 0;
  for (size_t b = 0; b < lens.size(); ++b)
    for (int h = 0; h < hq; ++h) {
      const int kh = h / (hq / hkv);
      for (int i = cu[b]; i < cu[b + 1]; ++i) {
        std::vector<double> w;
        double mx = -1e300;
        for (int j = cu[b]; j <= i; ++j) {
          double s = 0;
          for (int d = 0; d < D; ++d) s += double(from_bf16(q[(size_t(i) * hq + h) * D + d])) * from_bf16(k[(size_t(j) * hkv + kh) * D + d]);
          w.push_back(s * p.scale);
          mx = std::max(mx, w.back());
        }
        double z = 0;
        for (auto& x : w) z += (x = std::exp(x - mx));
        worst_lse = std::max(worst_lse, std::abs(double(lse[size_t(h) * total + i]) - (mx + std::log(z))));
        for (int d = 0; d < D; ++d) {
          double want = 0;
          for (int j = cu[b]; j <= i; ++j) want += w[j - cu[b]] / z * from_bf16(v[(size_t(j) * hkv + kh) * D + d]);
          const double got = from_bf16(o[(size_t(i) * hq + h) * D + d]);
          ASSERT_FALSE(std::isnan(got)) << "unwritten output at token " << i << " head " << h << " dim " << d;
          err2 += (got - want) * (got - want);
          ref2 += want * want;
        }
      }
    }
  EXPECT_LT(std::sqrt(err2 / ref2), tol) << "D=" << D << " GQA " << hq << ":" << hkv << " (relative L2 error)";
  EXPECT_LT(worst_lse, 1e-2) << "D=" << D;
}

}  // namespace

// Relative L2 error bounds: about 1e-2 for bf16 and 1e-3 for fp16.
TEST(VarlenAttentionFwdKernel, Bf16RaggedGqaHeadDim64) { check<64, Bf16>(2, 1, {1, 17, 70, 130}, 1e-2); }
TEST(VarlenAttentionFwdKernel, Bf16RaggedMhaHeadDim128) { check<128, Bf16>(2, 2, {64, 1, 65, 33}, 1e-2); }
TEST(VarlenAttentionFwdKernel, Fp16RaggedGqa4to1HeadDim64) { check<64, F16>(4, 1, {1, 70, 17}, 1e-3); }
TEST(VarlenAttentionFwdKernel, Fp16RaggedMhaHeadDim128) { check<128, F16>(2, 2, {33, 1, 65, 200}, 1e-3); }
// A max_seqlen below the longest sequence (here one tile's worth: one block per sequence and
// head) still computes every row.
TEST(VarlenAttentionFwdKernel, SmallGridCoversEveryTile) { check<64, Bf16>(2, 1, {130, 5}, 1e-2, 5); }
