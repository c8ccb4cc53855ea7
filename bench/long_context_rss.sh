#!/usr/bin/env bash
# Peak host memory of one training step at long micro-steps on CPU, with and without the tiled
# MLP (not a test; issue 24's CPU memory check). A small Llama (hidden 512, 4 layers, intermediate
# 1408, vocab 32000, 8 heads) trains one step in fp32 with activation checkpointing on one pack of
# ~4K-token sequences at each length (attention stays cheap; the reference attention's block
# workspace, ~0.7 GB at 4K keys, is about the same at every length and cancels in the growth).
# The growth of the peak per extra token (between consecutive lengths, so start-up and the model
# cancel) is set beside the planner's figure for the same config (`longalign plan` at the run's
# ZeRO stage, 0 by default: the total's growth per token).
# ZERO=3 runs ZeRO-3 on one process instead (weights are the shards, gradients go straight to the
# accumulator, the recomputed layer output is freed before its backward) beside the planner's ZeRO-3.
# Usage: [MLP_TILES="0 1024"] [ZERO=0|3] bench/long_context_rss.sh [--lengths "16384 32768 65536 131072"] [--json OUT]
set -euo pipefail
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-65536}"  # frees go back to the system (bench/lora_rss.sh)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${LONGALIGN_BIN:-$root/build/release/bin/longalign}"
py="${LONGALIGN_PYTHON:-$root/build/venv/bin/python}"
lengths="16384 32768 65536 131072" out="" zero="${ZERO:-0}"
while [ $# -gt 0 ]; do
  case "$1" in
    --lengths) lengths="$2"; shift 2 ;;
    --json) out="$2"; shift 2 ;;
    *) echo "usage: bench/long_context_rss.sh [--lengths \"L1 L2 ...\"] [--json OUT]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
max=0
for t in $lengths; do [ "$t" -gt "$max" ] && max=$t; done
# ~3.3K-token records; each length trains on the first t / 3500 of them, which fill one pack.
"$bin" synth -o all.jsonl -n $((max / 3500 + 1)) --long-fraction 1 --min-words 1350 --max-words 1450 --seed 3 >/dev/null 2>&1
"$bin" tokenizer train -i all.jsonl --vocab-size 2000 -o tok.model >/dev/null 2>&1
results=results.jsonl
: >"$results"
for tiled in ${MLP_TILES:-0 1024}; do  # MLP_TILES="1024": the tiled runs only
  for t in $lengths; do
    head -n $((t / 3500)) all.jsonl >d.jsonl
    cat >c.yaml <<YAML
model: {hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 8,
        vocab_size: 32000}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: $t, units_per_step: 1}
train: {lr: 1.0e-4, epochs: 1, max_steps: 1, dtype: fp32, device: cpu, activation_checkpointing: true,
        tiled_mlp_tokens: $tiled, loss_chunk_tokens: 1024}
checkpoint: {every_steps: 0, keep_last: 1}
distributed: {zero: $zero}
output: {dir: run-$tiled-$t, log_every: 1}
YAML
    /usr/bin/time -v "$bin" train --config c.yaml --no-progress >"run-$tiled-$t.log" 2>"time-$tiled-$t.log" ||
      { echo "training at $t tokens failed:" >&2; tail -5 "run-$tiled-$t.log" "time-$tiled-$t.log" >&2; exit 1; }
    peak_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "time-$tiled-$t.log")
    tokens=$("$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["tokens"])' "run-$tiled-$t/metrics.jsonl")
    # The planner's total at this micro-step (fp32 on CPU, checkpointing on, the run's ZeRO stage).
    plan=$("$bin" plan --config c.yaml --zero "$zero" --set data.max_tokens="$tokens" --gpu-memory 1000GB 2>/dev/null |
           awk '/activation checkpointing on/ {on=1} on && /total/ {print $2; exit}')
    echo "{\"zero\": $zero, \"tiled_mlp_tokens\": $tiled, \"max_tokens\": $t, \"tokens\": $tokens, \"peak_rss_kb\": $peak_kb, \"plan_total_gib\": $plan}" >>"$results"
    echo "tiled $tiled, $tokens tokens: peak RSS $((peak_kb / 1024)) MiB, planner total $plan GiB" >&2
  done
done
"$py" - "$results" "${out:-$root/bench/results/long_context_rss_$(date +%F).json}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| MLP | tokens | peak RSS MiB | measured growth, bytes/token | planner's, bytes/token | ratio |")
print("|---|---|---|---|---|---|")
for tiled in sorted({r["tiled_mlp_tokens"] for r in rows}):
    rs = sorted((r for r in rows if r["tiled_mlp_tokens"] == tiled), key=lambda r: r["tokens"])
    prev = None
    for r in rs:
        cells = ["-", "-", "-"]
        if prev:
            dt = r["tokens"] - prev["tokens"]
            got = (r["peak_rss_kb"] - prev["peak_rss_kb"]) * 1024 / dt
            want = (r["plan_total_gib"] - prev["plan_total_gib"]) * 2**30 / dt
            r["growth_bytes_per_token"], r["planner_bytes_per_token"] = got, want
            cells = [f"{got:.0f}", f"{want:.0f}", f"{got / want:.3f}"]
        name = (f"tiled {tiled}" if tiled else "untiled") + (f", ZeRO-{r['zero']}" if r.get("zero") else "")
        print(f"| {name} | {r['tokens']} | {r['peak_rss_kb'] // 1024} | " + " | ".join(cells) + " |")
        prev = r
json.dump(rows, open(sys.argv[2], "w"), indent=1)
print(f"wrote {sys.argv[2]}")
PY
