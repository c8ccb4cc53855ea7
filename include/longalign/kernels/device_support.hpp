// Which GPUs can run the project's attention kernels: they use cp.async, ldmatrix and bf16 mma
// (compute capability 8.0 and later) and ask for more than the default 48 KB of shared memory per
// block, which some cards of a supported generation cannot grant (sm_86/sm_89 allow 99 KB; the
// head_dim-128 backward needs 102 KB). Plain numbers in, so the rule is testable without a GPU.
#pragma once
#include <cstdint>
#include <string>

namespace longalign::kernels {

// Dynamic shared memory one block asks for, the most over the forward and backward tile passes;
// 0 for an unsupported head_dim.
int varlen_attention_smem_bytes(int head_dim);

// Empty when the kernels for head_dim can run on a device of compute capability major.minor that
// grants smem_optin_bytes of shared memory per block (cudaDevAttrMaxSharedMemoryPerBlockOptin);
// otherwise why not, in words.
std::string varlen_attention_device_problem(int major, int minor, int64_t smem_optin_bytes, int head_dim);

}  // namespace longalign::kernels
