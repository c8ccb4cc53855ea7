// FlashAttention-2-style backward over packed sequences, written against device_api.hpp (runs
// under nvcc and in the CPU harness). P is recomputed from the forward's logsumexp.
//   dkdv pass: a block owns 64 keys of one (sequence, KV head) and loops over every query head
//              of the GQA group and every query tile at or after the diagonal, accumulating dK
//              and dV in registers: the group reduction happens without expanded K/V. By
//              default it also adds dS K to an fp32 dQ workspace with atomics (the order of
//              those additions, hence the last bits of dQ, varies run to run);
//   dq pass:   the deterministic alternative: a block owns 64 queries of one (sequence, head)
//              and loops over key tiles up to the diagonal, recomputing S and dP.
// delta = rowsum(dO * O) is the usual preprocess (varlen_attention_bwd_delta_block). The tiles a
// block loops over (Q and dO in the dkdv pass, K and V in the dq pass) are double-buffered with
// cp.async into swizzled shared memory, as in the forward.
#pragma once
#include <cmath>
#include <cstdint>

#include "longalign/kernels/device_api.hpp"
#include "longalign/kernels/smem_tile.cuh"
#include "longalign/kernels/varlen_attention_fwd.cuh"
#include "longalign/kernels/varlen_attention_params.hpp"

namespace longalign::kernels {

constexpr int kBwdTile = kTileRows, kBwdThreads = kBlockThreads;

// dkdv pass: K, V, two stages of (Q, dO, lse, delta), then dS^T for the atomic dQ ([64 keys]
// x [32 queries], rows padded to 40 elements = 80 bytes, which puts the 8 rows of every ldmatrix
// and of every fragment store in distinct banks). The dq pass (Q, dO, two stages of K and V)
// needs less. One size serves every launch.
constexpr int kDsStride = 40;
template <int D>
constexpr int kBwdQStageBytes = 2 * kBwdTile * D * 2 + 2 * kBwdTile * 4;  // a variable: usable in device code
template <int D>
constexpr int kBwdDsOffset = 2 * kBwdTile * D * 2 + 2 * kBwdQStageBytes<D>;
template <int D>
constexpr int bwd_smem_bytes() { return kBwdDsOffset<D> + kBwdTile * kDsStride * 2; }

namespace bwd_detail {

// acc[16 x 8N] (N C tiles) = rows [row0, row0+16) of tile `a` times rows [b_row0, b_row0 + 8N)
// of tile `b` transposed (both swizzled [64][D] tiles): acc[i][j] = sum_d a[row0 + i][d] * b[b_row0 + j][d].
template <int D, typename E, int N>
LA_DEVICE void mma_rows_by_rows(float (&acc)[N][4], const uint16_t* a, int row0, const uint16_t* b, int b_row0 = 0) {
  const int lane = thread_x() % 32;
  for (int j = 0; j < N; ++j)
    for (int i = 0; i < 4; ++i) acc[j][i] = 0.f;
  for (int kc = 0; kc < D; kc += 16) {
    uint32_t af[4];
    ldmatrix_x4(af, frag_rows_major<D>(a, row0, kc, lane));
    for (int j = 0; j < N; j += 2) {
      uint32_t bf[4];
      ldmatrix_x4(bf, frag_cols_major<D>(b, b_row0 + j * 8, kc, lane));
      const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
      E::mma(acc[j], af, b0, acc[j]);
      E::mma(acc[j + 1], af, b1, acc[j + 1]);
    }
  }
}

// out[16 x D] += p[16 x 8K] (fp32 C tiles, rounded to E as A fragments) times rows
// [m_row0, m_row0 + 8K) of tile m ([64][D]).
template <int D, typename E, int K>
LA_DEVICE void mma_p_by_rows(float (&out)[D / 8][4], const float (&p)[K][4], const uint16_t* m, int m_row0 = 0) {
  const int lane = thread_x() % 32;
  for (int kc = 0; kc < K; kc += 2) {
    const uint32_t a[4] = {pack2<E>(p[kc][0], p[kc][1]), pack2<E>(p[kc][2], p[kc][3]),
                           pack2<E>(p[kc + 1][0], p[kc + 1][1]), pack2<E>(p[kc + 1][2], p[kc + 1][3])};
    for (int j = 0; j < D / 8; j += 2) {
      uint32_t bf[4];
      ldmatrix_x4_trans(bf, frag_rows_major<D>(m, m_row0 + kc * 8, j * 8, lane));
      const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
      E::mma(out[j], a, b0, out[j]);
      E::mma(out[j + 1], a, b1, out[j + 1]);
    }
  }
}

// Issues the copies of one dkdv stage: query tile m0 of head h (Q, dO) with its lse and delta,
// zero past the sequence's end. Threads 0-63 copy lse, 64-127 delta, 4 bytes each.
template <int D>
LA_DEVICE void load_q_stage_async(const VarlenAttentionBwdParams& bp, char* stage, int64_t start, int m0, int len,
                                  int h) {
  const VarlenAttentionParams& p = bp.fwd;
  uint16_t* sQ = reinterpret_cast<uint16_t*>(stage);
  load_tile_async<D>(sQ, p.q, start, m0, len, p.q_row_stride, h * p.q_head_stride);
  load_tile_async<D>(sQ + kBwdTile * D, bp.dout, start, m0, len, p.o_row_stride, h * p.o_head_stride);
  static_assert(kBwdThreads == 2 * kBwdTile, "one lse or delta value per thread");
  const int i = thread_x() % kBwdTile;
  const bool valid = m0 + i < len;
  const int64_t at = int64_t(h) * p.total + start + (valid ? m0 + i : 0);
  float* dst = reinterpret_cast<float*>(sQ + 2 * kBwdTile * D) + thread_x();  // lse[64], then delta[64]
  cp_async_4(dst, thread_x() < kBwdTile ? p.lse + at : bp.delta + at, valid);
}

// dQ[32 queries x D] += dS (32 queries x 64 keys) K for queries [q0, q0 + 32) of head h, with
// dS^T already in sDS ([64 keys][kDsStride], written by all 4 warps). Warp w takes 16 queries
// ((w % 2) * 16) x half of D ((w / 2) * D / 2) and adds its fp32 result to dq_accum atomically:
// the blocks of every key tile contribute to the same rows.
template <int D, typename E>
LA_DEVICE void atomic_dq_from_ds(const VarlenAttentionBwdParams& bp, const uint16_t* sDS, const uint16_t* sK,
                                 int64_t start, int q0, int len, int h) {
  const VarlenAttentionParams& p = bp.fwd;
  const int warp = thread_x() / 32, lane = thread_x() % 32, g = lane / 4, t = lane % 4;
  const int qm = (warp % 2) * 16, d0 = (warp / 2) * (D / 2);
  float acc[D / 16][4];
  for (int j = 0; j < D / 16; ++j)
    for (int i = 0; i < 4; ++i) acc[j][i] = 0.f;
  for (int kk = 0; kk < kBwdTile; kk += 16) {
    uint32_t a[4];  // dS[queries][keys] from the transposed store: .trans, matrices (q+0,k+0) (q+8,k+0) (q+0,k+8) (q+8,k+8)
    ldmatrix_x4_trans(a, sDS + (kk + lane % 8 + 8 * (lane / 16)) * kDsStride + qm + 8 * ((lane / 8) % 2));
    for (int j = 0; j < D / 16; j += 2) {
      uint32_t bf[4];
      ldmatrix_x4_trans(bf, frag_rows_major<D>(sK, kk, d0 + j * 8, lane));
      const uint32_t b0[2] = {bf[0], bf[1]}, b1[2] = {bf[2], bf[3]};
      E::mma(acc[j], a, b0, acc[j]);
      E::mma(acc[j + 1], a, b1, acc[j + 1]);
    }
  }
  for (int j = 0; j < D / 16; ++j)
    for (int i = 0; i < 4; ++i) {
      const int row = q0 + qm + g + 8 * (i / 2), col = d0 + j * 8 + 2 * t + (i % 2);
      if (row < len) atomic_add_f32(bp.dq_accum + (start + row) * p.q_row_stride + h * p.q_head_stride + col, acc[j][i]);
    }
}

}  // namespace bwd_detail

// Which gradients a dkdv block computes: both, or one of them per launch where the dK and dV
// accumulators together would not fit the register file without spills (ptxas, fused, query
// tile in halves: D = 128 spilled 24-44 bytes on sm_80/sm_90; D = 64 fits in either type).
constexpr int kDkDv = 0, kDvOnly = 1, kDkOnly = 2;
template <int D, typename E>
constexpr bool dkdv_split() { return D > 64; }

// dkdv pass for one block: key tile `tile` of (sequence, KV head) `seq_head`. With kAtomicDq
// (only where dS is computed, i.e. kPart != kDvOnly) it also adds dS K to bp.dq_accum.
template <int D, typename E = Bf16, int kPart = kDkDv, bool kAtomicDq = false>
LA_DEVICE void varlen_attention_bwd_dkdv_block(const VarlenAttentionBwdParams& bp, char* smem, int tile, int seq_head) {
  using namespace bwd_detail;
  static_assert(!(kAtomicDq && kPart == kDvOnly), "the dQ contribution needs dS, which a dV-only block skips");
  const VarlenAttentionParams& p = bp.fwd;
  const int b = seq_head / p.num_kv_heads, kvh = seq_head % p.num_kv_heads, group = p.num_heads / p.num_kv_heads;
  const int64_t start = p.cu_seqlens[b];
  const int len = seq_len(p, b);
  const int n0 = tile * kBwdTile;
  if (n0 >= len) return;
  const int tid = thread_x(), warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  uint16_t* sK = reinterpret_cast<uint16_t*>(smem);
  uint16_t* sV = sK + kBwdTile * D;
  constexpr int kStage = kBwdQStageBytes<D>;
  char* stages = reinterpret_cast<char*>(sV + kBwdTile * D);  // two stages of kStage bytes
  const float scale_log2 = p.scale * kLog2e;
  float dk[D / 8][4], dv[D / 8][4];
  for (int j = 0; j < D / 8; ++j)
    for (int i = 0; i < 4; ++i) dk[j][i] = dv[j][i] = 0.f;
  const int key[2] = {n0 + warp * 16 + g, n0 + warp * 16 + g + 8};  // this lane's key rows
  // Work items: every query head of the group x every query tile at or after the diagonal.
  const int q_tiles = (len - n0 + kBwdTile - 1) / kBwdTile, items = group * q_tiles;

  load_tile_async<D>(sK, p.k, start, n0, len, p.k_row_stride, kvh * p.k_head_stride);
  load_tile_async<D>(sV, p.v, start, n0, len, p.v_row_stride, kvh * p.v_head_stride);
  load_q_stage_async<D>(bp, stages, start, n0, len, kvh * group);
  cp_async_commit();
  for (int it = 0; it < items; ++it) {
    const int m0 = n0 + (it % q_tiles) * kBwdTile;
    if (it + 1 < items) {
      load_q_stage_async<D>(bp, stages + ((it + 1) % 2) * kStage, start,
                            n0 + ((it + 1) % q_tiles) * kBwdTile, len, kvh * group + (it + 1) / q_tiles);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    sync_threads();
    const uint16_t* sQ = reinterpret_cast<const uint16_t*>(stages + (it % 2) * kStage);
    const uint16_t* sO = sQ + kBwdTile * D;  // dO
    const float* sL = reinterpret_cast<const float*>(sO + kBwdTile * D);  // lse per query row
    const float* sD = sL + kBwdTile;                                       // delta per query row
    // The query tile in two halves of 32, as in the dq pass, to bound the live fragments.
    LA_NO_UNROLL
    for (int half = 0; half < kBwdTile; half += 32) {
      float pt[4][4];  // P^T for this warp's 16 keys x 32 queries
      mma_rows_by_rows<D, E, 4>(pt, sK, warp * 16, sQ, half);
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
          const int q = half + j * 8 + 2 * t + (i % 2), kr = key[i / 2];
          const bool live = m0 + q < len && m0 + q >= kr && kr < len;  // causal: query >= key
          pt[j][i] = live ? exp2_fast(pt[j][i] * scale_log2 - sL[q] * kLog2e) : 0.f;
        }
      if constexpr (kPart != kDkOnly) mma_p_by_rows<D, E, 4>(dv, pt, sO, half);
      if constexpr (kPart != kDvOnly) {
        float dst[4][4];  // dP^T, then dS^T = P^T * (dP^T - delta)
        mma_rows_by_rows<D, E, 4>(dst, sV, warp * 16, sO, half);
        for (int j = 0; j < 4; ++j)
          for (int i = 0; i < 4; ++i) dst[j][i] = pt[j][i] * (dst[j][i] - sD[half + j * 8 + 2 * t + (i % 2)]);
        mma_p_by_rows<D, E, 4>(dk, dst, sQ, half);
        if constexpr (kAtomicDq) {
          uint16_t* sDS = reinterpret_cast<uint16_t*>(smem + kBwdDsOffset<D>);
          for (int j = 0; j < 4; ++j)
            for (int r = 0; r < 2; ++r)
              *reinterpret_cast<uint32_t*>(sDS + (warp * 16 + g + 8 * r) * kDsStride + j * 8 + 2 * t) =
                  pack2<E>(dst[j][2 * r], dst[j][2 * r + 1]);
          sync_threads();
          atomic_dq_from_ds<D, E>(bp, sDS, sK, start, m0 + half, len, kvh * group + it / q_tiles);
          sync_threads();  // sDS is rewritten by the next half
        }
      }
    }
    sync_threads();  // this stage is refilled by the next iteration's prefetch
  }
  for (int j = 0; j < D / 8; ++j)
    for (int i = 0; i < 4; ++i) {
      const int row = key[i / 2], col = j * 8 + 2 * t + (i % 2);
      if (row >= len) continue;
      if constexpr (kPart != kDvOnly)
        bp.dk[(start + row) * p.k_row_stride + kvh * p.k_head_stride + col] = E::from_f32(dk[j][i] * p.scale);
      if constexpr (kPart != kDkOnly) bp.dv[(start + row) * p.v_row_stride + kvh * p.v_head_stride + col] = E::from_f32(dv[j][i]);
    }
}

// dq pass for one block: query tile `tile` of (sequence, head) `seq_head`.
template <int D, typename E = Bf16>
LA_DEVICE void varlen_attention_bwd_dq_block(const VarlenAttentionBwdParams& bp, char* smem, int tile, int seq_head) {
  using namespace bwd_detail;
  const VarlenAttentionParams& p = bp.fwd;
  const int b = seq_head / p.num_heads, h = seq_head % p.num_heads, kvh = h / (p.num_heads / p.num_kv_heads);
  const int64_t start = p.cu_seqlens[b];
  const int len = seq_len(p, b);
  const int m0 = tile * kBwdTile;
  if (m0 >= len) return;
  const int tid = thread_x(), warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  uint16_t* sQ = reinterpret_cast<uint16_t*>(smem);
  uint16_t* sO = sQ + kBwdTile * D;   // dO
  uint16_t* sKV = sO + kBwdTile * D;  // two stages of (K, V)
  const float scale_log2 = p.scale * kLog2e;
  const int qrow[2] = {m0 + warp * 16 + g, m0 + warp * 16 + g + 8};
  float lse2[2], delta[2];
  for (int r = 0; r < 2; ++r) {
    const bool in = qrow[r] < len;
    lse2[r] = in ? p.lse[int64_t(h) * p.total + start + qrow[r]] * kLog2e : INFINITY;
    delta[r] = in ? bp.delta[int64_t(h) * p.total + start + qrow[r]] : 0.f;
  }
  float dq[D / 8][4];
  for (int j = 0; j < D / 8; ++j)
    for (int i = 0; i < 4; ++i) dq[j][i] = 0.f;
  const int n_end = len < m0 + kBwdTile ? len : m0 + kBwdTile;

  load_tile_async<D>(sQ, p.q, start, m0, len, p.q_row_stride, h * p.q_head_stride);
  load_tile_async<D>(sO, bp.dout, start, m0, len, p.o_row_stride, h * p.o_head_stride);
  load_kv_async<D, kBwdThreads>(sKV, p, start, 0, len, kvh);
  cp_async_commit();
  for (int n0 = 0; n0 < n_end; n0 += kBwdTile) {
    advance_kv_pipeline<D, kBwdThreads>(sKV, p, start, n0, n_end, len, kvh);
    sync_threads();
    const uint16_t* sK = kv_stage<D>(sKV, n0);
    const uint16_t* sV = sK + kBwdTile * D;
    // The key tile in two halves of 32: S and dP for half the keys at a time keep the dQ
    // accumulators, S and dP within the register file at D = 128.
    LA_NO_UNROLL
    for (int half = 0; half < kBwdTile; half += 32) {
      float s[4][4], dp[4][4];
      mma_rows_by_rows<D, E, 4>(s, sQ, warp * 16, sK, half);
      mma_rows_by_rows<D, E, 4>(dp, sO, warp * 16, sV, half);
      for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i) {
          const int col = n0 + half + j * 8 + 2 * t + (i % 2), r = i / 2;
          const bool live = col < len && col <= qrow[r] && qrow[r] < len;
          const float pr = live ? exp2_fast(s[j][i] * scale_log2 - lse2[r]) : 0.f;
          s[j][i] = pr * (dp[j][i] - delta[r]);  // dS
        }
      mma_p_by_rows<D, E, 4>(dq, s, sK, half);
    }
    sync_threads();
  }
  for (int j = 0; j < D / 8; ++j)
    for (int i = 0; i < 4; ++i) {
      const int row = qrow[i / 2], col = j * 8 + 2 * t + (i % 2);
      if (row < len) bp.dq[(start + row) * p.q_row_stride + h * p.q_head_stride + col] = E::from_f32(dq[j][i] * p.scale);
    }
}

// dq[i] = dq_accum[i] * scale in the element type, for the elements [block * 128, + 128) of
// the contiguous [total, num_heads, head_dim] tensors.
template <typename E = Bf16>
LA_DEVICE void varlen_attention_bwd_dq_convert_block(const VarlenAttentionBwdParams& bp, int block) {
  const VarlenAttentionParams& p = bp.fwd;
  const int64_t i = int64_t(block) * kBwdThreads + thread_x();
  if (i < p.total * p.num_heads * p.head_dim) bp.dq[i] = E::from_f32(bp.dq_accum[i] * p.scale);
}

// delta[h][token] = sum_d dO * O, for the rows [first, first + kBwdThreads) of the flattened
// (token, head) index space; one thread per row.
template <int D, typename E = Bf16>
LA_DEVICE void varlen_attention_bwd_delta_block(const VarlenAttentionBwdParams& bp, int block) {
  const VarlenAttentionParams& p = bp.fwd;
  const int64_t row = int64_t(block) * kBwdThreads + thread_x();
  if (row >= p.total * p.num_heads) return;
  const int64_t tok = row / p.num_heads;
  const int h = int(row % p.num_heads);
  const uint16_t* o = p.o + tok * p.o_row_stride + h * p.o_head_stride;
  const uint16_t* d = bp.dout + tok * p.o_row_stride + h * p.o_head_stride;
  float acc = 0.f;
  for (int c = 0; c < D; c += 8) {  // 16-byte loads (rows are 16-byte aligned, as for cp.async)
    alignas(16) uint16_t ov[8], dv[8];
    copy_16(ov, o + c);
    copy_16(dv, d + c);
    for (int i = 0; i < 8; ++i) acc += E::to_f32(ov[i]) * E::to_f32(dv[i]);
  }
  bp.delta[int64_t(h) * p.total + tok] = acc;
}

}  // namespace longalign::kernels
