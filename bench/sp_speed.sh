#!/usr/bin/env bash
# Ulysses sequence parallelism against data parallelism on CPU at 64K-token packs (not a test;
# issue 24's speed figure): the same data, 2 ranks each way, in one run. DP=2 gives each rank its
# own pack a step; SP=2 runs every pack on both ranks, each computing half its tokens and
# exchanging q/k/v and the attention output through the TCPStore collectives (4 all-to-alls a
# layer forward, 4 in the recompute, 4 in backward). Tokens/s is taken between the end of the
# first step and the end of the last, so start-up and the first step's allocations are left out.
# Usage: bench/sp_speed.sh [--tokens 65536] [--steps 3] [--json OUT]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${LONGALIGN_BIN:-$root/build/release/bin/longalign}"
py="${LONGALIGN_PYTHON:-$root/build/venv/bin/python}"
tokens=65536 steps=3 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tokens) tokens="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --json) out="$2"; shift 2 ;;
    *) echo "usage: bench/sp_speed.sh [--tokens N] [--steps N] [--json OUT]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# ~3.3K-token records: 2 packs a step of `tokens` each, for `steps` steps.
"$bin" synth -o d.jsonl -n $((2 * steps * tokens / 3300 + 4)) --long-fraction 1 --min-words 1350 --max-words 1450 --seed 4 >/dev/null 2>&1
"$bin" tokenizer train -i d.jsonl --vocab-size 2000 -o tok.model >/dev/null 2>&1
cat >c.yaml <<YAML
model: {hidden_size: 256, intermediate_size: 704, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: $tokens, units_per_step: 2}
train: {lr: 1.0e-4, epochs: 1, max_steps: $steps, dtype: fp32, device: cpu, activation_checkpointing: true}
checkpoint: {every_steps: 0, at_end: false}
output: {dir: run, log_every: 1}
distributed: {timeout_s: 600}
YAML
for mode in dp sp; do
  sp=1; [ "$mode" = sp ] && sp=2
  "$root/scripts/launch.sh" --nproc-per-node 2 --standalone -- "$bin" train --config c.yaml --no-progress \
    --set output.dir=run-$mode --set distributed.sequence_parallel=$sp >"$mode.log" 2>&1 ||
    { echo "the $mode run failed:" >&2; tail -20 "$mode.log" >&2; exit 1; }
done
"$py" - "$tokens" "${out:-$root/bench/results/sp_speed_$(date +%F).json}" <<'PY'
import json, platform, sys, datetime
tokens, out = int(sys.argv[1]), sys.argv[2]
res = {}
for mode in ("dp", "sp"):
    m = [json.loads(l) for l in open(f"run-{mode}/metrics.jsonl")]
    a, b = m[0], m[-1]
    res[mode] = {"steps": len(m), "tokens": b["tokens"], "tokens_per_s": (b["tokens"] - a["tokens"]) / (b["elapsed_s"] - a["elapsed_s"]),
                 "losses": [x["loss"] for x in m]}
ratio = res["sp"]["tokens_per_s"] / res["dp"]["tokens_per_s"]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
doc = {"date": datetime.date.today().isoformat(), "machine": cpu, "pack_tokens": tokens, "ranks": 2,
       "model": "hidden 256, 4 layers, 8 heads / 4 kv, fp32, checkpointing", "dp2": res["dp"], "sp2": res["sp"],
       "sp_over_dp": ratio}
json.dump(doc, open(out, "w"), indent=1)
print(f"| {tokens} | {res['dp']['tokens_per_s']:.0f} | {res['sp']['tokens_per_s']:.0f} | {ratio:.2f} |")
print(f"(same losses step by step: {all(abs(x - y) <= 1e-5 * abs(x) for x, y in zip(res['dp']['losses'], res['sp']['losses']))})")
PY
