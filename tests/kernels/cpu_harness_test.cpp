// The CPU execution harness against plain C++ oracles: a block barrier over shared memory, a warp
// butterfly reduction with shfl_xor, and a 16x8 tile product through ldmatrix (plain and
// transposed) and mma.sync m16n8k16 with the PTX fragment layouts, equal to a double matmul;
// deferred cp.async groups; bank-conflict counts of ldmatrix, with and without the swizzle; the
// one-warp-at-a-time schedule that exposes missing barriers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "longalign/kernels/cpu_harness.hpp"
#include "longalign/kernels/device_api.hpp"
#include "longalign/kernels/element.cuh"
#include "longalign/kernels/smem_tile.cuh"

using namespace longalign::kernels;

namespace {

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return uint16_t((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t b = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

}  // namespace

TEST(CpuHarness, BlockBarrierOrdersSharedMemory) {
  std::vector<int> out(64);
  launch_on_cpu({2, 1}, 64, 64 * sizeof(int), [&](char* smem) {
    int* s = reinterpret_cast<int*>(smem);
    s[thread_x()] = thread_x() * 10 + block_x();
    sync_threads();
    if (block_x() == 1) out[thread_x()] = s[63 - thread_x()];  // written by another warp
  });
  for (int i = 0; i < 64; ++i) EXPECT_EQ(out[i], (63 - i) * 10 + 1);
}

// Warps run one at a time up to a barrier (forward order, then reversed after each barrier), so a
// missing barrier shows deterministically: without one, warp 0 reads what warp 1 has not yet
// written; after one, each read sees the other warp's write.
TEST(CpuHarness, WarpsRunOneAtATimeBetweenBarriers) {
  std::vector<int> before(64), after(64);
  launch_on_cpu({1, 1}, 64, 2 * 64 * sizeof(int), [&](char* smem) {
    int* s = reinterpret_cast<int*>(smem);
    s[thread_x()] = thread_x() + 1;
    before[thread_x()] = s[63 - thread_x()];  // no barrier in between
    sync_threads();
    s[64 + thread_x()] = thread_x() + 1;      // after the barrier warp 1 runs first
    after[thread_x()] = s[64 + 63 - thread_x()];
  });
  for (int i = 0; i < 32; ++i) EXPECT_EQ(before[i], 0) << i;       // warp 1 had not run yet
  for (int i = 32; i < 64; ++i) EXPECT_EQ(before[i], 64 - i) << i;  // warp 0 had
  for (int i = 0; i < 32; ++i) EXPECT_EQ(after[i], 64 - i) << i;    // warp 1 ran first this time
  for (int i = 32; i < 64; ++i) EXPECT_EQ(after[i], 0) << i;
}

TEST(CpuHarness, WarpButterflyReduction) {
  std::vector<float> out(64);
  launch_on_cpu({1, 1}, 64, 0, [&](char*) {
    float v = float(thread_x());
    for (int m = 16; m > 0; m /= 2) v += shfl_xor(v, m);
    out[thread_x()] = v;
  });
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 496.0f);         // 0 + ... + 31
  for (int i = 32; i < 64; ++i) EXPECT_EQ(out[i], 1520.0f);       // 32 + ... + 63
}

TEST(CpuHarness, HalfConversionsRoundTripAndRound) {
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f)), 1.0f);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.5f), 0xC100);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);               // largest finite half
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);                   // overflow -> inf
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3C00);     // a tie rounds to even
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3C02);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
}

// The kernels' bf16 rounding (element.cuh) keeps NaN a NaN whatever its bits: the GPU's canonical
// NaN is 0x7FFFFFFF, which plain round-to-nearest-even by adding 0x7FFF turns into -0.0.
TEST(CpuHarness, Bf16RoundingKeepsNanAndRoundsToEven) {
  auto bits = [](uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; };
  auto is_nan = [](uint16_t h) { return (h & 0x7F80) == 0x7F80 && (h & 0x007F) != 0; };
  for (uint32_t nan : {0x7FFFFFFFu, 0xFFC00000u, 0x7FC00000u, 0x7F800001u, 0xFFFFFFFFu})
    EXPECT_TRUE(is_nan(Bf16::from_f32(bits(nan)))) << std::hex << nan << " -> " << Bf16::from_f32(bits(nan));
  EXPECT_EQ(Bf16::from_f32(bits(0x7F800000u)), 0x7F80);  // +inf
  EXPECT_EQ(Bf16::from_f32(bits(0xFF800000u)), 0xFF80);  // -inf
  EXPECT_EQ(Bf16::from_f32(1.0f), 0x3F80);
  EXPECT_EQ(Bf16::from_f32(bits(0x3F808000u)), 0x3F80);  // a tie rounds to even (down)
  EXPECT_EQ(Bf16::from_f32(bits(0x3F818000u)), 0x3F82);  // a tie rounds to even (up)
  EXPECT_EQ(Bf16::from_f32(bits(0x7F7FFFFFu)), 0x7F80);  // the largest float rounds to inf
}

TEST(CpuHarness, LdmatrixAndMmaComputeATileProduct) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  // A 16x16 row-major, B 16x8 stored transposed as Bt[n][k] (the "col" operand), bf16.
  std::vector<uint16_t> A(16 * 16), Bt(8 * 16), V(16 * 8);
  for (auto& x : A) x = to_bf16(nd(rng));
  for (auto& x : Bt) x = to_bf16(nd(rng));
  for (auto& x : V) x = to_bf16(nd(rng));
  std::vector<float> C(16 * 8), CV(16 * 8);
  const size_t smem = (A.size() + Bt.size() + V.size()) * 2;
  launch_on_cpu({1, 1}, 32, smem, [&](char* s) {
    auto* sA = reinterpret_cast<uint16_t*>(s);
    auto* sB = sA + A.size();
    auto* sV = sB + Bt.size();
    const int l = thread_x();
    if (l == 0) {
      std::memcpy(sA, A.data(), A.size() * 2);
      std::memcpy(sB, Bt.data(), Bt.size() * 2);
      std::memcpy(sV, V.data(), V.size() * 2);
    }
    sync_threads();
    uint32_t a[4], b4[4], v4[4];
    ldmatrix_x4(a, sA + (l % 8 + 8 * ((l / 8) % 2)) * 16 + 8 * (l / 16));  // A quadrants in a0..a3 order
    ldmatrix_x4(b4, sB + (l % 8) * 16 + 8 * ((l / 8) % 2));                // Bt cols 0-7, 8-15 (x2 duplicated)
    // V is [k=16][n=8] row-major: .trans turns its 8x8 blocks into the col operand directly.
    ldmatrix_x4_trans(v4, sV + ((l % 8) + 8 * ((l / 8) % 2)) * 8);
    const float zero[4] = {0, 0, 0, 0};
    float d[4], dv[4];
    const uint32_t b[2] = {b4[0], b4[1]}, bv[2] = {v4[0], v4[1]};
    mma_m16n8k16_bf16(d, a, b, zero);
    mma_m16n8k16_bf16(dv, a, bv, zero);
    const int g = l / 4, t = l % 4;
    const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
    for (int i = 0; i < 4; ++i) {
      C[rows[i] * 8 + cols[i]] = d[i];
      CV[rows[i] * 8 + cols[i]] = dv[i];
    }
  });
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 8; ++c) {
      double want = 0, want_v = 0;
      for (int k = 0; k < 16; ++k) {
        want += double(from_bf16(A[r * 16 + k])) * from_bf16(Bt[c * 16 + k]);
        want_v += double(from_bf16(A[r * 16 + k])) * from_bf16(V[k * 8 + c]);
      }
      EXPECT_NEAR(C[r * 8 + c], want, 1e-4 * (1 + std::abs(want))) << r << "," << c;
      EXPECT_NEAR(CV[r * 8 + c], want_v, 1e-4 * (1 + std::abs(want_v))) << r << "," << c;
    }
}

// cp.async groups land at the wait that covers them, not before (in flight, the destination reads
// as 0xFF bytes): a kernel that reads a tile early fails in CI. valid == false zero-fills.
TEST(CpuHarness, CpAsyncLandsAtItsWait) {
  std::vector<uint8_t> src(32);
  for (int i = 0; i < 32; ++i) src[i] = uint8_t(i + 1);
  std::vector<int> seen;
  launch_on_cpu({1, 1}, 32, 64, [&](char* s) {
    if (thread_x() != 0) return;
    std::memset(s, 0x55, 64);
    cp_async_16(s, src.data(), true);
    cp_async_commit();
    cp_async_16(s + 16, src.data() + 16, true);
    cp_async_4(s + 32, src.data(), false);
    cp_async_commit();
    seen.push_back(uint8_t(s[0]));  // nothing has landed
    cp_async_wait<1>();    // the first group only
    seen.push_back(s[0]);
    seen.push_back(uint8_t(s[16]));
    cp_async_wait<0>();
    seen.push_back(s[16]);
    seen.push_back(s[32]);
    seen.push_back(s[36]);  // past the 4-byte copy
  });
  EXPECT_EQ(seen, (std::vector<int>{0xFF, 1, 0xFF, 17, 0, 0x55}));
}

// Extra shared-memory wavefronts, worked out by hand: an unswizzled tile with 128- or 256-byte
// rows puts the 8 rows of each ldmatrix matrix in one 16-byte bank slot (7 extra wavefronts per
// matrix, 28 per x4); the XOR swizzle of smem_tile.cuh spreads them over all 8 slots.
TEST(CpuHarness, LdmatrixBankConflictsAndTheSwizzle) {
  auto conflicts = [](auto address_of) {
    reset_harness_counters();
    launch_on_cpu({1, 1}, 32, 64 * 128 * 2, [&](char* s) {
      uint32_t r[4];
      ldmatrix_x4(r, address_of(reinterpret_cast<uint16_t*>(s), thread_x()));
    });
    EXPECT_EQ(harness_counters().ldmatrix, 1u);
    return harness_counters().bank_conflicts;
  };
  for (int col0 : {0, 16, 48}) {
    EXPECT_EQ(conflicts([&](uint16_t* t, int l) { return t + (l % 8 + 8 * ((l / 8) % 2)) * 64 + col0 + 8 * (l / 16); }), 28u);
    EXPECT_EQ(conflicts([&](uint16_t* t, int l) { return t + (l % 8 + 8 * ((l / 8) % 2)) * 128 + col0 + 8 * (l / 16); }), 28u);
    EXPECT_EQ(conflicts([&](uint16_t* t, int l) { return frag_rows_major<64>(t, 16, col0, l); }), 0u);
    EXPECT_EQ(conflicts([&](uint16_t* t, int l) { return frag_cols_major<64>(t, 8, col0, l); }), 0u);
    EXPECT_EQ(conflicts([&](uint16_t* t, int l) { return frag_rows_major<128>(t, 32, col0 + 64, l); }), 0u);
  }
  // Every row of a swizzled tile is a permutation of its 16-byte chunks.
  for (int row = 0; row < 64; ++row) {
    std::vector<bool> hit(128, false);
    for (int col = 0; col < 128; ++col) hit[swz<128>(row, col) - row * 128] = true;
    EXPECT_EQ(std::count(hit.begin(), hit.end(), true), 128) << row;
  }
}
