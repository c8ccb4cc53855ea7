// The device rule of the attention kernels (see the header), computed from the kernels' own
// shared-memory layouts so that a layout change moves the rule with it.
#include "longalign/kernels/device_support.hpp"

#include <algorithm>

#include "longalign/kernels/varlen_attention_bwd.cuh"
#include "longalign/kernels/varlen_attention_fwd.cuh"

namespace longalign::kernels {
namespace {

std::string kib(int64_t bytes) {
  const int64_t tenths = (bytes * 10 + 512) / 1024;
  return std::to_string(tenths / 10) + (tenths % 10 ? "." + std::to_string(tenths % 10) : "") + " KiB";
}

}  // namespace

int varlen_attention_smem_bytes(int head_dim) {
  switch (head_dim) {
    case 64: return std::max(fwd_smem_bytes<64>(), bwd_smem_bytes<64>());
    case 128: return std::max(fwd_smem_bytes<128>(), bwd_smem_bytes<128>());
    default: return 0;
  }
}

std::string varlen_attention_device_problem(int major, int minor, int64_t smem_optin_bytes, int head_dim) {
  const std::string cc = "compute capability " + std::to_string(major) + "." + std::to_string(minor);
  if (major < 8) return cc + ": the kernels need 8.0 or later (cp.async, ldmatrix, bf16 mma)";
  const int need = varlen_attention_smem_bytes(head_dim);
  if (need == 0) return "head_dim " + std::to_string(head_dim) + ": the kernels serve 64 and 128";
  if (need > smem_optin_bytes)
    return "head_dim " + std::to_string(head_dim) + " needs " + kib(need) + " of shared memory per block; this " + cc +
           " device grants " + kib(smem_optin_bytes);
  return "";
}

}  // namespace longalign::kernels
