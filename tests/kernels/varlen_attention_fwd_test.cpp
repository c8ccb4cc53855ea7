// The forward kernel's source, launched by the shared launch plan in the CPU harness, against an
// fp64 oracle computed here from the same 16-bit inputs: ragged sequences (length 1, lengths off
// the tile sizes), GQA 2:1, 1:1 and 4:1, head_dim 64 and 128, bf16 and fp16. Outputs are poisoned
// first, so any element left unwritten fails; every ldmatrix must be free of bank conflicts.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attention_problem.hpp"

using namespace longalign::kernels;
using namespace longalign::kernels::testing;

namespace {

template <int D, typename E>
void check(int hq, int hkv, std::vector<int> lens, double tol, int max_seqlen = 0) {
  auto from_bf16 = [](uint16_t h) { return E::to_f32(h); };
  AttentionProblem<D, E> pr(hq, hkv, lens, D + hq * 7 + hkv, max_seqlen);
  const auto &cu = pr.cu, &q = pr.q, &k = pr.k, &v = pr.v, &o = pr.o;
  const auto& lse = pr.lse;
  const VarlenAttentionParams& p = pr.p;
  const int total = pr.total;
  const VarlenAttentionBwdParams bp = pr.bwd(false);
  reset_harness_counters();
  CpuExec<D, E> ex{bp};
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
