// CRC-32C (Castagnoli): integrity checks for packs, checkpoints and tfevents records.
#pragma once
#include <cstddef>
#include <cstdint>

namespace longalign {

// Continues a running CRC: crc32c(b, crc32c(a)) == crc32c(a ++ b). Hardware-accelerated where
// the CPU allows.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// The table-driven version, always: the oracle for the accelerated one.
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);

}  // namespace longalign
