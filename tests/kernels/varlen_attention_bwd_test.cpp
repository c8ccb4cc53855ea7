// The backward kernels' source (delta preprocess, dK/dV pass with the GQA reduction, dQ pass),
// run in the CPU harness after the forward kernel, against fp64 gradients of the same bf16
// inputs. Outputs are poisoned first; ragged lengths include 1 and lengths off the tile size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "longalign/kernels/cpu_harness.hpp"
#include "longalign/kernels/varlen_attention_bwd.cuh"

using namespace longalign::kernels;

namespace {

float f(uint16_t h) { return fwd_detail::bf16_to_f32(h); }

template <int D>
void check(int hq, int hkv, std::vector<int> lens) {
  std::vector<int32_t> cu = {0};
  for (int l : lens) cu.push_back(cu.back() + l);
  const int total = cu.back(), nb = int(lens.size()), group = hq / hkv;
  int max_len = 0;
  for (int l : lens) max_len = std::max(max_len, l);
  std::mt19937 rng(11 * D + hq + hkv);
  std::normal_distribution<float> nd;
  auto rnd = [&](size_t n) {
    std::vector<uint16_t> v(n);
    for (auto& x : v) x = fwd_detail::f32_to_bf16(nd(rng));
    return v;
  };
  auto q = rnd(size_t(total) * hq * D), k = rnd(size_t(total) * hkv * D), v = rnd(size_t(total) * hkv * D);
  auto dout = rnd(size_t(total) * hq * D);
  std::vector<uint16_t> o(q.size()), dq(q.size(), 0x7FC0), dk(k.size(), 0x7FC0), dv(v.size(), 0x7FC0);
  std::vector<float> lse(size_t(hq) * total), delta(size_t(hq) * total, NAN);
  VarlenAttentionParams p{q.data(), k.data(), v.data(), o.data(), lse.data(), cu.data(), hq * D, hkv * D, hkv * D, hq * D,
                          D, D, D, D, total, nb, hq, hkv, D, max_len, float(1.0 / std::sqrt(double(D)))};
  VarlenAttentionBwdParams bp{p, dout.data(), delta.data(), dq.data(), dk.data(), dv.data()};
  const int tiles = (max_len + 63) / 64;
  launch_on_cpu({tiles, nb * hq}, kFwdThreads, fwd_smem_bytes<D>(),
                [&](char* s) { varlen_attention_fwd_block<D>(p, s, block_x(), block_y()); });
  launch_on_cpu({int((int64_t(total) * hq + kBwdThreads - 1) / kBwdThreads), 1}, kBwdThreads, 0,
                [&](char*) { varlen_attention_bwd_delta_block<D>(bp, block_x()); });
  launch_on_cpu({tiles, nb * hkv}, kBwdThreads, bwd_smem_bytes<D>(),
                [&](char* s) { varlen_attention_bwd_dkdv_block<D>(bp, s, block_x(), block_y()); });
  launch_on_cpu({tiles, nb * hq}, kBwdThreads, bwd_smem_bytes<D>(),
                [&](char* s) { varlen_attention_bwd_dq_block<D>(bp, s, block_x(), block_y()); });

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
    double scale = 1e-12, worst = 0;
    for (double w : want) scale = std::max(scale, std::abs(w));
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_FALSE(std::isnan(f(got[i]))) << name << " element " << i << " left unwritten";
      worst = std::max(worst, std::abs(f(got[i]) - want[i]) / scale);
    }
    EXPECT_LT(worst, 2e-2) << name << " D=" << D << " GQA " << hq << ":" << hkv;
  };
  compare(dq, gq, "dq");
  compare(dk, gk, "dk");
  compare(dv, gv, "dv");
}

}  // namespace

TEST(VarlenAttentionBwdKernel, RaggedGqa4to1HeadDim64) { check<64>(4, 1, {1, 70, 17}); }
TEST(VarlenAttentionBwdKernel, RaggedMhaHeadDim128) { check<128>(2, 2, {65, 1, 30}); }
