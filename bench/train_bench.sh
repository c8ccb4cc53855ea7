#!/usr/bin/env bash
# Training throughput on CPU (not a test): tiny_cpu on the same synthetic data with naive,
# sorted and packed batching (the paper's efficiency comparison in miniature), and longalign
# beside a plain PyTorch loop (bench/peer_train.py) on the same packed data, model and steps.
# Usage: bench/train_bench.sh [build/release/bin/longalign] [python] ; prints a table and writes
# bench/results/train_bench_cpu_DATE.json (or $LONGALIGN_BENCH_JSON).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$root/build/release/bin/longalign}"
py="${2:-$root/build/venv/bin/python}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
"$bin" synth -o "$work/synth.jsonl" -n 400 --min-words 60 --max-words 400 >/dev/null 2>&1
"$bin" tokenizer train -i "$work/synth.jsonl" --vocab-size 2000 -o "$work/tok.model" >/dev/null 2>&1
common=(--config "$root/configs/tiny_cpu.yaml" --set "data.inputs=[$work/synth.jsonl]" --set "data.tokenizer=$work/tok.model"
        --set train.epochs=1 --set checkpoint.every_steps=0 --no-progress)
report="$work/report.jsonl"
for s in naive sort pack; do
  bs=4; [ "$s" = pack ] && bs=1
  "$bin" train "${common[@]}" --set "data.strategy=$s" --set "data.batch_size=$bs" --set "output.dir=$work/run-$s" \
    >"$work/$s.log" 2>&1
  "$py" - "$work/run-$s" "$s" "$work/$s.log" >>"$report" <<'PY'
import json, re, sys
run, name, log = sys.argv[1:4]
stats = json.load(open(f"{run}/data.pack/stats.json"))
last = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][-1]
rss = float(re.search(r"peak RSS (\d+) MB", open(log).read()).group(1))
print(json.dumps({"who": "longalign", "strategy": name, "steps": last["step"], "seconds": last["elapsed_s"],
                  "real_tokens_per_s": stats["tokens"] / last["elapsed_s"], "efficiency": stats["efficiency"],
                  "peak_rss_mb": rss}))
PY
done
steps=$("$py" -c "import json,sys;print(len(json.load(open(sys.argv[1]))['steps']))" "$work/run-pack/data.pack/plan.json")
"$py" "$root/bench/peer_train.py" "$work/run-pack/data.pack" "$steps" 256 688 4 4 2 3e-3 \
  | "$py" -c "import json,sys;d=json.loads(sys.stdin.read());d.update(who='pytorch-peer',strategy='pack');print(json.dumps(d))" >>"$report"
out="${LONGALIGN_BENCH_JSON:-$root/bench/results/train_bench_cpu_$(date +%F).json}"
"$py" - "$report" "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'who':<14}{'strategy':<10}{'steps':>6}{'seconds':>9}{'real tok/s':>12}{'peak RSS MB':>13}")
for r in rows:
    print(f"{r['who']:<14}{r['strategy']:<10}{r['steps']:>6}{r['seconds']:>9.1f}{r['real_tokens_per_s']:>12.0f}{r['peak_rss_mb']:>13.0f}")
json.dump(rows, open(sys.argv[2], "w"), indent=1)
print("wrote", sys.argv[2])
PY
