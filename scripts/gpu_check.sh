#!/usr/bin/env bash
# The one command for the GPU machine: what only a GPU can prove, the code never run on one first,
# with machine-readable results. Two ways to get the binaries:
#   scripts/gpu_check.sh --prebuilt build/gpu-bundle
#       runs what scripts/gpu_bundle.sh built here (carry build/gpu-bundle): nothing is compiled,
#       and the training data and tokenizers come made (the bundle's data/), so the device's
#       minutes go to running. This is the way to use a lent GPU.
#   scripts/gpu_check.sh
#       builds there first, from Debian libraries fetched by scripts/fetch_debs.sh (carry build/debs
#       and build/deps), and makes the data there: a full build costs several of the device's minutes.
# Two helpers, which run nothing on a GPU:
#   scripts/gpu_check.sh --check-out DIR     checks DIR against the device tool's limits on what
#       comes back (below): prints each breach, exit 1 if any
#   scripts/gpu_check.sh --make-data DIR BIN makes the check's data and tokenizers in DIR with the
#       longalign binary BIN (scripts/gpu_bundle.sh's step)
# Each step runs under `timeout`, capped by what is left of LONGALIGN_GPU_BUDGET_S (default 480 s;
# give the device call timeout_s=590 for it; the sanitizers may run a minute past it), with the
# GPU tests' time (LONGALIGN_GPU_CTEST_S, 90 s) held back from the steps before them, so that the
# kernels' correctness checks always run; the log ends with every step's duration and
# outcome; exit codes are in the log, not in files of their own. After the data (the bundle's; made
# there only where it has none), the steps come in the order of what only a GPU can prove, so that
# a spent budget cuts the rest: the attention benchmark (attention.json), the ~1B training run
# (train_gpu.json), NCCL at world size 1 with ZeRO-0, 2 and 3, optimizer offload on the ~1B
# model, then the GPU tests (CTest -R on the CUDA tests' names; CI runs the others) with
# compute-sanitizer memcheck, initcheck, racecheck and synccheck on the CUDA kernel tests beside
# them (after the timed runs, so never sharing the GPU with them); then ZeRO-3 on the ~1B model, the
# ~1B model at 1M tokens a micro-step (ZeRO-3, tiled MLP, both offloads), a bf16 tiny-model run,
# generation throughput and the other batching strategies, which get what the earlier steps left
# (often nothing: a rerun with LONGALIGN_GPU_ONLY gets them). Without a CUDA GPU visible to torch
# the GPU steps are not run (exit 1).
# Results go to LONGALIGN_GPU_OUT (default: the device tool's $OUT where set, else build/gpu-out), at most
# 8 files of at most 16 MiB each, since the device tool drops the rest silently (a larger file is
# cut in its middle): gpu_check.log, attention.json and train_gpu.json (rewritten after every case
# or run, so a step stopped at its cap keeps what it measured; also copied to bench/results/),
# compute-sanitizer.log (the tools' logs, each under its exit code) and ctest.log.
# LONGALIGN_GPU_PYTHON: the torch venv's python (default: the first found of
# /opt/torch/.venv/bin/python3, /opt/torch/.venv/bin/python, python3, python).
# LONGALIGN_GPU_CTEST_JOBS (8) and LONGALIGN_GPU_CTEST_S (90): CTest's parallelism (each test gets
# OMP_NUM_THREADS = cores / jobs) and time limit; LONGALIGN_GPU_SANITIZER_S (120, at most a minute
# past the budget): each compute-sanitizer tool's; LONGALIGN_GPU_ALL_TESTS=1 runs every test, not
# only the GPU ones. LONGALIGN_GPU_ONLY='REGEX' runs only the steps whose names match.
# LONGALIGN_GPU_ASSUME_GPU=1 runs the GPU steps without a visible GPU (for the test of this script,
# tests/scripts/gpu_check_output_test.sh, which runs it against stub binaries).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
caller_dir=$PWD  # --check-out and --make-data take paths relative to it; the rest, to the root
cd "$root" || exit 1
from_caller() { (cd "$caller_dir" && realpath -m -- "$1"); }

usage="usage: scripts/gpu_check.sh [--prebuilt DIR] | --check-out DIR | --make-data DIR BIN"
prebuilt="" mode=run
while (($#)); do
  case "$1" in
    --prebuilt)
      [ $# -ge 2 ] || { echo "gpu_check: --prebuilt needs the folder scripts/gpu_bundle.sh wrote (build/gpu-bundle)" >&2; exit 2; }
      prebuilt="$(realpath -m "$2")"; shift 2 ;;
    --check-out)
      [ $# -ge 2 ] || { echo "gpu_check: --check-out needs a folder; $usage" >&2; exit 2; }
      mode=check-out check_dir="$(from_caller "$2")"; shift 2 ;;
    --make-data)
      [ $# -ge 3 ] || { echo "gpu_check: --make-data needs a folder and a longalign binary; $usage" >&2; exit 2; }
      mode=make-data data="$(from_caller "$2")" bin="$(from_caller "$3")"; shift 3 ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1'; $usage" >&2; exit 2 ;;
  esac
done

# The torch venv's python: python3 first (the GPU machine's venv has no `python`), then python.
find_python() {
  local c
  for c in /opt/torch/.venv/bin/python3 /opt/torch/.venv/bin/python python3 python; do
    command -v "$c" 2>/dev/null && return 0
  done
  echo python3  # none found: the first use says so
}
py="${LONGALIGN_GPU_PYTHON:-$(find_python)}"
# The device tool's $OUT when there is one: results written elsewhere would not come back.
gpu_out="$(realpath -m "${LONGALIGN_GPU_OUT:-${OUT:-$root/build/gpu-out}}")"
only="${LONGALIGN_GPU_ONLY:-}"  # a regex: run only the steps whose names match (a rerun of a few)
budget="${LONGALIGN_GPU_BUDGET_S:-480}"
reserve=0  # seconds held back for later steps (the GPU tests) from the steps run before them
t_start=$SECONDS
status=0
summary=()
deadline=$((SECONDS + 3600))
have_gpu=0
gpu_device=unknown
ready=0  # set by setup_prebuilt or setup_build once the binaries can run

# ---- what comes back ---------------------------------------------------------------------------

# The device tool's limits on what a run brings back; whatever breaks them is dropped silently.
out_max_files=8 out_max_bytes=$((16 * 1048576)) out_max_dirs=2
# The files this script writes into LONGALIGN_GPU_OUT, all of them: 5 of the 8 allowed.
out_files=(gpu_check.log attention.json train_gpu.json compute-sanitizer.log ctest.log)

# check_out_dir DIR: prints each breach of those limits (more files than allowed, a file too
# large, a path too deep, a name outside [A-Za-z0-9._-], something not a plain file or folder);
# returns 1 if there is any.
check_out_dir() {
  local dir=${1%/} f rel size depth n=0 bad=0
  [ -d "$dir" ] || { echo "$dir is not a folder"; return 1; }
  while IFS= read -r -d '' f; do
    rel=${f#"$dir"/}
    if [ -L "$f" ] || { [ ! -f "$f" ] && [ ! -d "$f" ]; }; then
      echo "not a plain file or folder (dropped): $(printf '%q' "$rel")"; bad=1; continue
    fi
    if ! [[ "${rel##*/}" =~ ^[A-Za-z0-9._-]+$ ]]; then
      echo "name outside [A-Za-z0-9._-] (dropped): $(printf '%q' "$rel")"; bad=1
    fi
    depth=$(tr -cd / <<<"$rel" | wc -c)  # folders above a file
    [ -d "$f" ] && depth=$((depth + 1))    # a folder is itself one
    ((depth > out_max_dirs)) && { echo "more than $out_max_dirs folders deep (dropped): $(printf '%q' "$rel")"; bad=1; }
    [ -d "$f" ] && continue
    n=$((n + 1))
    size=$(stat -c %s "$f")
    ((size > out_max_bytes)) && { echo "over 16 MiB, $size bytes (dropped): $(printf '%q' "$rel")"; bad=1; }
  done < <(find "$dir" -mindepth 1 -print0)
  ((n > out_max_files)) && { echo "$n files, more than the $out_max_files that come back (the rest dropped)"; bad=1; }
  return "$bad"
}

# excerpt FILE MAX: FILE whole, or, when over MAX bytes, its first and last MAX/2 bytes with a line
# between them saying how much was cut.
excerpt() {
  local f=$1 max=$2 size
  size=$(stat -c %s "$f" 2>/dev/null || echo 0)
  if ((size <= max)); then cat "$f" 2>/dev/null; return 0; fi
  head -c $((max / 2)) "$f"
  printf '\n\n[... gpu_check: %d bytes cut here: a file comes back only up to 16 MiB ...]\n\n' $((size - max / 2 * 2))
  tail -c $((max / 2)) "$f"
}
# cap_file FILE: cuts FILE in its middle to under the 16 MiB a file may have (a margin for the line
# saying so).
cap_file() {
  local f=$1 size
  size=$(stat -c %s "$f" 2>/dev/null || echo 0)
  ((size > out_max_bytes)) || return 0
  excerpt "$f" $((out_max_bytes - 4096)) >"$f.cut" && mv "$f.cut" "$f"
}
# tidy_out: removes what a writer killed mid-write left beside our files (write_file_atomic's
# NAME.tmp-HOST-PID-N, train_gpu_json.py's .NAME.tmpPID, cap_file's NAME.cut) and cuts our files
# to size; gpu_check.log last, once nothing writes to it.
tidy_out() {
  local f
  for f in "${out_files[@]}"; do
    rm -f "$gpu_out/$f".tmp-* "$gpu_out/.$f".tmp* "$gpu_out/$f.cut"
    [ "$f" = gpu_check.log ] && [ "${1:-}" != --log ] && continue
    [ -f "$gpu_out/$f" ] && cap_file "$gpu_out/$f"
  done
  return 0
}

if [ "$mode" = check-out ]; then
  check_out_dir "$check_dir" && echo "$check_dir: within the device tool's limits ($out_max_files files, 16 MiB each, $out_max_dirs folders deep, names of [A-Za-z0-9._-])"
  exit
fi

# step [--always] [--gpu] NAME CAP FUNCTION [ARGS...]: runs FUNCTION as one step of at most CAP
# seconds (fewer when the budget is nearly spent; none when it is spent) and records its duration
# and outcome. --always: runs even with the budget spent, for a step that only collects what already
# ran under its own time limit (the background sanitizers). --gpu: not run without a CUDA GPU.
step() {
  local always=0 gpu=0
  while [[ "$1" == --* ]]; do
    case "$1" in --always) always=1 ;; --gpu) gpu=1 ;; esac
    shift
  done
  local name=$1 cap=$2; shift 2
  if [ -n "$only" ] && ! [[ "$name" =~ $only ]]; then
    summary+=("$(printf '%-56s %5s  %s' "$name" - "skipped (LONGALIGN_GPU_ONLY)")")
    return 0
  fi
  if ((gpu && !have_gpu)); then
    echo; echo "== $name: NOT RUN, no CUDA GPU visible to torch (see the step 'GPU and torch')"
    summary+=("$(printf '%-56s %5s  %s' "$name" - "NOT RUN (no CUDA GPU)")")
    status=1
    return 0
  fi
  local left=$((budget - reserve - (SECONDS - t_start)))
  if ((always && left < cap)); then
    left=$cap
  elif ((left < 10)); then
    echo; echo "== $name: NOT RUN, the ${budget} s budget (LONGALIGN_GPU_BUDGET_S) is spent"
    summary+=("$(printf '%-56s %5s  %s' "$name" - "NOT RUN (budget)")")
    status=1
    return 0
  fi
  ((cap > left)) && cap=$left
  echo; echo "== $name (at most ${cap} s)"
  deadline=$((SECONDS + cap))
  local t0=$SECONDS rc=0 verdict=ok
  "$@" || rc=$?
  if ((rc == 124 || rc == 137)); then verdict="TIMEOUT"; status=1
  elif ((rc != 0)); then verdict="FAILED (exit $rc)"; status=1; fi
  echo "-- $name: $verdict in $((SECONDS - t0)) s"
  summary+=("$(printf '%-56s %5s  %s' "$name" "$((SECONDS - t0))s" "$verdict")")
}
# tmo CMD...: CMD, stopped (exit 124) at the current step's deadline.
tmo() {
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  timeout -k 5 "$left" "$@"
}
# rc_word RC: how a command ended, for the JSONs and the log.
rc_word() {
  case "$1" in
    0) echo ok ;;
    124 | 137) echo "timeout (stopped at the step's cap)" ;;
    *) echo "exit $1" ;;
  esac
}

# ---- the binaries ------------------------------------------------------------------------------

setup_prebuilt() {
  local archive="$prebuilt/longalign-gpu.tar.xz"
  if [ ! -f "$archive" ]; then
    echo "gpu_check: $archive not found: run scripts/gpu_bundle.sh on the build machine and carry its folder"
    echo "           (device tool: carry [\"build/gpu-bundle\"])"
    return 1
  fi
  bdir="$root/build/gpu-run"
  rm -rf "$bdir" && mkdir -p "$bdir"
  # Python's tarfile where xz is missing: the torch venv's python is there in any case.
  if command -v xz >/dev/null; then
    tmo tar -C "$bdir" -xJf "$archive" || return
  else
    tmo "$py" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' "$archive" "$bdir" ||
      return
  fi
  sed -n '1,8p' "$bdir/MANIFEST.txt"
  # The binaries are the bundle's; the test scripts and configs are this checkout's. Differences
  # are reported, not fatal: the run still measures the binaries that MANIFEST.txt describes.
  local stale
  stale=$(sha256sum -c "$bdir/sources.sha256" 2>/dev/null | sed -n 's/: FAILED.*//p')
  if [ -n "$stale" ]; then
    echo "WARNING: the bundle was built from other sources than this checkout's ($(wc -l <<<"$stale") files differ:" \
         "$(head -5 <<<"$stale" | paste -sd' ')...); rebuild it with scripts/gpu_bundle.sh to test this checkout"
  fi

  local torch_lib
  torch_lib=$(tmo "$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
    { echo "gpu_check: $py cannot import torch; set LONGALIGN_GPU_PYTHON to the torch venv's python"; return 1; }
  # The wheel's CUDA, cuDNN and NCCL libraries sit in site-packages/nvidia/*/lib.
  local nvidia
  nvidia=$(ls -d "$torch_lib"/../../nvidia/*/lib 2>/dev/null | paste -sd:)
  export LD_LIBRARY_PATH="$bdir/lib:$torch_lib${nvidia:+:$nvidia}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local missing
  missing=$(tmo ldd "$bdir"/bin/* 2>/dev/null | awk '/=> not found/ {print $1}' | sort -u | paste -sd' ')
  if [ -n "$missing" ]; then
    echo "gpu_check: the binaries need libraries found neither in the bundle nor in the torch wheel: $missing"
    echo "           (a torch wheel other than 2.11+cu130, or a library scripts/gpu_bundle.sh leaves out: see its wheel_re)"
    return 1
  fi

  # CTest files: this checkout's source root, the unpacked build root and this machine's python.
  local f
  sub() { printf '%s' "$1" | sed 's/[\/&]/\\&/g'; }
  while read -r f; do
    mkdir -p "$bdir/$(dirname "$f")"
    sed -e "s/@LONGALIGN_SOURCE_ROOT@/$(sub "$root")/g" -e "s/@LONGALIGN_BUILD_ROOT@/$(sub "$bdir")/g" \
        -e "s/@LONGALIGN_PYTHON@/$(sub "$py")/g" "$bdir/ctest/$f" >"$bdir/$f"
  done < <(cd "$bdir/ctest" && find . -type f)
  # The test binaries compiled in this machine's paths; tests/test_paths.hpp reads these first.
  export LONGALIGN_TEST_SOURCE_DIR="$root" LONGALIGN_TEST_PYTHON="$py"
  ready=1
}

setup_build() {
  # The Debian libraries the machine lacks, as .debs (scripts/fetch_debs.sh), unpacked here.
  local sysroot="$root/build/sysroot" d
  if [ -d build/debs ]; then
    mkdir -p "$sysroot"
    for d in build/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
  fi
  export LD_LIBRARY_PATH="$sysroot/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  local torch_prefix
  torch_prefix=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)') || return
  bdir="$root/build/gpu"
  tmo cmake -S . -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$sysroot/usr;$torch_prefix" -DGTEST_ROOT="$sysroot/usr" -DLONGALIGN_PYTHON="$py" || return
  tmo cmake --build "$bdir" -j "$(nproc)" || return
  ready=1
}

# gpu_info: the card, the driver and torch; fails (and the GPU steps are not run) when torch sees no
# CUDA GPU, unless LONGALIGN_GPU_ASSUME_GPU=1.
gpu_info() {
  tmo nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  gpu_device=$(tmo nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  gpu_device=${gpu_device:-unknown}
  local rc=0
  tmo "$py" -c 'import sys, torch
ok = torch.cuda.is_available()
print("torch", torch.__version__, "| cuda available:", ok)
sys.exit(0 if ok else 1)' || rc=$?
  if [ "${LONGALIGN_GPU_ASSUME_GPU:-0}" = 1 ]; then
    echo "LONGALIGN_GPU_ASSUME_GPU=1: the GPU steps run whatever torch sees"
    have_gpu=1
  elif ((rc == 0)); then
    have_gpu=1
  else
    echo "no CUDA GPU visible to torch ($py): the GPU steps are not run"
    return 1
  fi
}

# ---- tests -------------------------------------------------------------------------------------

# compute-sanitizer on the CUDA kernel tests (tests/ops/cuda_kernel_test.cpp, in torch_tests): the
# four tools run at once, in the background, beside CTest (after the timed runs, whose GPU they
# would share); sanitizer_report waits for them and merges their logs into compute-sanitizer.log.
san_tools=(memcheck initcheck racecheck synccheck)
san_filter='CudaKernel.*:-CudaKernel.AutoFollowsItsSelfCheck'
san_pids=()
sanitizers_start() {
  local san
  san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer \
        /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
  [ -n "$san" ] || { echo "compute-sanitizer not found (PATH, /usr/local/cuda): the sanitizer checks are not run"; return 0; }
  local opts=(--error-exitcode 1)
  # Each option only where this compute-sanitizer accepts it, probed with --version (a quick call
  # that fails on options the tool cannot parse), so a renamed option costs the check nothing.
  accepts() { "$san" "$@" --version >/dev/null 2>&1; }
  # Only the project's kernels are instrumented (their mangled names hold "longalign"): torch's
  # own kernels are not ours to check and would slow the run. The auto backend's self-check child
  # is left alone: it times 16k-token runs, minutes under instrumentation, of the same kernels the
  # parent's tests check.
  # Not for initcheck: it would not see torch's kernels write the test's inputs, and call every
  # read of them by ours uninitialized.
  local kernel_filter=()
  accepts --kernel-name kns=longalign && kernel_filter=(--kernel-name kns=longalign)
  accepts --target-processes application-only && opts+=(--target-processes application-only)
  accepts --print-limit 20 && opts+=(--print-limit 20)
  # Each tool at most LONGALIGN_GPU_SANITIZER_S, and at most a minute past the budget (inside the
  # device call's timeout_s, 120 s above the budget): sanitizer_report waits for them whatever is left.
  local cap="${LONGALIGN_GPU_SANITIZER_S:-120}" left=$((budget - (SECONDS - t_start) + 60)) tool
  ((cap > left)) && cap=$left
  ((cap >= 10)) || { echo "compute-sanitizer: not started, the ${budget} s budget is spent"; return 0; }
  san_cap=$cap
  # AutoFollowsItsSelfCheck spawns the self-check child, a timing run that instrumentation would
  # only slow down; the tests of the kernels themselves all run.
  echo "$san ${opts[*]} (${san_tools[*]}; each at most ${cap} s, in the background; $san_filter)"
  for tool in "${san_tools[@]}"; do
    # memcheck and initcheck see an allocation only as torch asked the driver for it: with torch's
    # caching allocator a test tensor sits inside a larger cached segment, where an overrun or a read
    # of memory never written goes unseen. Without the cache each tensor is an allocation of its own.
    # OMP_NUM_THREADS: four tools beside CTest's jobs on the machine's cores (the CPU references).
    local env=(OMP_NUM_THREADS=2) filter=("${kernel_filter[@]}")
    case "$tool" in memcheck | initcheck) env+=(PYTORCH_NO_CUDA_MEMORY_CACHING=1) ;; esac
    [ "$tool" = initcheck ] && filter=()
    (rc=0
     timeout -k 5 "$cap" env "${env[@]}" "$san" --tool "$tool" "${opts[@]}" "${filter[@]}" "$bdir/bin/torch_tests" --gtest_filter="$san_filter" \
       >"$work/sanitizer-$tool.log" 2>&1 || rc=$?
     echo "$rc" >"$work/sanitizer-$tool.rc"
     [ -n "${env[*]}" ] && echo "${env[*]}" >"$work/sanitizer-$tool.env") &
    san_pids+=($!)
  done
}
sanitizer_report() {
  ((${#san_pids[@]})) || { echo "not run"; return 1; }
  local pid tool rc found tests env bad=0 log merged="$gpu_out/compute-sanitizer.log"
  for pid in "${san_pids[@]}"; do wait "$pid"; done
  # One file for the four tools (the device tool brings back 8 files): each tool's log under a
  # header with its command and exit code, cut in the middle past 3.5 MiB, so the whole stays
  # under 16 MiB.
  : >"$merged"
  for tool in "${san_tools[@]}"; do
    log="$work/sanitizer-$tool.log"
    rc=$(cat "$work/sanitizer-$tool.rc" 2>/dev/null || echo "?")
    env=$(cat "$work/sanitizer-$tool.env" 2>/dev/null || true)
    {
      echo "===== compute-sanitizer --tool $tool: exit $rc$([ "$rc" = 124 ] && echo ", stopped at its ${san_cap} s limit")" \
           "| ${env:+$env }torch_tests --gtest_filter=$san_filter ====="
      excerpt "$log" $((7 * 524288))
      echo
    } >>"$merged"
    found=$(grep -E "(ERROR|RACECHECK|SYNCCHECK|INITCHECK) SUMMARY" "$log" | tail -1 | sed 's/^=* *//')
    tests=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$log" | sed 's/ *$//' | paste -sd';')
    if [ "$rc" = 0 ] && grep -q "PASSED" <<<"$tests" && ! grep -q "SKIPPED\|FAILED" <<<"$tests"; then
      echo "compute-sanitizer $tool: CLEAN (exit 0) | ${found:-no summary line} | $tests"
    else
      bad=1
      [ "$rc" = 124 ] && rc="124, timed out"
      echo "compute-sanitizer $tool: PROBLEM (exit $rc) | ${found:-no summary line} | ${tests:-none ran}"
      grep -m 15 -E "^=+ (Invalid|Error|Race|Barrier|Uninitialized|.*hazard)|FAILED|Failure" "$log" | sed 's/^/    /'
    fi
  done
  echo "logs: $merged (one section a tool)"
  return "$bad"
}

# The GPU tests: every test whose name says CUDA (CudaKernel.*, CudaParity.*) and the kernel
# self-check's (KernelSelfCheck.*, whose real child runs the kernel). CI runs all the others on the
# build machine, on the same code.
gpu_tests_re='Cuda|cuda|KernelSelfCheck'
run_ctest() {
  local jobs="${LONGALIGN_GPU_CTEST_JOBS:-8}" omp
  # Each test's torch would start a thread per core: 8 jobs on 16 cores get 2 threads each.
  omp=$(($(nproc) / jobs))
  ((omp >= 1)) || omp=1
  local args=(--test-dir "$bdir" --output-on-failure -j "$jobs" --timeout 240) exclude=()
  # fuzz_smoke needs clang, which the GPU machine lacks.
  [ -n "$prebuilt" ] && args+=(-LE fuzz)
  if [ "${LONGALIGN_GPU_ALL_TESTS:-0}" = 1 ]; then
    # Oracles that need Python packages the GPU machine may lack (transformers, tensorboard) are
    # excluded by name when missing, and said so; everything else runs.
    "$py" -c 'import transformers, safetensors' 2>/dev/null || exclude+=("HfParity" "train_cli" "eval_cli" "dist_cli" "hf_family_cli")
    "$py" -c 'import tensorboard' 2>/dev/null || exclude+=("TfEvents.TensorBoard")
    # A compile-time check, already run on the build machine with the same nvcc.
    [ -n "$prebuilt" ] && exclude+=("ptxas_no_spills")
    ((${#exclude[@]})) && { echo "not run here: ${exclude[*]}"; args+=(-E "$(IFS='|'; echo "${exclude[*]}")"); }
    echo "every test (LONGALIGN_GPU_ALL_TESTS=1)"
  else
    args+=(-R "$gpu_tests_re")
    local n
    n=$(ctest --test-dir "$bdir" -N -R "$gpu_tests_re" 2>/dev/null | sed -n 's/^Total Tests: //p')
    echo "the GPU tests only (CTest -R '$gpu_tests_re': ${n:-?} tests; CI runs the others on the build machine)"
    [ "${n:-0}" -gt 0 ] || { echo "no test matches '$gpu_tests_re': the bundle's CTest files lack the GPU tests?"; return 1; }
  fi
  echo "OMP_NUM_THREADS=$omp for each test ($(nproc) cores, $jobs jobs)"
  local rc=0
  tmo env OMP_NUM_THREADS="$omp" ctest "${args[@]}" || rc=$?
  cp "$bdir/Testing/Temporary/LastTest.log" "$gpu_out/ctest.log" 2>/dev/null || echo "no CTest log (LastTest.log) to keep"
  return "$rc"
}

# ---- benchmarks --------------------------------------------------------------------------------

# The benchmark rewrites attention.json after every case: a run stopped at its cap keeps the cases
# it measured ("complete": false).
attention_bench() {
  rm -f "$gpu_out/attention.json"
  local rc=0
  tmo "$bdir/bin/attention_bench" --json "$gpu_out/attention.json" || rc=$?
  if [ ! -f "$gpu_out/attention.json" ]; then
    echo "no attention.json written (no GPU visible?)"
    return $((rc ? rc : 1))
  fi
  cp "$gpu_out/attention.json" bench/results/attention.json
  "$py" -c 'import json, sys; d = json.load(open(sys.argv[1]))
print("attention.json: %s of %s cases%s" % (d.get("cases_done", len(d.get("cases", []))), d.get("cases_planned", "?"),
      "" if d.get("complete", True) else ", INCOMPLETE"))' "$gpu_out/attention.json" || true
  return "$rc"
}

# The check's training data: short chats and a 2000-piece tokenizer for the tiny model, long
# documents and an 8000-piece one for the ~1B model. scripts/gpu_bundle.sh makes them here
# (--make-data) into the bundle's data/; without them the data step makes them there.
data_files=(short.jsonl short.model long.jsonl long.model)
have_data() {
  local f
  for f in "${data_files[@]}"; do [ -s "$1/$f" ] || return 1; done
}
make_data_in() {
  local dir=$1
  mkdir -p "$dir" || return
  tmo "$bin" synth -o "$dir/short.jsonl" -n 400 --min-words 60 --max-words 400 >/dev/null || return
  tmo "$bin" tokenizer train -i "$dir/short.jsonl" --vocab-size 2000 -o "$dir/short.model" >/dev/null || return
  tmo "$bin" synth -o "$dir/long.jsonl" -n 300 --long-fraction 0.6 --min-words 2000 --max-words 40000 >/dev/null || return
  tmo "$bin" tokenizer train -i "$dir/long.jsonl" --vocab-size 8000 -o "$dir/long.model" >/dev/null
}
make_data() {
  if have_data "$bdir/data"; then
    data="$bdir/data"
    echo "from the bundle: $(cd "$data" && du -b "${data_files[@]}" | awk '{printf "%s %.1f MiB  ", $2, $1 / 1048576}')"
    return 0
  fi
  echo "not in the binaries' folder ($bdir/data): made here"
  data="$work/data"
  make_data_in "$data"
}
set_data_args() {
  tiny=(--config configs/tiny_cpu.yaml --set "data.inputs=[$data/short.jsonl]" --set "data.tokenizer=$data/short.model"
        --set train.device=cuda --set train.dtype=bf16 --no-progress)
  big=(--config configs/bench_1b_64k.yaml --set "data.inputs=[$data/long.jsonl]" --set "data.tokenizer=$data/long.model")
}

# `attention.backend: auto` on a GPU runs the kernel's self-check (a child process: CUDA start-up, a
# correctness check, a 16k-token timing against FlashAttention-2; 10 to 30 s) once per process and
# model shape. The first run of each model keeps auto and shows the verdict; the later runs of the
# same model are given that verdict as attention.backend (cuda or flash), sparing the child. The
# generate command has no attention.backend option: it keeps auto.
big_backend=auto big_why="the ~1B training run gave no verdict (not run?)"
tiny_backend=auto tiny_why="no tiny-model run gave a verdict yet"
# backend_verdict LOG: prints "cuda", "flash" or "auto" (LOG holds no verdict), then the line read.
backend_verdict() {
  local line
  line=$(grep -m1 -E "attention kernel self-check \(|attention kernel not used on" "$1" 2>/dev/null)
  case "$line" in
    *"auto uses the project's kernel"*) echo cuda ;;
    *"auto uses FlashAttention-2"* | *"falls back to FlashAttention-2"*) echo flash ;;
    *) echo auto ;;
  esac
  echo "${line:-no self-check verdict in $(basename "$1")}"
}
# take_verdict LOG VAR RUNS: sets VAR_backend and VAR_why (VAR: big or tiny) from LOG, and says
# what RUNS, the later runs of that model, will use.
take_verdict() {
  local log=$1 var=$2 runs=$3 v
  mapfile -t v < <(backend_verdict "$log")
  printf -v "${var}_backend" '%s' "${v[0]}"
  if [ "${v[0]}" = auto ]; then
    printf -v "${var}_why" '%s' "no self-check verdict in $(basename "$log"), so each run makes its own"
  else
    printf -v "${var}_why" '%s' "verdict of $(basename "$log"): attention kernel ${v[1]#*attention kernel }"
  fi
  local why="${var}_why"
  echo "attention.backend for $runs: ${v[0]}$([ "${v[0]}" = auto ] || echo ', each sparing its own self-check child') (${!why})"
}
# backend_opts VAR: sets the array backend_opts to the --set giving VAR's verdict to a later run;
# empty while it is auto.
backend_opts() {
  local b="${1}_backend"
  backend_opts=()
  [ "${!b}" = auto ] || backend_opts=(--set "attention.backend=${!b}")
}

# write_train_json ARGS...: bench/train_gpu_json.py with ARGS (what the run so far left), updating
# train_gpu.json in LONGALIGN_GPU_OUT and bench/results/. Its own short limit, not the step's: it
# also runs after a run stopped at the step's cap, to keep what that run measured.
write_train_json() {
  timeout -k 2 20 "$py" bench/train_gpu_json.py --device "$gpu_device" \
    --out "$gpu_out/train_gpu.json" bench/results/train_gpu.json "$@" >"$work/train_gpu_json.out" 2>&1 ||
    { echo "train_gpu_json.py failed:"; tail -5 "$work/train_gpu_json.out"; return 1; }
}

# NCCL at world size 1 (one GPU cannot host two NCCL ranks), ZeRO-0 then 2 then 3, on the tiny
# model: ZeRO-0 runs the overlapped all-reduce (its own stream; small buckets so that several
# overlap backward), ZeRO-3 the sharded model's background gathers. The first run keeps auto (the
# kernel's self-check at head_dim 64) and gives its verdict to the later tiny-model runs.
nccl_world1() {
  local zero rc
  for zero in 0 2 3; do
    backend_opts tiny
    echo "-- ZeRO-$zero, attention.backend: $tiny_backend ($tiny_why)"
    rc=0
    tmo scripts/launch.sh --nproc-per-node 1 --standalone -- "$bin" train "${tiny[@]}" "${backend_opts[@]}" --set train.max_steps=6 \
      --set distributed.backend=nccl --set "distributed.zero=$zero" --set distributed.bucket_mb=1 \
      --set "output.dir=$work/nccl$zero" >"$work/nccl$zero.log" 2>&1 ||
      rc=$?
    if ((rc)); then tail -20 "$work/nccl$zero.log"; return "$rc"; fi
    grep -E "self-check|attention kernel not used" "$work/nccl$zero.log" | head -2
    tail -3 "$work/nccl$zero.log"
    [ "$tiny_backend" = auto ] && take_verdict "$work/nccl$zero.log" tiny "the later tiny-model runs"
  done
  return 0
}

tiny_train() {
  backend_opts tiny
  echo "attention.backend: $tiny_backend ($tiny_why)"
  tmo "$bin" train "${tiny[@]}" "${backend_opts[@]}" --set train.epochs=1 --set "output.dir=$work/run" >"$work/train.log" 2>&1 ||
    { tail -20 "$work/train.log"; return 1; }
  tail -5 "$work/train.log"
  if [ "$tiny_backend" = auto ]; then
    grep "self-check" "$work/train.log" || echo "no attention kernel self-check line (head_dim of tiny_cpu not 64/128?)"
    take_verdict "$work/train.log" tiny "the later tiny-model runs"
  fi
}

generate_throughput() {
  local ck
  ck=$(ls -d "$work"/run/checkpoints/step-* 2>/dev/null | tail -1)
  [ -n "$ck" ] || { echo "no checkpoint from the tiny training run"; return 1; }
  "$py" -c "print('The river carries the evening light. ' * 300)" >"$work/prompt.txt"
  echo "attention.backend: auto (longalign generate has no option to choose it; it runs its own self-check)"
  tmo "$bin" generate -m "$ck" --prompt-file "$work/prompt.txt" --max-new-tokens 128 --device cuda --timing >/dev/null
}

# The ~1B model at 64k packed tokens, bf16, activation checkpointing: tokens/s, MFU and peak memory
# beside the planner's estimate, into train_gpu.json: the estimate once the dry run has given it,
# the measured figures once the run has ended (stopped at the cap included: what metrics.jsonl has).
train_1b() {
  tmo "$bin" train "${big[@]}" --dry-run >"$work/b1-dry.txt" 2>&1 || { cat "$work/b1-dry.txt"; return 1; }
  grep -E "^parameters" "$work/b1-dry.txt"
  sed -n '/estimated memory/,$p' "$work/b1-dry.txt"
  write_train_json --dry-run "$work/b1-dry.txt"
  local rc=0
  tmo "$bin" train "${big[@]}" --set data.strategy=pack --set data.units_per_step=1 --set train.max_steps=4 \
    --set "output.dir=$work/b1-pack" --no-progress >"$work/b1-pack.log" 2>&1 || rc=$?
  write_train_json --dry-run "$work/b1-dry.txt" --log "$work/b1-pack.log" --run-dir "$work/b1-pack" --status "$(rc_word "$rc")"
  if ((rc)); then tail -20 "$work/b1-pack.log"; return "$rc"; fi
  grep -E "self-check|attention kernel not used|steps|peak" "$work/b1-pack.log"
  take_verdict "$work/b1-pack.log" big "the later ~1B runs (offload, ZeRO-3, sort, naive)"
  cat "$gpu_out/train_gpu.json"
}

# The memory-saving modes and the other batching strategies on the same model, shortened to a few
# steps: tokens/s and peak memory each, the modes beside their plans, into train_gpu.json's
# variants[NAME] once each run has ended.
train_1b_variant() {
  local name=$1; shift
  local dry=() rc=0
  if [[ "$*" == *distributed.* ]]; then
    if tmo "$bin" train "${big[@]}" "$@" --dry-run >"$work/b1-$name-dry.txt" 2>&1; then
      dry=(--dry-run "$work/b1-$name-dry.txt")
    fi
    sed -n '/^ZeRO/,$p' "$work/b1-$name-dry.txt"
  fi
  backend_opts big
  echo "attention.backend: $big_backend ($big_why)"
  tmo "$bin" train "${big[@]}" "${backend_opts[@]}" --set train.max_steps=2 "$@" --set "output.dir=$work/b1-$name" --no-progress \
    >"$work/b1-$name.log" 2>&1 || rc=$?
  write_train_json --variant "$name" "${dry[@]}" --log "$work/b1-$name.log" --run-dir "$work/b1-$name" --status "$(rc_word "$rc")"
  if ((rc)); then tail -20 "$work/b1-$name.log"; return "$rc"; fi
  grep -E "steps|peak" "$work/b1-$name.log"
}

# ---- the run -----------------------------------------------------------------------------------

if [ "$mode" = make-data ]; then
  [ -x "$bin" ] || { echo "gpu_check: --make-data: $bin is not an executable" >&2; exit 2; }
  make_data_in "$data" || { echo "gpu_check: --make-data: making the data in $data failed" >&2; exit 1; }
  (cd "$data" && du -b "${data_files[@]}")
  exit 0
fi

mkdir -p "$gpu_out" bench/results
# A fresh run replaces what an earlier one left in LONGALIGN_GPU_OUT (a rerun of a few steps,
# LONGALIGN_GPU_ONLY, keeps the rest), and the earlier layout's files, which would crowd the 8.
if [ -z "$only" ]; then
  for f in "${out_files[@]}" sanitizer-{memcheck,initcheck,racecheck,synccheck}.{log,rc} ctest-LastTest.log; do
    [ -f "$gpu_out/$f" ] && rm -f "$gpu_out/$f"
  done
fi
exec 3>&1 4>&2 > >(tee "$gpu_out/gpu_check.log") 2>&1
tee_pid=$!
work=$(mktemp -d)
data="$work/data"

echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname); results in $gpu_out; budget ${budget} s; python $py"
# The summary of the steps run, then the end: the pipe to tee is closed and waited for, so the
# log is complete when the device tool collects it; last, what LONGALIGN_GPU_OUT holds is checked
# against what the device tool brings back.
finish_run() {
  echo
  echo "== summary ($((SECONDS - t_start)) s of a ${budget} s budget)"
  printf '%s\n' "${summary[@]}"
  tidy_out
  echo "results in $gpu_out: $(cd "$gpu_out" && find . -mindepth 1 -type f -printf '%P (%s bytes) ' 2>/dev/null)"
  rm -rf "$work"
  exec 1>&3 2>&4 3>&- 4>&-
  wait "$tee_pid" 2>/dev/null
  tidy_out --log
  local problems
  if ! problems=$(check_out_dir "$gpu_out"); then
    { echo "gpu_check: $gpu_out breaks the device tool's limits on what comes back:"; echo "$problems"; } |
      tee -a "$gpu_out/gpu_check.log" >&2
    status=1
  fi
  exit "$status"
}

only_saved=$only only=""  # the binaries and the GPU's presence are needed by every step
if [ -n "$prebuilt" ]; then
  step "unpack the prebuilt bundle ($prebuilt)" 45 setup_prebuilt
else
  # The budget is for running: a build there gets its own half hour, then the clock restarts.
  budget_saved=$budget budget=100000
  step "build (Release, from build/debs)" 1800 setup_build
  budget=$budget_saved t_start=$SECONDS
fi
if ((!ready)) || [ ! -x "$bdir/bin/longalign" ]; then
  echo; echo "gpu_check: no binaries ready to run; see above"
  status=1
  finish_run
fi
bin="$bdir/bin/longalign"
data="$bdir/data"
step "GPU and torch" 15 gpu_info
only=$only_saved
# What only a GPU can prove first, then the tests with the sanitizers beside them, whose time is
# held back from the steps before them. The steps after them share what the earlier ones left.
ctest_cap="${LONGALIGN_GPU_CTEST_S:-90}"
reserve=$((ctest_cap + 5))
step "training data (the bundle's, or synth and tokenizers)" 20 make_data
set_data_args
step --gpu "attention benchmark (torch FA2 beside longalign)" 75 attention_bench
step --gpu "~1B model, 64k packed, bf16 -> train_gpu.json" 100 train_1b
step --gpu "NCCL at world size 1 (ZeRO-0, 2, 3; tiny model)" 75 nccl_world1
step --gpu "~1B, 64k: optimizer offload" 55 train_1b_variant offload --set data.strategy=pack --set data.units_per_step=1 \
  --set distributed.offload_optimizer=true
san_step="compute-sanitizer (${#san_tools[@]} tools) on CudaKernel.*"
san_cap=0
reserve=0
if ((have_gpu)) && { [ -z "$only" ] || [[ "$san_step" =~ $only ]]; }; then sanitizers_start; fi
step --gpu "GPU tests (CTest -R '$gpu_tests_re')" "$ctest_cap" run_ctest
# Only waits for the tools started above, which stop at their own limit: run whatever the budget.
step --always --gpu "$san_step" $((san_cap + 10)) sanitizer_report
step --gpu "~1B, 64k: ZeRO-3 (layers gathered, recomputed)" 60 train_1b_variant zero3 --set data.strategy=pack \
  --set data.units_per_step=1 --set distributed.zero=3
# Issue 24's long micro-step: ~1M tokens in one pack on one GPU, the memory options together.
step --gpu "~1B, 1M tokens: ZeRO-3, tiled MLP, activation and optimizer offload" 150 train_1b_variant long1m \
  --set data.strategy=pack --set data.units_per_step=1 --set data.max_tokens=1048576 --set distributed.zero=3 \
  --set train.tiled_mlp_tokens=8192 --set train.offload_activations=true --set distributed.offload_optimizer=true \
  --set train.loss_chunk_tokens=2048
step --gpu "tiny model, bf16 training (checkpoint for generation)" 45 tiny_train
step --gpu "generation throughput (prefill, decode)" 30 generate_throughput
step --gpu "~1B, 64k: sort strategy (8 units per step)" 45 train_1b_variant sort --set data.strategy=sort --set data.units_per_step=8
step --gpu "~1B, 64k: naive strategy (8 units per step)" 45 train_1b_variant naive --set data.strategy=naive --set data.units_per_step=8
finish_run
