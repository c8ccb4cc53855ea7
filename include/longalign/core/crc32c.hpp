// CRC-32C (Castagnoli): integrity checks for on-disk indexes and, later, tfevents records.
#pragma once
#include <cstddef>
#include <cstdint>

namespace longalign {

// Continues a running CRC: crc32c(b, crc32c(a)) == crc32c(a ++ b).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

}  // namespace longalign
