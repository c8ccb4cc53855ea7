#!/usr/bin/env bash
# Peak host memory of a training step, full SFT beside LoRA (not a test): a ~30M-parameter Llama
# trained from scratch on CPU in fp32, the same data and steps, LoRA rank 16 on all linear layers
# with embeddings and norms saved. The peak is read from /proc/PID/status (VmHWM) after it is
# reset once step 1 has finished (clear_refs 5), so start-up (model build, tokenization, the
# LoRA run's scratch base) is not counted, only steps 2..N; the final checkpoint is written after
# the last reading. Prints the peaks, their difference, and the optimizer state the frozen base no
# longer holds (AdamW's two fp32 moments and fp32 gradient accumulator per frozen parameter; fp32
# weights are their own masters).
# Usage: bench/lora_rss.sh [--steps N] [--json OUT]
set -euo pipefail
# glibc raises its mmap threshold after a large block is freed (up to 32 MiB), after which freed
# blocks stay resident: the LoRA run's start-up (writing its scratch base) would then sit in RSS
# through every step. A fixed threshold returns large frees to the system in both runs, so the
# peaks compare the memory the steps use (measured: without it the difference is 168 MiB, with
# it 346 MiB, for 194 MiB of AdamW state).
export MALLOC_MMAP_THRESHOLD_="${MALLOC_MMAP_THRESHOLD_:-65536}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${LONGALIGN_BIN:-$root/build/release/bin/longalign}"
py="${LONGALIGN_PYTHON:-$root/build/venv/bin/python}"
steps=6 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --json) out="$2"; shift 2 ;;
    *) echo "usage: bench/lora_rss.sh [--steps N] [--json OUT]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" synth -o d.jsonl -n 400 --min-words 100 --max-words 400 --seed 5 >/dev/null 2>&1
"$bin" tokenizer train -i d.jsonl --vocab-size 2000 -o tok.model >/dev/null 2>&1
cat >c.yaml <<YAML
model: {hidden_size: 512, intermediate_size: 1408, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 8}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 2048, units_per_step: 2}
train: {lr: 1.0e-3, epochs: 1, max_steps: $steps, dtype: fp32, device: cpu, activation_checkpointing: true}
checkpoint: {every_steps: 0, keep_last: 1}
output: {dir: run, log_every: 1}
YAML
sed -e 's|^train: {\(.*\)}$|train: {\1, lora: {rank: 16, alpha: 32, target_modules: all-linear, modules_to_save: [embed_tokens, norm, input_layernorm, post_attention_layernorm]}}|' c.yaml >lora.yaml
# peak NAME CONFIG: steps 2..N's VmHWM in kB
peak() {
  local name=$1 config=$2
  "$bin" train --config "$config" --no-progress --set "output.dir=$name" >"$name.log" 2>&1 &
  local pid=$! reset=0 hwm=0
  while kill -0 "$pid" 2>/dev/null; do
    local n=0
    [ -f "$name/metrics.jsonl" ] && n=$(wc -l <"$name/metrics.jsonl")
    if [ "$reset" = 0 ] && [ "$n" -ge 1 ]; then echo 5 >"/proc/$pid/clear_refs" 2>/dev/null && reset=1; fi
    if [ "$reset" = 1 ] && [ "$n" -lt "$steps" ]; then
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "$hwm")
    fi
    sleep 0.05
  done
  wait "$pid" || { echo "training $name failed:" >&2; tail -5 "$name.log" >&2; exit 1; }
  echo "$hwm"
}
full=$(peak full c.yaml)
lo=$(peak lora lora.yaml)
"$py" - "$full" "$lo" "$work" "$out" <<'PY'
import json, re, sys, datetime, platform
full_kb, lora_kb, work, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
log = open(f"{work}/lora.log").read()
total = int(re.search(r"training (\d+) parameters", open(f"{work}/full.log").read()).group(1))
m = re.search(r"training (\d+) of (\d+) parameters", log)
trained = int(m.group(1)) if m else None
frozen = total - trained if trained is not None else None
# AdamW's state for a frozen parameter: two fp32 moments (fp32 weights are their own masters).
# It also no longer holds the fp32 gradient accumulator and the .grad: 16 bytes in all.
state = frozen * 8 if frozen is not None else None
print(f"parameters {total:,}, LoRA trains {trained:,}" if trained else f"parameters {total:,}")
print(f"peak RSS, steps 2..N: full SFT {full_kb / 1024:.0f} MiB, LoRA {lora_kb / 1024:.0f} MiB, "
      f"difference {(full_kb - lora_kb) / 1024:.0f} MiB")
if state:
    print(f"AdamW state the frozen base no longer needs: {state / 2**20:.0f} MiB "
          f"({'met' if (full_kb - lora_kb) * 1024 >= state else 'NOT met'}); with its gradient buffers: "
          f"{2 * state / 2**20:.0f} MiB")
if out:
    json.dump({"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
               "parameters": total, "lora_trained": trained, "full_peak_kib": full_kb, "lora_peak_kib": lora_kb,
               "frozen_state_bytes": state}, open(out, "w"), indent=1)
PY
