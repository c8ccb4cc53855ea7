#!/usr/bin/env bash
# Compiles the CUDA kernels for sm_80 and sm_90 with `-Xptxas -v`, keeps the report in the build
# directory, and fails on any register spill or stack frame. Skips, saying so, without nvcc.
set -u
src="$1"; out="$2"
nvcc="${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
if [ ! -x "$nvcc" ]; then echo "skipped: no nvcc on this machine"; exit 0; fi
report="$out/ptxas_report.txt"
: >"$report"
for cu in "$src"/src/kernels/*.cu; do
  "$nvcc" -std=c++17 -O3 -I"$src/include" -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
    -Xptxas -v -c "$cu" -o "$out/$(basename "$cu").o" >>"$report" 2>&1 || { cat "$report"; echo "FAIL: nvcc $cu"; exit 1; }
done
grep -E "registers|spill" "$report"
if grep -E "bytes spill (stores|loads)" "$report" | grep -vq " 0 bytes spill stores, 0 bytes spill loads"; then
  echo "FAIL: register spills (see $report)"; exit 1
fi
if grep -E "bytes stack frame" "$report" | grep -vq "^ *0 bytes stack frame"; then
  echo "FAIL: stack frames (see $report)"; exit 1
fi
echo "no spills: $(grep -c 'Used .* registers' "$report") kernel builds checked"
