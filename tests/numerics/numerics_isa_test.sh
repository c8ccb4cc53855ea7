#!/usr/bin/env bash
# The numerics-sensitive tests under a forced CPU instruction set: PyTorch's kernels at LEVEL
# (ATEN_CPU_CAPABILITY) and MKL at the matching level (MKL_ENABLE_INSTRUCTIONS), so that a
# tolerance that only holds for one machine's rounding fails here, not on someone else's CPU.
# CI machines differ (AVX-512 Intel, AVX2 AMD); ctest runs this at `default` (no vector
# extensions) and `avx2` beside the normal suite at the machine's own level.
# Usage: numerics_isa_test.sh LEVEL BIN_DIR PYTHON LAUNCH_SH
set -u
level="$1"; bin_dir="$2"; py="$3"; launch="$4"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "$level" in
  default) mkl=SSE4_2 ;;
  avx2) mkl=AVX2 ;;
  avx512) mkl=AVX512 ;;
  *) echo "numerics_isa_test: LEVEL is default, avx2 or avx512, not '$level'" >&2; exit 2 ;;
esac
export ATEN_CPU_CAPABILITY="$level" MKL_ENABLE_INSTRUCTIONS="$mkl"
# Proof that the level took: torch reports the capability it dispatches to.
got=$("$py" -c "import torch; print(torch.backends.cpu.get_cpu_capability())" 2>/dev/null | tr 'A-Z' 'a-z')
[ "$got" = "$level" ] || { echo "FAIL: asked for $level, torch dispatches to '$got'"; exit 1; }
echo "ATEN_CPU_CAPABILITY=$level (torch reports '$got'), MKL_ENABLE_INSTRUCTIONS=$mkl"
fails=0
run() { echo "== $*"; "$@" || { echo "FAIL: $*"; fails=$((fails + 1)); }; }
run "$bin_dir/torch_tests" --gtest_brief=1 --gtest_filter='HfParity.*:ActivationCheckpoint.*:LmLoss.*:VarlenAttention.*:LeanAutograd.*:TiledMlp.*'
run "$bin_dir/train_tests" --gtest_brief=1 --gtest_filter='AdamW.*:ActivationOffloadTraining.*:TiledMlpTraining.*:SequenceParallel.*'
run "$bin_dir/kernel_tests" --gtest_brief=1 --gtest_filter='CpuHarness.*:VarlenAttention*'
# The multi-process equivalence runs once, at the level farthest from the machine's own (the suite's
# time: four training runs beside the rest of the suite on 2 cores).
[ "$level" = default ] && run bash "$here/../dist/dist_cli_test.sh" "$bin_dir/longalign" "$py" "$launch" --quick
[ "$fails" = 0 ] && echo "all numerics checks passed at $level" || { echo "$fails numerics check(s) failed at $level"; exit 1; }
