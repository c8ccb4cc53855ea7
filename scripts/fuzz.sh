#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, into build/fuzz; configured
# once, rebuilt incrementally) and runs each named target, or all of them, for N seconds.
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [--build-only] [TARGET...]
#
# Each target starts from a copy of its seed corpus tests/fuzz/corpus/TARGET (the repository's
# corpus is never written) in build/fuzz/corpus/TARGET, where new finds accumulate across runs.
# --jobs J > 1 runs J fuzzing processes per target (libFuzzer's -fork). Crash, timeout and OOM
# reproducers go to build/fuzz/artifacts/TARGET/, logs to build/fuzz/logs/TARGET.log. Exits 1 if
# any target found something, printing each reproducer; rerun one with
#   build/fuzz/TARGET REPRODUCER
# Build parallelism is $LONGALIGN_JOBS (default: all cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bdir="${LONGALIGN_FUZZ_BUILD_DIR:-$root/build/fuzz}"
all_targets=(fuzz_record_parser fuzz_chat_template fuzz_safetensors_header fuzz_plan fuzz_dataset fuzz_train_config fuzz_pickle_shape fuzz_bpe_tokenizer)

seconds=60 jobs=1 build_only=0 targets=()
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a value}"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: --seconds must be a positive integer" >&2; exit 2; }
[[ "$jobs" =~ ^[0-9]+$ && "$jobs" -gt 0 ]] || { echo "fuzz.sh: --jobs must be a positive integer" >&2; exit 2; }
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target $t (have: ${all_targets[*]})" >&2; exit 2; }
done

# The largest input each target is given: enough for a few records, a plan of a few steps or a
# full config; longer inputs only slow the search down.
max_len() {
  case "$1" in
    fuzz_plan|fuzz_train_config|fuzz_dataset) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt install clang libclang-rt-14-dev)" >&2; exit 2; }
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
mkdir -p "$bdir"
if [ ! -f "$bdir/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$root/tests/fuzz" -B "$bdir" -G Ninja >"$bdir/configure.log" 2>&1 ||
    { cat "$bdir/configure.log" >&2; exit 1; }
fi
cmake --build "$bdir" -j "${LONGALIGN_JOBS:-$(nproc)}" --target "${targets[@]}"
((build_only)) && exit 0

# UB is already fatal (-fno-sanitize-recover); these make its reports carry a stack.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}"
# The targets write their inputs to files ($TMPDIR/longalign-fuzz-PID) thousands of times a
# second: keep that in memory where possible. libFuzzer ends a timed run with _Exit, so the
# targets cannot clean up after themselves: each run gets a directory that is removed after it.
tmp_root="${TMPDIR:-/tmp}"
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then tmp_root=/dev/shm; fi

failed=()
run_tmp=""
trap '[ -n "$run_tmp" ] && rm -rf "$run_tmp"' EXIT
for t in "${targets[@]}"; do
  corpus="$bdir/corpus/$t" artifacts="$bdir/artifacts/$t/" log="$bdir/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$bdir/logs"
  # -n: seeds already copied (and the inputs found since) are left as they are; new seeds are
  # added. The repository's corpus itself is only ever read.
  [ -d "$root/tests/fuzz/corpus/$t" ] && cp -n "$root/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  marker="$bdir/logs/.$t.start"
  touch "$marker"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")"
        -artifact_prefix="$artifacts" -print_final_stats=1)
  ((jobs > 1)) && args+=(-fork="$jobs")
  echo "[fuzz] $t: ${seconds}s, corpus $corpus ($(ls "$corpus" | wc -l) inputs)"
  rc=0
  run_tmp=$(mktemp -d "$tmp_root/longalign-fuzz-run.XXXXXX")
  (cd "$bdir" && TMPDIR="$run_tmp" "./$t" "${args[@]}" "$corpus") >"$log" 2>&1 || rc=$?
  grep -E '^(stat::|#[0-9]+ +DONE)' "$log" | sed "s/^/[fuzz] $t: /" || true
  new_artifacts=$(find "$artifacts" -type f -newer "$marker" 2>/dev/null)
  if ((rc == 0)) && [ -z "$new_artifacts" ]; then
    # libFuzzer only ever adds files: keep the kept corpus minimal so that later runs do not
    # spend their time re-reading inputs that cover nothing new.
    merged="$bdir/corpus/.$t.merged"
    rm -rf "$merged" && mkdir -p "$merged"
    if (cd "$bdir" && TMPDIR="$run_tmp" "./$t" -merge=1 -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
          "$merged" "$corpus") >"$bdir/logs/$t.merge.log" 2>&1; then
      rm -rf "$corpus" && mv "$merged" "$corpus"
      echo "[fuzz] $t: corpus merged to $(ls "$corpus" | wc -l) inputs"
    else
      rm -rf "$merged"
    fi
  fi
  rm -rf "$run_tmp"; run_tmp=""
  if ((rc != 0)) || [ -n "$new_artifacts" ]; then
    failed+=("$t")
    echo "[fuzz] $t: FAILED (exit $rc); log $log" >&2
    grep -E 'ERROR: |SUMMARY: |runtime error|fuzz: |fuzz invariant' "$log" | head -n 20 | sed 's/^/    /' >&2 || true
    for a in $new_artifacts; do echo "[fuzz] $t: reproducer $a (run: $bdir/$t $a)" >&2; done
  else
    echo "[fuzz] $t: ok"
  fi
done

if ((${#failed[@]})); then
  echo "[fuzz] findings in: ${failed[*]}" >&2
  exit 1
fi
echo "[fuzz] all ${#targets[@]} target(s) clean for ${seconds}s each"
