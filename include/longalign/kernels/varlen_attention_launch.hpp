// The launch plan of the attention kernels, shared by the CUDA launchers (src/kernels/*.cu) and
// the CPU tests, so CI runs the very sequence a GPU runs: which kernels, in which order, on which
// grid, and how a block finds its tiles. An executor supplies the launches (<<<>>> on a stream,
// or launch_on_cpu).
#pragma once
#include <cstdint>

#include "longalign/kernels/varlen_attention_bwd.cuh"
#include "longalign/kernels/varlen_attention_fwd.cuh"

namespace longalign::kernels {

struct Grid {
  unsigned x = 1, y = 1;
};

// Grids put (sequence, head) pairs in x, which has no 65535 limit (many short sequences times
// heads can exceed it), and tiles in y: one block per tile of max_seqlen, at least 1 and at
// most 65535; each block loops over any tiles beyond (for_each_tile).
inline unsigned tile_blocks(int max_seqlen, int rows) {
  const int64_t n = (int64_t(max_seqlen) + rows - 1) / rows;
  return unsigned(n < 1 ? 1 : n > 65535 ? 65535 : n);
}
inline unsigned blocks_for(int64_t items, int threads) { return unsigned((items + threads - 1) / threads); }

// Block entry points: block (bx, by) of a grid gy blocks tall. The forward and dq pass start with
// the last tiles (most keys under the causal mask), so long blocks start early and short ones
// fill in behind; in the dk/dv pass the first key tiles carry the most queries.
template <int D, typename E>
LA_DEVICE void varlen_attention_fwd_entry(const VarlenAttentionParams& p, char* smem, int bx, int by, int gy) {
  for_each_tile<varlen_attention_fwd_block<D, E>, kFwdRows>(p, smem, seq_len(p, bx / p.num_heads), gy - 1 - by, gy, bx);
}
template <int D, typename E, int kPart, bool kAtomicDq>
LA_DEVICE void varlen_attention_bwd_dkdv_entry(const VarlenAttentionBwdParams& p, char* smem, int bx, int by, int gy) {
  for_each_tile<varlen_attention_bwd_dkdv_block<D, E, kPart, kAtomicDq>, kBwdTile>(
      p, smem, seq_len(p.fwd, bx / p.fwd.num_kv_heads), by, gy, bx);
}
template <int D, typename E>
LA_DEVICE void varlen_attention_bwd_dq_entry(const VarlenAttentionBwdParams& p, char* smem, int bx, int by, int gy) {
  for_each_tile<varlen_attention_bwd_dq_block<D, E>, kBwdTile>(p, smem, seq_len(p.fwd, bx / p.fwd.num_heads), gy - 1 - by,
                                                              gy, bx);
}

// Exec::fwd(Grid) launches varlen_attention_fwd_entry with kFwdThreads threads and
// fwd_smem_bytes<D>() of shared memory.
// Nothing is launched for zero tokens: an empty grid is a CUDA launch error, and blocks of empty
// sequences would only start to exit.
template <class Exec>
void plan_fwd(const VarlenAttentionParams& p, Exec& ex) {
  if (p.total == 0) return;
  ex.fwd(Grid{unsigned(p.batch * p.num_heads), tile_blocks(p.max_seqlen, kFwdRows)});
}

// The backward: with a dq_accum workspace, zero it, delta, dK/dV blocks that also add dS K to it
// atomically, then convert it to dq; without, delta, dK/dV, then the deterministic dQ pass.
// Exec provides zero_dq_accum(), delta(Grid), dkdv<kPart, kAtomicDq>(Grid), dq(Grid) and
// dq_convert(Grid); all with kBwdThreads threads, the tile passes with bwd_smem_bytes<D>().
template <int D, typename E, class Exec>
void plan_bwd(const VarlenAttentionBwdParams& p, Exec& ex) {
  const VarlenAttentionParams& f = p.fwd;
  if (f.total == 0) return;
  const unsigned tiles = tile_blocks(f.max_seqlen, kBwdTile);
  const Grid kv_grid{unsigned(f.batch * f.num_kv_heads), tiles};
  const bool atomic = p.dq_accum != nullptr;
  if (atomic) ex.zero_dq_accum();
  ex.delta(Grid{blocks_for(f.total * f.num_heads, kBwdThreads), 1});
  if constexpr (dkdv_split<D, E>()) {
    ex.template dkdv<kDvOnly, false>(kv_grid);
    if (atomic) ex.template dkdv<kDkOnly, true>(kv_grid);
    else ex.template dkdv<kDkOnly, false>(kv_grid);
  } else {
    if (atomic) ex.template dkdv<kDkDv, true>(kv_grid);
    else ex.template dkdv<kDkDv, false>(kv_grid);
  }
  if (atomic) ex.dq_convert(Grid{blocks_for(f.total * f.num_heads * f.head_dim, kBwdThreads), 1});
  else ex.dq(Grid{unsigned(f.batch * f.num_heads), tiles});
}

}  // namespace longalign::kernels
