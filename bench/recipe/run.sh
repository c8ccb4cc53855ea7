#!/usr/bin/env bash
# The LongAlign paper's four findings in miniature (not a test): tiny Llamas trained from scratch
# on `synth` data on CPU, several seeds each, scored on held-out long tasks (passkey / key-value
# retrieval in long filler) and short tasks (small instructions with checkable answers):
#   1. more long data -> better long tasks, short tasks flat (0, 60, 120 long records + 2000 short)
#   2. packing with pack_mean vs sequence loss weighting
#   3. sorted vs naive batching quality
#   4. pack / sort vs naive training time
# and one diagnostic: packing with sequence weighting but no gradient clipping (a step's weights
# sum to M/M̄, so crowded steps have larger gradients, which clipping shrinks).
# Scores: exact-match accuracy of greedy answers (the expected answer text appears in the
# reply) and the mean per-sequence answer loss (`eval loss`), each as mean ± sd over seeds.
#
# Usage: bench/recipe/run.sh [--seeds N] [--smoke] [--json OUT] [--keep DIR] [--configs A,B]
#                            [--pack-world W] [--step-order mixed|cost]
#   --smoke: 1 seed, 3 steps a run, small data: checks that the script works (CI runs it).
#   --configs: run only these configurations (names as in results: long0, long_half, long_all,
#              pack_mean, pack_noclip, sort, naive).
#   --pack-world W, --step-order O: plan packed runs for W ranks (data.world_size; still trained
#              in one process) and with step order O (data.step_order): `cost` with W >= 2 groups
#              packs of similar cost (the steps a W-GPU run gets), `mixed` draws each step's packs
#              from across the cost range.
# Writes bench/results/recipe_DATE.json (or --json OUT) and prints a Markdown table.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${LONGALIGN_BIN:-$root/build/release/bin/longalign}"
py="${LONGALIGN_PYTHON:-$root/build/venv/bin/python}"
seeds=3 smoke=0 out="" keep="" configs="" pack_world="" step_order=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift 2 ;;
    --smoke) smoke=1; seeds=1; shift ;;
    --json) out="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    --configs) configs=",$2,"; shift 2 ;;
    --pack-world) pack_world="$2"; shift 2 ;;
    --step-order) step_order="$2"; shift 2 ;;
    *) echo "usage: bench/recipe/run.sh [--seeds N] [--smoke] [--json OUT] [--keep DIR] [--configs A,B] [--pack-world W] [--step-order O]" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="$root/bench/results/recipe_$(date +%F)$([ "$smoke" = 1 ] && echo _smoke).json"
if [ -n "$keep" ]; then work="$keep"; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

# Sizes chosen so that the whole study (3 seeds) stays under 40 minutes on 2 cores.
n_short=2000 n_long=120 n_eval=40 epochs=2 extra=()
if [ "$smoke" = 1 ]; then n_short=100 n_long=12 n_eval=6 extra=(--set train.max_steps=3); fi
half=$((n_long / 2))
"$bin" synth -o "$work/short.jsonl" -n "$n_short" --long-fraction 0 --seed 11 >/dev/null 2>&1
"$bin" synth -o "$work/long.jsonl" -n "$n_long" --long-fraction 1 --min-words 150 --max-words 800 --seed 12 >/dev/null 2>&1
"$bin" synth -o "$work/eval_short.jsonl" -n "$n_eval" --long-fraction 0 --seed 21 >/dev/null 2>&1
"$bin" synth -o "$work/eval_long.jsonl" -n "$n_eval" --long-fraction 1 --min-words 150 --max-words 800 --seed 22 >/dev/null 2>&1
head -n "$half" "$work/long.jsonl" >"$work/long_half.jsonl"
cat "$work/short.jsonl" "$work/long.jsonl" >"$work/all.jsonl"
"$bin" tokenizer train -i "$work/all.jsonl" --vocab-size 2000 -o "$work/tok.model" >/dev/null 2>&1
# Prompts and expected answers of the held-out sets, for generation.
for s in short long; do
  "$py" -c "
import json, sys
with open(sys.argv[2], 'w') as out:
    for i, line in enumerate(open(sys.argv[1])):
        m = json.loads(line)['messages']
        out.write(json.dumps({'id': i, 'prompt': m[0]['content'], 'expected': m[1]['content']}) + '\n')
" "$work/eval_$s.jsonl" "$work/prompts_$s.jsonl"
done

results="$work/results.jsonl"
: >"$results"
# run NAME SEED STRATEGY WEIGHTING BATCH UNITS_PER_STEP GRAD_CLIP INPUT...
run() {
  local name=$1 seed=$2 strategy=$3 weighting=$4 batch=$5 units=$6 clip=$7; shift 7
  local inputs dir="$work/run-$name-$seed" world=()
  if [ -n "$configs" ] && [[ "$configs" != *",$name,"* ]]; then return 0; fi
  if [ "$strategy" = pack ] && [ -n "$pack_world" ]; then world+=(--set "data.world_size=$pack_world"); fi
  if [ "$strategy" = pack ] && [ -n "$step_order" ]; then world+=(--set "data.step_order=$step_order"); fi
  inputs=$(printf '%s,' "$@"); inputs="[${inputs%,}]"
  "$bin" train --config "$root/configs/tiny_cpu.yaml" --set "data.inputs=$inputs" --set "data.tokenizer=$work/tok.model" \
    --set "data.strategy=$strategy" --set "data.weighting=$weighting" --set "data.batch_size=$batch" --set "data.units_per_step=$units" --set "train.grad_clip=$clip" \
    --set "data.seed=$seed" --set "train.seed=$seed" --set "train.epochs=$epochs" --set checkpoint.every_steps=0 \
    --set checkpoint.keep_last=1 --set "output.dir=$dir" --no-progress "${extra[@]}" "${world[@]}" >"$dir.log" 2>&1 \
    || { echo "training $name (seed $seed) failed:"; tail -5 "$dir.log"; exit 1; }
  local ck
  ck=$(ls -d "$dir"/checkpoints/step-* | tail -1)
  for s in short long; do
    "$bin" eval loss -m "$ck" -i "$work/eval_$s.jsonl" --max-tokens 2048 -o "$dir/loss_$s.jsonl" >/dev/null 2>&1
    "$bin" generate -m "$ck" -i "$work/prompts_$s.jsonl" -o "$dir/answers_$s.jsonl" --max-new-tokens 24 >/dev/null 2>&1
  done
  "$py" - "$dir" "$name" "$seed" >>"$results" <<'PY'
import json, sys
d, name, seed = sys.argv[1:4]
def norm(s): return " ".join(s.lower().split())
row = {"config": name, "seed": int(seed)}
for s in ("short", "long"):
    losses = [json.loads(l)["loss"] for l in open(f"{d}/loss_{s}.jsonl")]
    ans = [json.loads(l) for l in open(f"{d}/answers_{s}.jsonl")]
    row[f"{s}_loss"] = sum(losses) / len(losses)
    row[f"{s}_acc"] = sum(norm(a["expected"]) in norm(a["response"]) for a in ans) / len(ans)
m = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
row["train_s"] = m[-1]["elapsed_s"]
row["steps"] = m[-1]["step"]
print(json.dumps(row))
PY
  echo "done: $name seed $seed"
}

# Packs of 2048 tokens hold ~25 sequences of this mix, so 2 packs a step is ~50 sequences; sorted
# and naive batching get the same ~48 (12 micro-batches of 4, gradients accumulated), as the paper
# compares them at the same global batch.
for seed in $(seq 1 "$seeds"); do
  run long0 "$seed" pack sequence 1 2 1.0 "$work/short.jsonl"
  run long_half "$seed" pack sequence 1 2 1.0 "$work/short.jsonl" "$work/long_half.jsonl"
  run long_all "$seed" pack sequence 1 2 1.0 "$work/short.jsonl" "$work/long.jsonl"
  run pack_mean "$seed" pack pack_mean 1 2 1.0 "$work/short.jsonl" "$work/long.jsonl"
  run pack_noclip "$seed" pack sequence 1 2 0 "$work/short.jsonl" "$work/long.jsonl"
  run sort "$seed" sort sequence 4 12 1.0 "$work/short.jsonl" "$work/long.jsonl"
  run naive "$seed" naive sequence 4 12 1.0 "$work/short.jsonl" "$work/long.jsonl"
done

"$py" - "$results" "$out" "$seeds" "$smoke" "$n_short" "$n_long" <<'PY'
import json, statistics, sys, datetime, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
out, seeds, smoke = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
ns, nl = int(sys.argv[5]), int(sys.argv[6])
labels = {"long0": f"pack, 0 long + {ns} short", "long_half": f"pack, {nl // 2} long + {ns} short",
          "long_all": f"pack, {nl} long + {ns} short (sequence weighting)",
          "pack_mean": f"pack, {nl} + {ns}, pack_mean weighting",
          "pack_noclip": f"pack, {nl} + {ns}, sequence weighting, no gradient clipping",
          "sort": f"sort (12 x 4 a step), {nl} + {ns}", "naive": f"naive (12 x 4 a step), {nl} + {ns}"}
def ms(v):
    return (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0)
table = []
print(f"\n| configuration | long acc | short acc | long loss | short loss | train s | steps |")
print("|---|---|---|---|---|---|---|")
for key, label in labels.items():
    rs = [r for r in rows if r["config"] == key]
    if not rs:
        continue
    agg = {k: ms([r[k] for r in rs]) for k in ("long_acc", "short_acc", "long_loss", "short_loss", "train_s", "steps")}
    table.append({"config": key, "label": label, "seeds": len(rs), **{k: {"mean": m, "sd": s} for k, (m, s) in agg.items()}})
    f = lambda k, d=3: f"{agg[k][0]:.{d}f} ± {agg[k][1]:.{d}f}"
    print(f"| {label} | {f('long_acc', 2)} | {f('short_acc', 2)} | {f('long_loss')} | {f('short_loss')} | {f('train_s', 1)} | {agg['steps'][0]:.0f} |")
json.dump({"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
           "seeds": seeds, "smoke": smoke, "rows": rows, "table": table}, open(out, "w"), indent=1)
print(f"\nwrote {out}")
PY
