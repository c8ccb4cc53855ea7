#!/usr/bin/env bash
# scripts/gpu_check.sh's results, on a machine without a GPU (issue 23): at most 8 files come back
# from a GPU run, each at most 16 MiB, at most two folders deep, with names of [A-Za-z0-9._-]; the
# device tool drops the rest silently. Runs a copy of the script (so nothing of this checkout's
# build/ or bench/results/ is touched) with --prebuilt on a fake bundle of stub binaries:
#   1. as it is here, with no GPU: the GPU steps fail cleanly (NOT RUN), the data step makes the
#      data the bundle lacks, and LONGALIGN_GPU_OUT holds at most 8 files within the limits;
#   2. with LONGALIGN_GPU_ASSUME_GPU=1 and stub nvidia-smi and compute-sanitizer on PATH, every step
#      runs: the step order, one merged sanitizer log with each tool's exit code (memcheck and
#      initcheck without torch's caching allocator), CTest on the GPU tests only with
#      OMP_NUM_THREADS set, the bundle's data used, train_gpu.json updated after each run, and
#      output flooded past 16 MiB (the log, the sanitizers) still within the limits;
#   3. --check-out on folders that break each limit, and on one that does not.
# Usage: gpu_check_output_test.sh SOURCE_ROOT [PYTHON]   (PYTHON: any python3; torch is faked)
set -uo pipefail
src=$(cd "${1:?usage: gpu_check_output_test.sh SOURCE_ROOT [PYTHON]}" && pwd)
realpy=$(command -v "${2:-python3}" || command -v python3) || { echo "no python3"; exit 1; }
realpy=$(realpath -s "$realpy")
source "$src/tests/test_lib.sh"

# ---- a copy of what the script uses from the checkout ---------------------------------------------
repo="$tmp/repo"
mkdir -p "$repo/scripts" "$repo/bench" "$repo/configs"
cp "$src/scripts/gpu_check.sh" "$src/scripts/launch.sh" "$repo/scripts/"
cp "$src/bench/train_gpu_json.py" "$repo/bench/"
cp "$src/configs/tiny_cpu.yaml" "$src/configs/bench_1b_64k.yaml" "$repo/configs/"

# ---- a python whose `torch` is a stand-in (no GPU; the wheel's layout) ----------------------------
mkdir -p "$tmp/fakemods/torch" "$tmp/pybin"
cat >"$tmp/fakemods/torch/__init__.py" <<'PY'
__version__ = "0.0+stand-in"
class cuda:
    @staticmethod
    def is_available():
        return False
PY
cat >"$tmp/pybin/python3" <<SH
#!/usr/bin/env bash
PYTHONPATH="$tmp/fakemods" exec "$realpy" "\$@"
SH
chmod +x "$tmp/pybin/python3"

# ---- the fake bundle: stub binaries, a CTest tree with GPU and CPU tests, (optionally) data ---------
stage="$tmp/stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/ctest" "$tmp/fixture/data.pack"
trace="$tmp/trace.txt"
# data.pack of a run: index.bin (16-byte entries {u64 offset, u32 length, u32 n_targets}) and the
# plan: four steps, each one unit of two sequences.
"$realpy" - "$tmp/fixture/data.pack" <<'PY'
import json, struct, sys
from pathlib import Path
d = Path(sys.argv[1])
lengths = [30000, 20000, 9000, 6536, 40000, 25536, 16000, 16000]
d.joinpath("index.bin").write_bytes(b"".join(struct.pack("<QII", 0, l, l) for l in lengths))
d.joinpath("plan.json").write_text(json.dumps({"steps": [{"units": [{"seqs": [2 * i, 2 * i + 1]}]} for i in range(4)]}))
PY
cat >"$stage/bin/longalign" <<'SH'
#!/usr/bin/env bash
# Stand-in for longalign: records each call in $STUB_TRACE and prints what gpu_check.sh reads.
echo "longalign $* | WORLD_SIZE=${WORLD_SIZE:-}" >>"$STUB_TRACE"
cmd=$1; shift
out="" dry=0 odir="" zero=0 offload=0 backend=auto
while (($#)); do
  case "$1" in
    -o) out=$2; shift ;;
    --dry-run) dry=1 ;;
    --set)
      case "$2" in
        output.dir=*) odir=${2#output.dir=} ;;
        distributed.zero=*) zero=${2#distributed.zero=} ;;
        distributed.offload_optimizer=true) offload=1 ;;
        attention.backend=*) backend=${2#attention.backend=} ;;
      esac
      shift ;;
  esac
  shift
done
case "$cmd" in
  synth | tokenizer) echo "stand-in $cmd output" >"$out" ;;
  generate) echo "prefill 1000 tokens/s, decode 100 tokens/s" ;;
  train)
    if ((dry)); then
      printf 'parameters: 1100000000\nmodel:\n  num_hidden_layers: 16\n  num_attention_heads: 16\n  head_dim: 128\n'
      printf 'batches: 4 steps (65536 tokens per micro-step)\nZeRO-%s\nestimated memory\n  total   %s GiB\n' "$zero" $((30 - zero))
      exit 0
    fi
    mkdir -p "$odir/checkpoints/step-1"
    cp -r "$STUB_FIXTURE/data.pack" "$odir/"
    for s in 1 2 3; do echo "{\"step\": $s, \"tokens\": $((s * 65536)), \"elapsed_s\": $((s * 3))}"; done >"$odir/metrics.jsonl"
    [ "$backend" = auto ] && echo "attention kernel self-check (head_dim 128, stand-in): auto uses the project's kernel"
    echo "== training summary =="
    echo "steps 3  time 9.0 s  21845 tokens/s  peak GPU memory $((40000 + 1000 * zero)) MiB"
    # The offload run fails after its first step: what it measured must still be recorded.
    if ((offload)); then head -1 "$odir/metrics.jsonl" >"$odir/m" && mv "$odir/m" "$odir/metrics.jsonl"; exit 3; fi
    ;;
esac
exit 0
SH
cat >"$stage/bin/attention_bench" <<'SH'
#!/usr/bin/env bash
echo "attention_bench $*" >>"$STUB_TRACE"
[ "$1" = --json ] || exit 2
printf '{"device": "stand-in", "complete": true, "cases_planned": 1, "cases_done": 1, "cases": [{}]}\n' >"$2.tmp-x" && mv "$2.tmp-x" "$2"
SH
cat >"$stage/bin/torch_tests" <<'SH'
#!/usr/bin/env bash
echo "[==========] 3 tests from 1 test suite ran. ($*)"
echo "[  PASSED  ] 3 tests."
SH
printf 'longalign GPU bundle (stand-in for gpu_check_output_test.sh)\n' >"$stage/MANIFEST.txt"
: >"$stage/sources.sha256"
cat >"$stage/ctest/CTestTestfile.cmake" <<'CM'
add_test([=[CudaKernel.StandIn]=] "/bin/sh" "-c" "echo stand-in-gpu-test omp=$OMP_NUM_THREADS")
add_test([=[KernelSelfCheck.StandIn]=] "/bin/sh" "-c" "echo stand-in-self-check omp=$OMP_NUM_THREADS")
add_test([=[CpuOnly.StandIn]=] "/bin/sh" "-c" "echo stand-in-cpu-test-that-must-not-run")
CM
chmod +x "$stage"/bin/*
pack() {  # pack DIR: the stage as DIR/longalign-gpu.tar.xz
  mkdir -p "$1"
  if command -v xz >/dev/null; then tar -C "$stage" -cJf "$1/longalign-gpu.tar.xz" .
  else "$realpy" -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], "w:xz"); t.add(sys.argv[2], "."); t.close()' \
         "$1/longalign-gpu.tar.xz" "$stage"; fi
}
pack "$tmp/bundle-nodata"
mkdir -p "$stage/data"
for f in short.jsonl short.model long.jsonl long.model; do echo "bundled $f" >"$stage/data/$f"; done
pack "$tmp/bundle"

# check_limits DIR WHAT: the device tool's limits, checked here independently of the script.
check_limits() {
  local dir=$1 what=$2 n
  n=$(find "$dir" -type f | wc -l)
  ((n <= 8)) && ok "$what: $n files (at most 8)" || fail "$what: $n files, more than 8: $(cd "$dir" && find . -type f | paste -sd' ')"
  local big deep badname notplain
  big=$(find "$dir" -type f -size +16777216c)
  [ -z "$big" ] && ok "$what: no file over 16 MiB" || fail "$what: over 16 MiB: $big"
  deep=$(cd "$dir" && find . -mindepth 3 -type d; cd "$dir" && find . -mindepth 4 -type f)
  [ -z "$deep" ] && ok "$what: nothing deeper than two folders" || fail "$what: too deep: $deep"
  badname=$(cd "$dir" && find . -mindepth 1 | LC_ALL=C grep -Ev '^\./([A-Za-z0-9._-]+/)*[A-Za-z0-9._-]+$')
  [ -z "$badname" ] && ok "$what: names of [A-Za-z0-9._-] only" || fail "$what: names outside the alphabet: $badname"
  notplain=$(find "$dir" -mindepth 1 ! -type f ! -type d)
  [ -z "$notplain" ] || fail "$what: not plain files: $notplain"
  [ -z "$(find "$dir" -name '*.rc')" ] || fail "$what: exit codes in files of their own: $(find "$dir" -name '*.rc')"
}

export STUB_TRACE="$trace" STUB_FIXTURE="$tmp/fixture"
run_check() {  # run_check OUT BUNDLE [ENV...]: the copy's gpu_check.sh --prebuilt; its output in OUT.txt
  local out=$1 bundle=$2; shift 2
  env LONGALIGN_GPU_OUT="$out" LONGALIGN_GPU_PYTHON="$tmp/pybin/python3" "$@" \
    timeout 240 bash "$repo/scripts/gpu_check.sh" --prebuilt "$bundle" >"$out.txt" 2>&1
}

# ---- 1. as it is here: no GPU -------------------------------------------------------------------
: >"$trace"
rc=0
run_check "$tmp/out-cpu" "$tmp/bundle-nodata" PATH="$PATH" || rc=$?
log="$tmp/out-cpu/gpu_check.log"
[ "$rc" -ne 0 ] && ok "no GPU: exit $rc" || fail "no GPU: gpu_check.sh exited 0"
grep -q "attention benchmark.*NOT RUN (no CUDA GPU)" "$log" && ok "no GPU: the attention benchmark is NOT RUN, said so" ||
  fail "no GPU: no 'NOT RUN (no CUDA GPU)' for the attention benchmark in the log"
grep -q "== summary" "$log" && ok "no GPU: the log ends with the summary" || fail "no GPU: no summary in the log"
grep -qE "^longalign (train|generate)|^attention_bench" "$trace" && fail "no GPU: a GPU step ran: $(cat "$trace")" ||
  ok "no GPU: no GPU step ran"
grep -q "longalign synth" "$trace" && grep -q "made here" "$log" && ok "no data in the bundle: made there" ||
  fail "no data in the bundle: the data step did not make it ($(cat "$trace"))"
check_limits "$tmp/out-cpu" "no GPU"
bash "$repo/scripts/gpu_check.sh" --check-out "$tmp/out-cpu" >/dev/null && ok "no GPU: --check-out agrees" ||
  fail "no GPU: --check-out finds a breach in its own results"

# ---- 2. every step, against stubs --------------------------------------------------------------
mkdir -p "$tmp/stubs"
cat >"$tmp/stubs/nvidia-smi" <<'SH'
#!/usr/bin/env bash
case "$*" in
  *name,driver_version*)
    echo "NVIDIA H100 80GB HBM3, 570.00, 81559 MiB"
    # A flood into the log: 17 MiB of it must still come back as at most 16 MiB.
    head -c $((17 * 1048576)) /dev/zero | tr '\0' 'n' | fold -w 127 ;;
  *) echo "NVIDIA H100 80GB HBM3" ;;
esac
SH
cat >"$tmp/stubs/compute-sanitizer" <<'SH'
#!/usr/bin/env bash
# Stand-in: accepts every option (--version), records the tool and its environment, floods 6 MiB.
for a; do [ "$a" = --version ] && exit 0; done
tool="" prog=()
while (($#)); do
  case "$1" in
    --tool) tool=$2; shift 2 ;;
    --*) [[ "$1" == *=* || "$1" == --target-processes || "$1" == --kernel-name || "$1" == --print-limit ||
            "$1" == --error-exitcode ]] && { [[ "$1" == *=* ]] || shift; }; shift ;;
    *) prog=("$@"); break ;;
  esac
done
echo "========= COMPUTE-SANITIZER stand-in tool=$tool PYTORCH_NO_CUDA_MEMORY_CACHING=${PYTORCH_NO_CUDA_MEMORY_CACHING:-unset}"
"${prog[@]}"
head -c $((6 * 1048576)) /dev/zero | tr '\0' 's' | fold -w 127
echo
if [ "$tool" = initcheck ]; then
  echo "========= Uninitialized __global__ memory read of size 4 bytes (stand-in)"
  echo "========= ERROR SUMMARY: 1 error"
  exit 1
fi
echo "========= ERROR SUMMARY: 0 errors"
SH
chmod +x "$tmp/stubs"/*
: >"$trace"
rc=0
run_check "$tmp/out" "$tmp/bundle" PATH="$tmp/stubs:$PATH" LONGALIGN_GPU_ASSUME_GPU=1 || rc=$?
out="$tmp/out" log="$tmp/out/gpu_check.log"
check_limits "$out" "every step"
bash "$repo/scripts/gpu_check.sh" --check-out "$out" >/dev/null && ok "every step: --check-out agrees" ||
  fail "every step: --check-out finds a breach in its own results"
expected="attention.json compute-sanitizer.log ctest.log gpu_check.log train_gpu.json"
got=$(cd "$out" && find . -type f -printf '%P\n' | sort | paste -sd' ')
[ "$got" = "$expected" ] && ok "every step: the five result files, nothing else" || fail "every step: files '$got', expected '$expected'"
[ "$rc" -ne 0 ] && ok "every step: exit $rc (the stand-in initcheck and offload fail)" || fail "every step: exit 0 despite failures"
grep -q "bytes cut here" "$log" && ok "every step: the 17 MiB log was cut in its middle" || fail "every step: the log was not cut"
tail -c 200000 "$log" | grep -q "== summary" && ok "every step: the summary survives the cut" || fail "every step: no summary at the log's end"

# The order: what only a GPU can prove first.
order=$(grep -oE '^== (attention benchmark|~1B model, 64k packed|NCCL at world size 1|~1B, 64k: optimizer offload|GPU tests|compute-sanitizer|~1B, 64k: ZeRO-3|tiny model|generation|~1B, 64k: sort|~1B, 64k: naive)' "$log" |
        sed 's/^== //' | paste -sd'|')
want="attention benchmark|~1B model, 64k packed|NCCL at world size 1|~1B, 64k: optimizer offload|GPU tests|compute-sanitizer|~1B, 64k: ZeRO-3|tiny model|generation|~1B, 64k: sort|~1B, 64k: naive"
[ "$order" = "$want" ] && ok "every step: in order ($order)" || fail "every step: order '$order', expected '$want'"
grep -q "NOT RUN" "$log" && fail "every step: a step was not run: $(grep "NOT RUN" "$log" | head -3)"

# The bundle's data, not made there; the NCCL runs at world size 1; the verdict handed on.
grep -q "longalign synth\|longalign tokenizer" "$trace" && fail "every step: data made although the bundle has it" ||
  ok "every step: no data made (the bundle's)"
grep -q "data.inputs=\[$tmp/repo/build/gpu-run/data/long.jsonl\]" "$trace" && ok "every step: the ~1B runs read the bundle's data" ||
  fail "every step: the ~1B runs do not read the bundle's data.inputs"
grep -q "distributed.backend=nccl.*distributed.zero=0.*bucket_mb=1.*WORLD_SIZE=1" "$trace" &&
  grep -q "distributed.backend=nccl.*distributed.zero=2.*WORLD_SIZE=1" "$trace" &&
  grep -q "distributed.backend=nccl.*distributed.zero=3.*WORLD_SIZE=1" "$trace" && ok "every step: NCCL at world size 1, ZeRO-0 (small buckets), 2 and 3" ||
  fail "every step: the NCCL runs are missing"
grep "distributed.zero=3.*WORLD_SIZE=1" "$trace" | grep nccl | grep -q "attention.backend=cuda" &&
  ok "every step: the ZeRO-2 run's verdict goes to the ZeRO-3 run" || fail "every step: the ZeRO-3 NCCL run did not get the verdict"

# CTest: the GPU tests only, with OMP_NUM_THREADS = cores / jobs.
omp=$(($(nproc) / 8)); ((omp >= 1)) || omp=1
grep -q "stand-in-gpu-test omp=$omp" "$out/ctest.log" && grep -q "stand-in-self-check omp=$omp" "$out/ctest.log" &&
  ok "every step: CTest ran the GPU tests with OMP_NUM_THREADS=$omp" || fail "every step: the GPU tests did not run with OMP_NUM_THREADS=$omp"
grep -q "must-not-run" "$out/ctest.log" && fail "every step: CTest ran a CPU-only test" || ok "every step: CTest left the CPU-only test to CI"

# One sanitizer log: four sections, each with its exit code; no caching allocator under memcheck
# and initcheck.
san="$out/compute-sanitizer.log"
for t in memcheck initcheck racecheck synccheck; do
  grep -q "^===== compute-sanitizer --tool $t: exit [0-9]" "$san" && ok "sanitizers: $t's section with its exit code" ||
    fail "sanitizers: no section with an exit code for $t"
done
grep -q "^===== compute-sanitizer --tool initcheck: exit 1" "$san" && ok "sanitizers: initcheck's exit 1 recorded" ||
  fail "sanitizers: initcheck's exit code lost"
for t in memcheck initcheck; do
  grep -q "tool=$t PYTORCH_NO_CUDA_MEMORY_CACHING=1" "$san" && ok "sanitizers: $t without the caching allocator" ||
    fail "sanitizers: $t ran with torch's caching allocator"
done
grep -q "tool=racecheck PYTORCH_NO_CUDA_MEMORY_CACHING=unset" "$san" || fail "sanitizers: racecheck's environment changed"
grep -q "compute-sanitizer initcheck: PROBLEM (exit 1)" "$log" && grep -q "compute-sanitizer memcheck: CLEAN (exit 0)" "$log" &&
  ok "sanitizers: the verdicts and exit codes in gpu_check.log" || fail "sanitizers: verdicts missing from gpu_check.log"

# train_gpu.json: the main run's figures, and each variant's, the failed offload's included.
"$realpy" - "$out/train_gpu.json" <<'PY' && ok "train_gpu.json: main run and variants" || fail "train_gpu.json: see above"
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
for k in ("params", "tokens_per_s", "mfu", "peak_gpu_gib", "plan_estimate_gib"):
    if k not in d:
        problems.append(f"no {k}")
if d.get("complete") is not True:
    problems.append(f"complete is {d.get('complete')}")
if d.get("device") != "NVIDIA H100 80GB HBM3":
    problems.append(f"device {d.get('device')}")
v = d.get("variants", {})
for name in ("offload", "zero3", "sort", "naive"):
    if name not in v:
        problems.append(f"no variant {name}")
if v.get("offload", {}).get("status") != "exit 3" or "peak_gpu_gib" not in v.get("offload", {}):
    problems.append(f"offload's failed run not kept as measured: {v.get('offload')}")
if v.get("zero3", {}).get("plan_estimate_gib") != 27 or "tokens_per_s" not in v.get("zero3", {}):
    problems.append(f"zero3 lacks its plan or speed: {v.get('zero3')}")
if problems:
    print("train_gpu.json:", "; ".join(problems), json.dumps(d, indent=1))
    sys.exit(1)
PY
[ -f "$repo/bench/results/train_gpu.json" ] && [ -f "$repo/bench/results/attention.json" ] &&
  ok "every step: the JSONs also in bench/results/" || fail "every step: bench/results/ lacks the JSONs"

# ---- 3. --check-out on each breach ---------------------------------------------------------------
breach() {  # breach NAME SETUP: a folder made by SETUP must fail --check-out
  local d="$tmp/breach-$1"
  mkdir -p "$d"
  (cd "$d" && eval "$2")
  if bash "$repo/scripts/gpu_check.sh" --check-out "$d" >"$d.txt" 2>&1; then fail "--check-out passes $1"
  else ok "--check-out refuses $1: $(head -1 "$d.txt")"; fi
}
breach "nine files" 'for i in 1 2 3 4 5 6 7 8 9; do echo $i >f$i.log; done'
breach "a file over 16 MiB" 'head -c $((16 * 1048576 + 1)) /dev/zero >big.log'
breach "three folders deep" 'mkdir -p a/b/c && echo x >a/b/c/f.log'
breach "a space in a name" 'echo x >"a b.log"'
breach "a symbolic link" 'echo x >f.log && ln -s f.log g.log'
mkdir -p "$tmp/fine/a/b"
for i in 1 2 3 4 5 6 7; do echo "$i" >"$tmp/fine/f-$i.log"; done
head -c $((16 * 1048576)) /dev/zero >"$tmp/fine/a/b/exactly-16MiB.bin"
bash "$repo/scripts/gpu_check.sh" --check-out "$tmp/fine" >/dev/null && ok "--check-out passes 8 files, 16 MiB, two folders deep" ||
  fail "--check-out refuses a folder within the limits"

finish "gpu_check output"
