#!/usr/bin/env bash
# The one command for the GPU machine: every test (the GPU tests included, nothing skipped for lack
# of a GPU), compute-sanitizer on the project's CUDA kernel tests, and the GPU benchmarks, with
# machine-readable results. Two ways to get the binaries:
#   scripts/gpu_check.sh --prebuilt build/gpu-bundle
#       runs what scripts/gpu_bundle.sh built here (carry build/gpu-bundle): nothing is compiled,
#       so the device's minutes go to running. This is the way to use a lent GPU.
#   scripts/gpu_check.sh
#       builds there first, from Debian libraries fetched by scripts/fetch_debs.sh (carry build/debs
#       and build/deps): a full build costs several of the device's minutes.
# Each step runs under `timeout`, capped by what is left of LONGALIGN_GPU_BUDGET_S (default 420 s;
# give the device call timeout_s=540 for it), and the log ends with every step's duration and
# outcome. The required results come first, so that a spent budget cuts only the optional steps:
# the attention benchmark, the ~1B training run (train_gpu.json), then CTest with compute-sanitizer
# beside it (started after the timed benchmarks, so never sharing the GPU with them), then the rest.
# The caps of the steps up to CTest add up to the default budget. Results go to LONGALIGN_GPU_OUT
# (default build/gpu-out; give it the device tool's $OUT): gpu_check.log, attention.json,
# train_gpu.json (also written to bench/results/), the compute-sanitizer logs and CTest's log.
# LONGALIGN_GPU_PYTHON: the torch venv's python (default /opt/torch/.venv/bin/python).
# LONGALIGN_GPU_CTEST_JOBS (8) and LONGALIGN_GPU_CTEST_S (140): CTest's parallelism and time limit;
# LONGALIGN_GPU_SANITIZER_S (CTest's limit): each compute-sanitizer tool's; LONGALIGN_GPU_ALL_TESTS=1
# adds the long CPU-only tests. LONGALIGN_GPU_ONLY='REGEX' runs only the steps whose names match.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1

prebuilt=""
while (($#)); do
  case "$1" in
    --prebuilt)
      [ $# -ge 2 ] || { echo "gpu_check: --prebuilt needs the folder scripts/gpu_bundle.sh wrote (build/gpu-bundle)" >&2; exit 2; }
      prebuilt="$(realpath -m "$2")"; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1'; usage: scripts/gpu_check.sh [--prebuilt DIR]" >&2; exit 2 ;;
  esac
done

py="${LONGALIGN_GPU_PYTHON:-/opt/torch/.venv/bin/python}"
gpu_out="$(realpath -m "${LONGALIGN_GPU_OUT:-$root/build/gpu-out}")"
only="${LONGALIGN_GPU_ONLY:-}"  # a regex: run only the steps whose names match (a rerun of a few)
mkdir -p "$gpu_out"
exec 3>&1 4>&2 > >(tee "$gpu_out/gpu_check.log") 2>&1
tee_pid=$!
budget="${LONGALIGN_GPU_BUDGET_S:-420}"
t_start=$SECONDS
status=0
summary=()
deadline=0
work=$(mktemp -d)

# step [--always] NAME CAP FUNCTION [ARGS...]: runs FUNCTION as one step of at most CAP seconds
# (fewer when the budget is nearly spent; none when it is spent) and records its duration and
# outcome. --always: runs even with the budget spent, for a step that only collects what already
# ran under its own time limit (the background sanitizers).
step() {
  local always=0
  [ "$1" = --always ] && { always=1; shift; }
  local name=$1 cap=$2; shift 2
  if [ -n "$only" ] && ! [[ "$name" =~ $only ]]; then
    summary+=("$(printf '%-56s %5s  %s' "$name" - "skipped (LONGALIGN_GPU_ONLY)")")
    return 0
  fi
  local left=$((budget - (SECONDS - t_start)))
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
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
    { echo "gpu_check: $py cannot import torch; set LONGALIGN_GPU_PYTHON to the torch venv's python"; return 1; }
  # The wheel's CUDA, cuDNN and NCCL libraries sit in site-packages/nvidia/*/lib.
  local nvidia
  nvidia=$(ls -d "$torch_lib"/../../nvidia/*/lib 2>/dev/null | paste -sd:)
  export LD_LIBRARY_PATH="$bdir/lib:$torch_lib${nvidia:+:$nvidia}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local missing
  missing=$(ldd "$bdir"/bin/* 2>/dev/null | awk '/=> not found/ {print $1}' | sort -u | paste -sd' ')
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
  tmo cmake --build "$bdir" -j "$(nproc)"
}

gpu_info() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  "$py" -c 'import torch; print("torch", torch.__version__, "| cuda available:", torch.cuda.is_available())'
}

# ---- tests -------------------------------------------------------------------------------------

# compute-sanitizer on the CUDA kernel tests (tests/ops/cuda_kernel_test.cpp, in torch_tests): the
# three tools run at once, in the background, beside CTest (after the timed benchmarks, whose GPU
# they would share), each within CTest's time limit; sanitizer_report waits for them.
san_tools=(memcheck racecheck synccheck)
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
  accepts --kernel-name kns=longalign && opts+=(--kernel-name kns=longalign)
  accepts --target-processes application-only && opts+=(--target-processes application-only)
  accepts --print-limit 20 && opts+=(--print-limit 20)
  # At most CTest's limit, and never past the budget: they end with CTest, not after it.
  local cap="${LONGALIGN_GPU_SANITIZER_S:-$ctest_cap}" left=$((budget - (SECONDS - t_start))) tool
  ((cap > left)) && cap=$left
  ((cap >= 10)) || { echo "compute-sanitizer: not started, the ${budget} s budget is spent"; return 0; }
  # AutoFollowsItsSelfCheck spawns the self-check child, a timing run that instrumentation would
  # only slow down; the tests of the kernels themselves all run.
  echo "$san ${opts[*]} (each tool at most ${cap} s, in the background; $san_filter)"
  for tool in "${san_tools[@]}"; do
    (timeout -k 5 "$cap" "$san" --tool "$tool" "${opts[@]}" "$bdir/bin/torch_tests" --gtest_filter="$san_filter" \
       >"$gpu_out/sanitizer-$tool.log" 2>&1
     echo $? >"$gpu_out/sanitizer-$tool.rc") &
    san_pids+=($!)
  done
}
sanitizer_report() {
  ((${#san_pids[@]})) || { echo "not run"; return 1; }
  local pid tool rc found tests bad=0
  for pid in "${san_pids[@]}"; do wait "$pid"; done
  for tool in "${san_tools[@]}"; do
    rc=$(cat "$gpu_out/sanitizer-$tool.rc" 2>/dev/null || echo "?")
    found=$(grep -E "(ERROR|RACECHECK|SYNCCHECK) SUMMARY" "$gpu_out/sanitizer-$tool.log" | tail -1 | sed 's/^=* *//')
    tests=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$gpu_out/sanitizer-$tool.log" | sed 's/ *$//' | paste -sd';')
    if [ "$rc" = 0 ] && grep -q "PASSED" <<<"$tests" && ! grep -q "SKIPPED\|FAILED" <<<"$tests"; then
      echo "compute-sanitizer $tool: CLEAN | ${found:-no summary line} | $san_filter: $tests"
    else
      bad=1
      [ "$rc" = 124 ] && rc="124, timed out"
      echo "compute-sanitizer $tool: PROBLEM (exit $rc) | ${found:-no summary line} | $san_filter: ${tests:-none ran}"
      grep -m 15 -E "^=+ (Invalid|Error|Race|Barrier|.*hazard)|FAILED|Failure" "$gpu_out/sanitizer-$tool.log" | sed 's/^/    /'
      echo "    (full log: $gpu_out/sanitizer-$tool.log)"
    fi
  done
  return "$bad"
}

run_ctest() {
  local args=(--test-dir "$bdir" --output-on-failure -j "${LONGALIGN_GPU_CTEST_JOBS:-8}" --timeout 240) exclude=()
  # Oracles that need Python packages the GPU machine may lack (transformers, tensorboard) are
  # excluded by name when missing, and said so; everything else runs, the GPU tests included.
  "$py" -c 'import transformers, safetensors' 2>/dev/null || exclude+=("HfParity" "train_cli" "eval_cli" "dist_cli" "hf_family_cli")
  "$py" -c 'import tensorboard' 2>/dev/null || exclude+=("TfEvents.TensorBoard")
  if [ -n "$prebuilt" ]; then
    # Compile-time checks, already run on the build machine with the same nvcc (ptxas_no_spills),
    # or needing clang, which the GPU machine lacks (fuzz_smoke).
    exclude+=("ptxas_no_spills")
    args+=(-LE fuzz)
  fi
  # The long CPU-only tests (1.5 to 3.5 minutes each on the build machine), which CI runs there on
  # the same code: here they would take the minutes the GPU steps need. LONGALIGN_GPU_ALL_TESTS=1
  # runs them too.
  [ "${LONGALIGN_GPU_ALL_TESTS:-0}" = 1 ] || exclude+=("recipe_smoke" "bad_inputs" "dist_cli")
  ((${#exclude[@]})) && { echo "not run here: ${exclude[*]}"; args+=(-E "$(IFS='|'; echo "${exclude[*]}")"); }
  local rc=0
  tmo ctest "${args[@]}" || rc=$?
  cp "$bdir/Testing/Temporary/LastTest.log" "$gpu_out/ctest-LastTest.log" 2>/dev/null
  return "$rc"
}

# ---- benchmarks --------------------------------------------------------------------------------

attention_bench() {
  tmo "$bdir/bin/attention_bench" --json "$gpu_out/attention.json" || return
  [ -f "$gpu_out/attention.json" ] || { echo "no attention.json written (no GPU visible?)"; return 1; }
  cp "$gpu_out/attention.json" bench/results/attention.json
}

# Data for the training runs: short chats for the tiny model, long documents for the ~1B one.
make_data() {
  tmo "$bin" synth -o "$work/s.jsonl" -n 400 --min-words 60 --max-words 400 >/dev/null || return
  tmo "$bin" tokenizer train -i "$work/s.jsonl" --vocab-size 2000 -o "$work/t.model" >/dev/null || return
  tmo "$bin" synth -o "$work/long.jsonl" -n 300 --long-fraction 0.6 --min-words 2000 --max-words 40000 >/dev/null || return
  tmo "$bin" tokenizer train -i "$work/long.jsonl" --vocab-size 8000 -o "$work/long.model" >/dev/null
}
tiny=(--config configs/tiny_cpu.yaml --set "data.inputs=[$work/s.jsonl]" --set "data.tokenizer=$work/t.model"
      --set train.device=cuda --set train.dtype=bf16 --no-progress)
big=(--config configs/bench_1b_64k.yaml --set "data.inputs=[$work/long.jsonl]" --set "data.tokenizer=$work/long.model")

# `attention.backend: auto` on a GPU runs the kernel's self-check (a child process: CUDA start-up, a
# correctness check, a 16k-token timing against FlashAttention-2; 10 to 30 s) once per process and
# model shape. The first run of each model keeps auto and shows the verdict; the later runs of the
# same model are given that verdict as attention.backend (cuda or flash), sparing the child. The
# generate command has no attention.backend option: it keeps auto.
big_backend=auto big_why="the ~1B training run gave no verdict (not run?)"
tiny_backend=auto tiny_why="the tiny training run gave no verdict (not run?)"
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

tiny_train() {
  tmo "$bin" train "${tiny[@]}" --set train.epochs=1 --set "output.dir=$work/run" >"$work/train.log" 2>&1 ||
    { tail -20 "$work/train.log"; return 1; }
  tail -5 "$work/train.log"
  grep "self-check" "$work/train.log" || echo "no attention kernel self-check line (head_dim of tiny_cpu not 64/128?)"
  take_verdict "$work/train.log" tiny "the later tiny-model training runs (NCCL)"
}

generate_throughput() {
  local ck
  ck=$(ls -d "$work"/run/checkpoints/step-* 2>/dev/null | tail -1)
  [ -n "$ck" ] || { echo "no checkpoint from the tiny training run"; return 1; }
  "$py" -c "print('The river carries the evening light. ' * 300)" >"$work/prompt.txt"
  echo "attention.backend: auto (longalign generate has no option to choose it; it runs its own self-check)"
  tmo "$bin" generate -m "$ck" --prompt-file "$work/prompt.txt" --max-new-tokens 128 --device cuda --timing >/dev/null
}

nccl_world1() {  # one GPU cannot host two NCCL ranks
  local zero
  backend_opts tiny
  echo "attention.backend: $tiny_backend ($tiny_why)"
  for zero in 2 3; do
    echo "-- ZeRO-$zero"
    tmo scripts/launch.sh --nproc-per-node 1 --standalone -- "$bin" train "${tiny[@]}" "${backend_opts[@]}" --set train.max_steps=6 \
      --set distributed.backend=nccl --set "distributed.zero=$zero" --set "output.dir=$work/nccl$zero" 2>&1 | tail -3 || return
  done
}

# The ~1B model at 64k packed tokens, bf16, activation checkpointing: tokens/s, MFU and peak memory
# beside the planner's estimate, into train_gpu.json.
train_1b() {
  tmo "$bin" train "${big[@]}" --dry-run >"$work/b1-dry.txt" 2>&1 || { cat "$work/b1-dry.txt"; return 1; }
  grep -E "^parameters" "$work/b1-dry.txt"
  sed -n '/estimated memory/,$p' "$work/b1-dry.txt"
  tmo "$bin" train "${big[@]}" --set data.strategy=pack --set data.units_per_step=1 --set train.max_steps=4 \
    --set "output.dir=$work/b1-pack" --no-progress >"$work/b1-pack.log" 2>&1 || { tail -20 "$work/b1-pack.log"; return 1; }
  grep -E "self-check|attention kernel not used|steps|peak" "$work/b1-pack.log"
  take_verdict "$work/b1-pack.log" big "the later ~1B runs (ZeRO-3, offload, sort, naive)"
  local device
  device=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  tmo "$py" bench/train_gpu_json.py --dry-run "$work/b1-dry.txt" --log "$work/b1-pack.log" --run-dir "$work/b1-pack" \
    --device "${device:-unknown}" --out "$gpu_out/train_gpu.json" bench/results/train_gpu.json
}

# The other batching strategies and the memory-saving modes on the same model, shortened to a few
# steps: tokens/s and peak memory each, the modes beside their plans.
train_1b_variant() {
  local name=$1; shift
  if [[ "$*" == *distributed.* ]]; then
    tmo "$bin" train "${big[@]}" "$@" --dry-run 2>&1 | sed -n '/^ZeRO/,$p'
  fi
  backend_opts big
  echo "attention.backend: $big_backend ($big_why)"
  tmo "$bin" train "${big[@]}" "${backend_opts[@]}" --set train.max_steps=2 "$@" --set "output.dir=$work/b1-$name" --no-progress \
    >"$work/b1-$name.log" 2>&1 || { local rc=$?; tail -20 "$work/b1-$name.log"; return "$rc"; }
  grep -E "steps|peak" "$work/b1-$name.log"
}

# ---- the run -----------------------------------------------------------------------------------

echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname); results in $gpu_out; budget ${budget} s"
only_saved=$only only=""  # the binaries are needed by every step
if [ -n "$prebuilt" ]; then
  step "unpack the prebuilt bundle ($prebuilt)" 45 setup_prebuilt
else
  # The budget is for running: a build there gets its own half hour, then the clock restarts.
  budget_saved=$budget budget=100000
  step "build (Release, from build/debs)" 1800 setup_build
  budget=$budget_saved t_start=$SECONDS
fi
only=$only_saved
# The summary of the steps run, then the end: the pipe to tee is closed and waited for, so the
# log is complete when the device tool collects it.
finish_run() {
  echo
  echo "== summary ($((SECONDS - t_start)) s of a ${budget} s budget)"
  printf '%s\n' "${summary[@]}"
  echo "results: $(cd "$gpu_out" && ls | paste -sd' ') in $gpu_out"
  rm -rf "$work"
  exec 1>&3 2>&4 3>&- 4>&-
  wait "$tee_pid" 2>/dev/null
  exit "$status"
}
if [ -z "${bdir:-}" ] || [ ! -x "$bdir/bin/longalign" ]; then
  echo "gpu_check: no binaries to run; see above"
  status=1
  finish_run
fi
bin="$bdir/bin/longalign"
# The required results first (attention.json, train_gpu.json), then CTest with the sanitizers beside
# it; with the unpacking's 45 s, these caps add up to the default budget (420 s). The steps after
# them share what the earlier ones left.
ctest_cap="${LONGALIGN_GPU_CTEST_S:-140}"
step "GPU and torch" 20 gpu_info
step "attention benchmark (torch FA2 beside longalign)" 90 attention_bench
step "training data (synth, tokenizers)" 20 make_data
step "~1B model, 64k packed, bf16 -> train_gpu.json" 105 train_1b
san_step="compute-sanitizer (3 tools) on CudaKernel.*"
if [ -z "$only" ] || [[ "$san_step" =~ $only ]]; then sanitizers_start; fi
step "tests (CTest)" "$ctest_cap" run_ctest
# Only waits for the tools started above, which stop at their own limit: run whatever the budget.
step --always "$san_step" "${LONGALIGN_GPU_SANITIZER_S:-$ctest_cap}" sanitizer_report
step "tiny model, bf16 training (auto attention self-check)" 45 tiny_train
step "generation throughput (prefill, decode)" 30 generate_throughput
step "NCCL at world size 1 (ZeRO-2, ZeRO-3; tiny model)" 60 nccl_world1
step "~1B, 64k: ZeRO-3 (layers gathered, recomputed)" 60 train_1b_variant zero3 --set data.strategy=pack \
  --set data.units_per_step=1 --set distributed.zero=3
step "~1B, 64k: optimizer offload" 60 train_1b_variant offload --set data.strategy=pack --set data.units_per_step=1 \
  --set distributed.offload_optimizer=true
step "~1B, 64k: sort strategy (8 units per step)" 45 train_1b_variant sort --set data.strategy=sort --set data.units_per_step=8
step "~1B, 64k: naive strategy (8 units per step)" 45 train_1b_variant naive --set data.strategy=naive --set data.units_per_step=8
finish_run
