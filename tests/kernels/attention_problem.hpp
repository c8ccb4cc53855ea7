// Shared by the kernel tests: a random packed attention problem (cu_seqlens for the given lengths,
// q, k, v, dO drawn from N(0, 1) in the element type, outputs poisoned with NaN) and an executor
// that runs the launch plan (varlen_attention_launch.hpp) in the CPU harness, as the CUDA
// launchers run it on a GPU.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "longalign/kernels/cpu_harness.hpp"
#include "longalign/kernels/varlen_attention_launch.hpp"

namespace longalign::kernels::testing {

template <int D, typename E>
struct AttentionProblem {
  // max_seqlen > 0 replaces the true longest length in the parameters (a caller's mistake).
  AttentionProblem(int hq, int hkv, const std::vector<int>& lens, uint32_t seed, int max_seqlen = 0) : cu{0} {
    for (int l : lens) cu.push_back(cu.back() + l), max_len = std::max(max_len, l);
    total = cu.back();
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd;
    auto rnd = [&](size_t n) {
      std::vector<uint16_t> x(n);
      for (auto& e : x) e = E::from_f32(nd(rng));
      return x;
    };
    q = rnd(size_t(total) * hq * D), k = rnd(size_t(total) * hkv * D), v = rnd(size_t(total) * hkv * D);
    dout = rnd(q.size());
    o.assign(q.size(), kNan), dq.assign(q.size(), kNan), dk.assign(k.size(), kNan), dv.assign(v.size(), kNan);
    lse.assign(size_t(hq) * total, NAN), delta.assign(lse.size(), NAN), dq_accum.assign(q.size(), NAN);
    p = VarlenAttentionParams{q.data(), k.data(), v.data(), o.data(), lse.data(), cu.data(), hq * D, hkv * D, hkv * D,
                              hq * D, D, D, D, D, total, int(lens.size()), hq, hkv, D,
                              max_seqlen > 0 ? max_seqlen : max_len, float(1.0 / std::sqrt(double(D))), E::kDtype};
  }
  // The backward's parameters; with atomic_dq, the NaN-poisoned workspace the plan must zero.
  VarlenAttentionBwdParams bwd(bool atomic_dq) {
    return {p, dout.data(), delta.data(), dq.data(), dk.data(), dv.data(), atomic_dq ? dq_accum.data() : nullptr};
  }

  static constexpr uint16_t kNan = E::kDtype ? 0x7E00 : 0x7FC0;
  std::vector<int32_t> cu;
  int total = 0, max_len = 0;
  std::vector<uint16_t> q, k, v, dout, o, dq, dk, dv;
  std::vector<float> lse, delta, dq_accum;
  VarlenAttentionParams p{};
};

template <int D, typename E>
struct CpuExec {
  const VarlenAttentionBwdParams& bp;

  template <typename Entry>
  void tile_pass(Grid g, int threads, size_t smem, Entry entry) {
    launch_on_cpu({int(g.x), int(g.y)}, threads, smem, [&](char* s) { entry(s, block_x(), block_y(), int(g.y)); });
  }
  template <typename Block>
  void row_pass(Grid g, Block block) {
    launch_on_cpu({int(g.x), int(g.y)}, kBwdThreads, 0, [&](char*) { block(block_x()); });
  }
  void fwd(Grid g) {
    tile_pass(g, kFwdThreads, fwd_smem_bytes<D>(), [&](auto... a) { varlen_attention_fwd_entry<D, E>(bp.fwd, a...); });
  }
  void zero_dq_accum() {
    std::fill(bp.dq_accum, bp.dq_accum + size_t(bp.fwd.total) * bp.fwd.num_heads * bp.fwd.head_dim, 0.f);
  }
  void delta(Grid g) { row_pass(g, [&](int b) { varlen_attention_bwd_delta_block<D, E>(bp, b); }); }
  template <int kPart, bool kAtomicDq>
  void dkdv(Grid g) {
    tile_pass(g, kBwdThreads, bwd_smem_bytes<D>(),
              [&](auto... a) { varlen_attention_bwd_dkdv_entry<D, E, kPart, kAtomicDq>(bp, a...); });
  }
  void dq(Grid g) {
    tile_pass(g, kBwdThreads, bwd_smem_bytes<D>(), [&](auto... a) { varlen_attention_bwd_dq_entry<D, E>(bp, a...); });
  }
  void dq_convert(Grid g) { row_pass(g, [&](int b) { varlen_attention_bwd_dq_convert_block<E>(bp, b); }); }
};

}  // namespace longalign::kernels::testing
