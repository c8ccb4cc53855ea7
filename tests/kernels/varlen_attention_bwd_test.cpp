// The backward kernels' source (delta preprocess, dK/dV pass with the GQA reduction, dQ by
// atomics or by its own pass), launched by the shared launch plan in the CPU harness after the
// forward, against fp64 gradients of the same 16-bit inputs. Outputs and the dQ workspace are
// poisoned first; ragged lengths include 1 and lengths off the tile size; every ldmatrix must be
// free of bank conflicts.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attention_problem.hpp"

using namespace longalign::kernels;
using namespace longalign::kernels::testing;

namespace {

enum class Dq { atomic, deterministic };

template <int D, typename E>
void check(int hq, int hkv, std::vector<int> lens, double tol, Dq mode, int max_seqlen = 0) {
  auto f = [](uint16_t h) { return E::to_f32(h); };
  AttentionProblem<D, E> pr(hq, hkv, lens, 11 * D + hq + hkv, max_seqlen);
  const auto &cu = pr.cu, &q = pr.q, &k = pr.k, &v = pr.v, &dout = pr.dout, &dq = pr.dq, &dk = pr.dk, &dv = pr.dv;
  const VarlenAttentionParams& p = pr.p;
  const int nb = int(lens.size()), group = hq / hkv;
  const VarlenAttentionBwdParams bp = pr.bwd(mode == Dq::atomic);
  reset_harness_counters();
  CpuExec<D, E> ex{bp};
  plan_fwd(p, ex);
  plan_bwd<D, E>(bp, ex);

  EXPECT_GT(harness_counters().ldmatrix, 0u);
  EXPECT_EQ(harness_counters().bank_conflicts, 0u) << "shared-memory bank conflicts in ldmatrix (tile swizzle)";
  // fp64 oracle.
  std::vector<double> gq(q.size(), 0), gk(k.size(), 0), gv(v.size(), 0);
  for (int b = 0; b < nb; ++b)
    for (int h = 0; h < hq; ++h) {
      const int kh = h / group, s0 = cu[b], n = lens[b];
      auto Q = [&](int i, int d) { return double(f(q[(size_t(s0 + i) * hq + h) * D + d])); };
      auto K = [&](int j, int d) { return double(f(k[(size_t(s0 + j) * hkv + kh) * D + d])); };
      auto V = [&](int j, int d) { return double(f(v[(size_t(s0 + j) * hkv + kh) * D + d])); };
      auto dO = [&](int i, int d) { return double(f(dout[(size_t(s0 + i) * hq + h) * D + d])); };
      std::vector<double> P(size_t(n) * n, 0.0);
      for (int i = 0; i < n; ++i) {
        double mx = -1e300;
        for (int j = 0; j <= i; ++j) {
          double x = 0;
          for (int d = 0; d < D; ++d) x += Q(i, d) * K(j, d);
          P[size_t(i) * n + j] = x * p.scale;
          mx = std::max(mx, x * p.scale);
        }
        double z = 0;
        for (int j = 0; j <= i; ++j) z += (P[size_t(i) * n + j] = std::exp(P[size_t(i) * n + j] - mx));
        for (int j = 0; j <= i; ++j) P[size_t(i) * n + j] /= z;
      }
      for (int i = 0; i < n; ++i) {
        std::vector<double> dP(i + 1);
        double dl = 0;  // rowsum(dO * O) with O from P
        for (int d = 0; d < D; ++d) {
          double od = 0;
          for (int j = 0; j <= i; ++j) od += P[size_t(i) * n + j] * V(j, d);
          dl += dO(i, d) * od;
        }
        for (int j = 0; j <= i; ++j) {
          double x = 0;
          for (int d = 0; d < D; ++d) x += dO(i, d) * V(j, d);
          const double pij = P[size_t(i) * n + j], ds = pij * (x - dl);
          for (int d = 0; d < D; ++d) {
            gq[(size_t(s0 + i) * hq + h) * D + d] += p.scale * ds * K(j, d);
            gk[(size_t(s0 + j) * hkv + kh) * D + d] += p.scale * ds * Q(i, d);
            gv[(size_t(s0 + j) * hkv + kh) * D + d] += pij * dO(i, d);
          }
        }
      }
    }
  auto compare = [&](const std::vector<uint16_t>& got, const std::vector<double>& want, const char* name) {
    double err2 = 0, ref2 = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_FALSE(std::isnan(f(got[i]))) << name << " element " << i << " left unwritten";
      err2 += (f(got[i]) - want[i]) * (f(got[i]) - want[i]);
      ref2 += want[i] * want[i];
    }
    EXPECT_LT(std::sqrt(err2 / ref2), tol) << name << " D=" << D << " GQA " << hq << ":" << hkv << " (relative L2 error)";
  };
  compare(dq, gq, "dq");
  compare(dk, gk, "dk");
  compare(dv, gv, "dv");
}

}  // namespace

// Relative L2 error bounds: about 1e-2 for bf16 and 1e-3 for fp16 (P and dS are rounded to the
// element type before their tensor-core products, as in FlashAttention).
// Default mode: dQ accumulated with atomics in the dK/dV blocks.
TEST(VarlenAttentionBwdKernel, Bf16RaggedGqa4to1HeadDim64) { check<64, Bf16>(4, 1, {1, 70, 17}, 1e-2, Dq::atomic); }
TEST(VarlenAttentionBwdKernel, Bf16RaggedMhaHeadDim128) { check<128, Bf16>(2, 2, {65, 1, 30}, 1e-2, Dq::atomic); }
TEST(VarlenAttentionBwdKernel, Fp16RaggedGqa4to1HeadDim64) { check<64, F16>(4, 1, {1, 70, 17}, 1e-3, Dq::atomic); }
// Deterministic mode: the separate dQ pass, fused (D = 64) and split (D = 128) dK/dV.
TEST(VarlenAttentionBwdKernel, DeterministicBf16Gqa4to1HeadDim64) {
  check<64, Bf16>(4, 1, {1, 70, 17}, 1e-2, Dq::deterministic);
}
TEST(VarlenAttentionBwdKernel, DeterministicFp16MhaHeadDim128) { check<128, F16>(2, 2, {65, 1, 30}, 1e-3, Dq::deterministic); }
// A max_seqlen below the longest sequence gives one block per (sequence, head): every tile still runs.
TEST(VarlenAttentionBwdKernel, SmallGridCoversEveryTile) { check<64, Bf16>(2, 2, {130, 3}, 1e-2, Dq::deterministic, 3); }
