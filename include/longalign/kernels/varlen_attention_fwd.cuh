// FlashAttention-2-style forward over packed sequences, written against device_api.hpp so the
// same source runs under nvcc and in the CPU harness. A block of 8 warps owns 128 query rows of
// one (sequence, head); each warp owns 16 rows, and each key/value tile loaded serves all 128.
// Key/value tiles of 64 rows are staged in shared memory, double-buffered: the cp.async copies of
// tile n + 1 are in flight while tile n is computed, into swizzled tiles (smem_tile.cuh).
// S = QK^T and O += PV run on mma.sync m16n8k16 (bf16 or fp16 in, fp32 accumulate) with operands
// from ldmatrix; the softmax is online, in fp32, with exp2. Causal masking is applied only on
// tiles that cross a warp's diagonal, a warp skips tiles wholly past its diagonal, and blocks past
// a sequence's end exit at once. O leaves through shared memory in coalesced 16-byte stores.
#pragma once
#include <cmath>
#include <cstdint>

#include "longalign/kernels/device_api.hpp"
#include "longalign/kernels/element.cuh"
#include "longalign/kernels/smem_tile.cuh"
#include "longalign/kernels/varlen_attention_params.hpp"

namespace longalign::kernels {

constexpr int kFwdRows = 2 * kTileRows, kFwdCols = kTileRows, kFwdThreads = 2 * kBlockThreads;
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;  // scores in base 2, lse in base e

LA_DEVICE int seq_len(const VarlenAttentionParams& p, int b) { return p.cu_seqlens[b + 1] - p.cu_seqlens[b]; }

// Q (reused for O on the way out), then two stages of (K, V).
template <int D>
constexpr int fwd_smem_bytes() { return (kFwdRows + 4 * kFwdCols) * D * 2; }

// Key/value tile n0 of a two-stage (K, V) buffer: stage (n0 / 64) % 2, K first, then V.
template <int D>
LA_DEVICE uint16_t* kv_stage(uint16_t* sKV, int n0) { return sKV + ((n0 / kTileRows) % 2) * 2 * kTileRows * D; }

// Issues the copies of key/value tile n0 of KV head kvh into its stage (Threads threads).
template <int D, int Threads>
LA_DEVICE void load_kv_async(uint16_t* sKV, const VarlenAttentionParams& p, int64_t start, int n0, int len, int kvh) {
  uint16_t* sK = kv_stage<D>(sKV, n0);
  load_tile_async<D, kTileRows, Threads>(sK, p.k, start, n0, len, p.k_row_stride, kvh * p.k_head_stride);
  load_tile_async<D, kTileRows, Threads>(sK + kTileRows * D, p.v, start, n0, len, p.v_row_stride, kvh * p.v_head_stride);
}

// The pipeline step at key tile n0: prefetches tile n0 + 64 (if before n_end) into the other
// stage, which the caller stopped reading at its previous barrier, then waits for this thread's
// copies of tile n0. The caller's barrier after this makes every thread's copies visible.
template <int D, int Threads>
LA_DEVICE void advance_kv_pipeline(uint16_t* sKV, const VarlenAttentionParams& p, int64_t start, int n0, int n_end,
                                   int len, int kvh) {
  if (n0 + kTileRows < n_end) {
    load_kv_async<D, Threads>(sKV, p, start, n0 + kTileRows, len, kvh);
    cp_async_commit();
    cp_async_wait<1>();
  } else {
    cp_async_wait<0>();
  }
}

// Runs Block(params, smem, tile, seq_head) for the tiles of Rows rows first, first + stride, ...
// that start before `len`, with a barrier after each (the next reuses the shared memory).
// Kernels launch max_seqlen / Rows blocks per sequence and head (at most 65535); with this loop
// a max_seqlen below the true longest length, or beyond the cap, costs time, never rows. Block is a template
// argument, not a callable object, so the call inlines (a lambda call spilled registers).
template <auto Block, int Rows, typename Params>
LA_DEVICE void for_each_tile(const Params& p, char* smem, int len, int first, int stride, int seq_head) {
  for (int tile = first; tile * Rows < len; tile += stride) {
    Block(p, smem, tile, seq_head);
    sync_threads();
  }
}

// One block's work; `smem` holds fwd_smem_bytes<D>() bytes. E: Bf16 or F16 (element.cuh).
template <int D, typename E = Bf16>
LA_DEVICE void varlen_attention_fwd_block(const VarlenAttentionParams& p, char* smem, int tile, int seq_head) {
  const int b = seq_head / p.num_heads, h = seq_head % p.num_heads;
  const int kvh = h / (p.num_heads / p.num_kv_heads);
  const int64_t start = p.cu_seqlens[b];
  const int len = seq_len(p, b);
  const int m0 = tile * kFwdRows;
  if (m0 >= len) return;  // past this sequence's end
  const int tid = thread_x(), warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
  uint16_t* sQ = reinterpret_cast<uint16_t*>(smem);
  uint16_t* sKV = sQ + kFwdRows * D;  // two stages of (K, V)
  const int w0 = m0 + warp * 16;      // this warp's first query row
  const int n_end = len < m0 + kFwdRows ? len : m0 + kFwdRows;  // causal: no key beyond the last query

  const float scale_log2 = p.scale * kLog2e;
  float acc[D / 8][4];
  for (int j = 0; j < D / 8; ++j)
    for (int i = 0; i < 4; ++i) acc[j][i] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};  // rows g and g + 8 of this warp
  const int qrow[2] = {w0 + g, w0 + g + 8};

  load_tile_async<D, kFwdRows, kFwdThreads>(sQ, p.q, start, m0, len, p.q_row_stride, h * p.q_head_stride);
  load_kv_async<D, kFwdThreads>(sKV, p, start, 0, len, kvh);
  cp_async_commit();
  for (int n0 = 0; n0 < n_end; n0 += kFwdCols) {
    advance_kv_pipeline<D, kFwdThreads>(sKV, p, start, n0, n_end, len, kvh);
    sync_threads();  // every thread's copies of this tile have landed
    // A warp whose rows all precede this tile (causal) or lie past the sequence's end has nothing
    // to add (tiles start at multiples of 64, warps at multiples of 16); it still takes part in
    // the loads and barriers.
    if (n0 <= w0 && w0 < len) {
      const uint16_t* sK = kv_stage<D>(sKV, n0);
      const uint16_t* sV = sK + kFwdCols * D;
      // S = Q K^T for this warp's 16 rows x 64 columns: 8 tiles of 16x8.
      float s[kFwdCols / 8][4];
      for (int j = 0; j < kFwdCols / 8; ++j)
        for (int i = 0; i < 4; ++i) s[j][i] = 0.f;
      for (int kc = 0; kc < D; kc += 16) {
        uint32_t a[4];
        ldmatrix_x4(a, frag_rows_major<D>(sQ, warp * 16, kc, lane));
        for (int j = 0; j < kFwdCols / 8; j += 2) {  // two 8-column tiles per ldmatrix.x4
          uint32_t bk[4];
          ldmatrix_x4(bk, frag_cols_major<D>(sK, j * 8, kc, lane));
          const uint32_t b0[2] = {bk[0], bk[1]}, b1[2] = {bk[2], bk[3]};
          E::mma(s[j], a, b0, s[j]);
          E::mma(s[j + 1], a, b1, s[j + 1]);
        }
      }
      // Scale, mask (tiles crossing this warp's diagonal, and the sequence end), online softmax.
      const bool diagonal = n0 + kFwdCols - 1 > w0;
      float tile_max[2] = {-INFINITY, -INFINITY};
      for (int j = 0; j < kFwdCols / 8; ++j)
        for (int i = 0; i < 4; ++i) {
          const int col = n0 + j * 8 + 2 * t + (i % 2), r = i / 2;
          float x = s[j][i] * scale_log2;
          if (col >= len || (diagonal && col > qrow[r])) x = -INFINITY;
          s[j][i] = x;
          tile_max[r] = x > tile_max[r] ? x : tile_max[r];
        }
      float corr[2];
      for (int r = 0; r < 2; ++r) {
        for (int m = 1; m <= 2; m *= 2) {  // the 4 lanes of a row are t = 0..3
          const float o = shfl_xor(tile_max[r], m);
          tile_max[r] = o > tile_max[r] ? o : tile_max[r];
        }
        const float new_max = tile_max[r] > row_max[r] ? tile_max[r] : row_max[r];
        corr[r] = new_max == -INFINITY ? 1.f : exp2_fast(row_max[r] - new_max);
        row_max[r] = new_max;
        row_sum[r] *= corr[r];
      }
      for (int j = 0; j < kFwdCols / 8; ++j)
        for (int i = 0; i < 4; ++i) {
          const int r = i / 2;
          const float e = row_max[r] == -INFINITY ? 0.f : exp2_fast(s[j][i] - row_max[r]);
          s[j][i] = e;
          row_sum[r] += e;
        }
      for (int j = 0; j < D / 8; ++j)
        for (int i = 0; i < 4; ++i) acc[j][i] *= corr[i / 2];
      // O += P V: P's C fragments of two adjacent column tiles form one A fragment (k = 16).
      for (int kc = 0; kc < kFwdCols / 8; kc += 2) {
        const uint32_t a[4] = {pack2<E>(s[kc][0], s[kc][1]), pack2<E>(s[kc][2], s[kc][3]),
                               pack2<E>(s[kc + 1][0], s[kc + 1][1]), pack2<E>(s[kc + 1][2], s[kc + 1][3])};
        for (int j = 0; j < D / 8; j += 2) {
          uint32_t bv[4];  // V rows kc*8 .. kc*8+15, columns j*8 .. j*8+15, transposed into the col operand
          ldmatrix_x4_trans(bv, frag_rows_major<D>(sV, kc * 8, j * 8, lane));
          const uint32_t b0[2] = {bv[0], bv[1]}, b1[2] = {bv[2], bv[3]};
          E::mma(acc[j], a, b0, acc[j]);
          E::mma(acc[j + 1], a, b1, acc[j + 1]);
        }
      }
    }
    sync_threads();  // this stage is refilled by the next iteration's prefetch
  }
  for (int r = 0; r < 2; ++r) {  // full row sums across the 4 lanes of each row
    row_sum[r] += shfl_xor(row_sum[r], 1);
    row_sum[r] += shfl_xor(row_sum[r], 2);
  }
  // O, normalized, into this warp's rows of the (now free) Q tile, then out in 16-byte chunks.
  for (int j = 0; j < D / 8; ++j)
    for (int r = 0; r < 2; ++r) {
      const float inv = row_sum[r] > 0.f ? 1.f / row_sum[r] : 0.f;
      const uint32_t two = pack2<E>(acc[j][2 * r] * inv, acc[j][2 * r + 1] * inv);
      *reinterpret_cast<uint32_t*>(sQ + swz<D>(warp * 16 + g + 8 * r, j * 8 + 2 * t)) = two;
    }
  sync_threads();
  store_tile<D, kFwdRows, kFwdThreads>(p.o, sQ, start, m0, len, p.o_row_stride, h * p.o_head_stride);
  if (t == 0)
    for (int r = 0; r < 2; ++r)
      if (qrow[r] < len)
        p.lse[int64_t(h) * p.total + start + qrow[r]] = (row_max[r] + log2f(row_sum[r])) * kLn2;
}

}  // namespace longalign::kernels
