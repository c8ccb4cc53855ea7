// The guard behind `attention.backend: auto`. Before the project's CUDA kernel serves a (device,
// dtype, head_dim, heads, kv_heads) for the first time, a child process (`longalign
// attention-self-check`, hidden) checks it against the reference op and times it beside
// FlashAttention-2. A child, because a fault in an unproven kernel (illegal address, misaligned
// access) ruins the CUDA context of the process it happens in: catching it and falling back
// in-process would leave training on a dead device. `auto` uses the kernel only when the child
// reports it correct and at least as fast as FlashAttention-2 (fwd+bwd), or correct where
// attention.deterministic asks for it; one log line says why.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "longalign/core/subprocess.hpp"

namespace longalign::ops {

// What the child measured. correct: within tolerance of the reference on every output and
// gradient, and two deterministic runs bitwise equal. speedup: FlashAttention-2 fwd+bwd time /
// the kernel's, on a 16k-token pack with the model's heads.
struct SelfCheckReport {
  bool correct = false;
  double error = 0, tolerance = 0, speedup = 0;
  std::string detail;  // what failed, when something did
};

// The child's one line on stdout, and its reading (nullopt-like: correct=false, detail set, when
// no such line is found).
std::string format_self_check_report(const SelfCheckReport& r);
SelfCheckReport parse_self_check_report(const std::string& output);

struct KernelVerdict {
  bool correct = false;     // the child ran and the kernel matched the reference
  bool use_kernel = false;  // correct, and at least as fast as FlashAttention-2
  std::string message;  // the line logged: the measured error and speed ratio, or how the child ended
};

// The decision from the child's end and output (pure; tested with children that crash, hang or
// report). timeout_s is named in the message of a child that timed out.
KernelVerdict judge_self_check(const ProcessResult& child, double timeout_s);

// The command that runs the check for these shapes: the `longalign` binary (LONGALIGN_EXE, else
// this program when it is longalign, else the longalign beside it). Empty when none is found.
std::vector<std::string> self_check_command(int device, at::ScalarType dtype, int64_t head_dim, int64_t heads,
                                            int64_t kv_heads);

// Runs the check once per (device, dtype, head_dim, heads, kv_heads) and remembers the verdict
// (resolve_auto_backend in varlen_attention.hpp decides from it and logs both).
KernelVerdict cuda_kernel_verdict(const at::Tensor& q, int64_t kv_heads);

// The child's work (the hidden subcommand): check and time on one device. Throws where this
// build has no CUDA kernels or the device is absent.
SelfCheckReport run_attention_self_check(int device, at::ScalarType dtype, int64_t head_dim, int64_t heads,
                                         int64_t kv_heads);

}  // namespace longalign::ops
