// Shared-memory tiles of the attention kernels: 64 (or 128) rows of one head, D 16-bit elements per row,
// filled with cp.async and read with ldmatrix. Rows are 128 or 256 bytes, so an unswizzled tile
// puts the 8 rows an ldmatrix matrix reads in the same 4 banks (8-way conflicts). The layout XORs
// each 16-byte chunk index with row % 8: the 8 rows of any matrix then hit 8 distinct chunk
// slots, i.e. all 32 banks, for reads of any column block, plain or transposed.
#pragma once
#include <cstdint>

#include "longalign/kernels/device_api.hpp"

namespace longalign::kernels {

constexpr int kTileRows = 64, kBlockThreads = 128;

// Element index of (row, col) in a swizzled [rows][D] tile. col % 8 is kept, so a
// 16-byte-aligned column block stays contiguous (what ldmatrix and cp.async need).
template <int D>
LA_DEVICE int swz(int row, int col) {
  return row * D + ((((col >> 3) ^ (row & 7)) << 3) | (col & 7));
}

// Issues the copies of rows [r0, r0 + Rows) of one head of a [tokens, heads, D] tensor into a
// swizzled tile, zero-filling rows at or past `len`; all Threads threads of the block take part,
// one 16-byte chunk per copy. The caller commits and waits. Needs 16-byte-aligned rows (the
// torch wrapper guarantees it).
template <int D, int Rows = kTileRows, int Threads = kBlockThreads>
LA_DEVICE void load_tile_async(uint16_t* dst, const uint16_t* src, int64_t start, int r0, int len, int64_t row_stride,
                               int64_t head_off) {
  constexpr int kChunks = D / 8;
  for (int i = thread_x(); i < Rows * kChunks; i += Threads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r0 + r < len;
    const uint16_t* g = src + (start + (valid ? r0 + r : 0)) * row_stride + head_off + c;  // row 0 exists: len > 0
    cp_async_16(dst + swz<D>(r, c), g, valid);
  }
}

// Row address lane `lane` passes to ldmatrix.x4 for the 16x16 block at (row0, col0) of a
// swizzled tile, with matrices ordered (rows +0, cols +0), (+8, +0), (+0, +8), (+8, +8): the A
// operand order, and the .trans B operand order of P V.
template <int D>
LA_DEVICE const uint16_t* frag_rows_major(const uint16_t* tile, int row0, int col0, int lane) {
  return tile + swz<D>(row0 + lane % 8 + 8 * ((lane / 8) % 2), col0 + 8 * (lane / 16));
}
// The same block with matrices ordered (+0, +0), (+0, +8), (+8, +0), (+8, +8): two adjacent
// 8-row B operands (columns of Q K^T), each with its k = 0..7 and 8..15 halves.
template <int D>
LA_DEVICE const uint16_t* frag_cols_major(const uint16_t* tile, int row0, int col0, int lane) {
  return tile + swz<D>(row0 + lane % 8 + 8 * (lane / 16), col0 + 8 * ((lane / 8) % 2));
}

// Copies rows [r0, r0 + Rows) of a swizzled tile out to one head of a [tokens, heads, D] tensor,
// rows before `len` only, in 16-byte chunks: consecutive threads write consecutive chunks of a
// row (coalesced), where storing mma fragments directly would write 4 bytes per lane.
template <int D, int Rows, int Threads>
LA_DEVICE void store_tile(uint16_t* dst, const uint16_t* tile, int64_t start, int r0, int len, int64_t row_stride,
                          int64_t head_off) {
  constexpr int kChunks = D / 8;
  for (int i = thread_x(); i < Rows * kChunks; i += Threads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    if (r0 + r < len) copy_16(dst + (start + r0 + r) * row_stride + head_off + c, tile + swz<D>(r, c));
  }
}

}  // namespace longalign::kernels
