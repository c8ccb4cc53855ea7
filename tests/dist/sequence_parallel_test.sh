#!/usr/bin/env bash
# Ulysses sequence parallelism on CPU through scripts/launch.sh (TCPStore collectives): a tiny GQA
# model (4 q heads, 2 kv heads) trained 6 steps with each pack split over 2 ranks, over 4 (kv heads
# replicated) and 2 x 2 (data x sequence parallel) equals one process at ZeRO-0 and ZeRO-3 (and with
# every memory option: optimizer offload, tiled MLP, activation offload; and under LoRA), in fp64
# with the tolerances derived in dist_cli_test.sh (compare_runs.py) and in fp32 with losses within
# 1e-6 relative; a run resumes across degrees (SP=2 -> 1 -> 4) on the same trajectory; a degree the
# heads cannot take, or a world it does not divide, is refused with the key named. The packs hold
# two or three chats in 300-512 tokens: their sequences straddle the slices, and the script checks
# that some packs' token counts are not multiples of 4 (so the padding is exercised).
set -u
bin="$1"; py="$2"; launch="$3"
here="$(cd "$(dirname "$0")" && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
same() { "$py" "$here/compare_runs.py" "$@"; }

"$bin" synth -o d.jsonl -n 60 --min-words 20 --max-words 80 --seed 5 >/dev/null 2>&1
"$bin" tokenizer train -i d.jsonl --vocab-size 400 -o tok.model >/dev/null 2>&1
cat >c.yaml <<YAML
model: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 512, units_per_step: 2}
train: {lr: 3.0e-3, epochs: 1, max_steps: 6, warmup_ratio: 0.1, dtype: fp64, device: cpu, activation_checkpointing: true}
checkpoint: {every_steps: 0, keep_last: 5}
output: {dir: one, log_every: 1}
distributed: {timeout_s: 30}
YAML
log="$tmp/log"
run() {  # run N_PROCS SP [--set ...]
  local n="$1" sp="$2"; shift 2
  if [ "$n" = 1 ]; then
    "$bin" train --config c.yaml --no-progress --set distributed.sequence_parallel="$sp" "$@" >>"$log" 2>&1
  else
    "$launch" --nproc-per-node "$n" --standalone -- "$bin" train --config c.yaml --no-progress \
      --set distributed.sequence_parallel="$sp" "$@" >>"$log" 2>&1
  fi
}

run 1 1 --set output.dir=one || fail "1-process run"
odd=$("$py" - one/data.pack <<'PY'
import json, struct, sys
d = sys.argv[1]
plan = json.load(open(f"{d}/plan.json"))
units = [u for s in plan["steps"][:6] for u in s["units"]]
print(sum(1 for u in units if u.get("tokens", 0) % 4 != 0), len(units))
PY
)
echo "packs of the 6 steps whose token count is not a multiple of 4: $odd"
[ "${odd%% *}" -gt 0 ] 2>/dev/null || fail "no pack with a token count that is not a multiple of 4 (got '$odd')"

for z in 0 3; do
  for shape in "2 2" "4 4" "4 2"; do
    set -- $shape
    name="sp$2w$1z$z"
    run "$1" "$2" --set output.dir=$name --set distributed.zero=$z || { fail "$name run"; continue; }
    label="SP=$2 on $1 ranks$([ "$1" != "$2" ] && echo " ($(($1 / $2)) data-parallel)"), ZeRO-$z"
    r=$(same one $name) && ok "$label == 1 process ($r)" || fail "$label: $r"
  done
done
grep -q "2 data-parallel x 2 sequence-parallel" "$log" || fail "the run does not report its data x sequence-parallel shape"
# With every memory option (ZeRO-2 + optimizer offload; ZeRO-3 + tiled MLP, activation and
# optimizer offload): still one process's run.
run 2 2 --set output.dir=spoff2 --set distributed.zero=2 --set distributed.offload_optimizer=true || fail "SP ZeRO-2 offload run"
r=$(same one spoff2) && ok "SP=2, ZeRO-2 + optimizer offload == 1 process ($r)" || fail "SP ZeRO-2 offload: $r"
run 4 2 --set output.dir=spall --set distributed.zero=3 --set train.tiled_mlp_tokens=64 --set train.offload_activations=true \
  --set distributed.offload_optimizer=true || fail "SP with every memory option run"
r=$(same one spall) && ok "SP=2 x DP=2, ZeRO-3 + tiled MLP + activation and optimizer offload == 1 process ($r)" \
  || fail "SP with every memory option: $r"
# LoRA (rank 4 on every projection): the adapters train the same under SP=2 at ZeRO-3.
lora='{rank: 4, alpha: 8}'
run 1 1 --set output.dir=lora1 --set "train.lora=$lora" || fail "1-process LoRA run"
run 2 2 --set output.dir=lora2 --set "train.lora=$lora" --set distributed.zero=3 || fail "SP LoRA run"
r=$("$py" - lora1 lora2 <<'PY'
import glob, json, sys
import numpy as np
from safetensors.numpy import load_file
a, b = sys.argv[1:3]
ma, mb = ([json.loads(l) for l in open(f"{d}/metrics.jsonl")] for d in (a, b))
rl = max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(ma, mb))
rg = max(abs(x["grad_norm"] - y["grad_norm"]) / abs(x["grad_norm"]) for x, y in zip(ma, mb))
wa, wb = (load_file(sorted(glob.glob(f"{d}/checkpoints/step-*/adapter_model.safetensors"))[-1]) for d in (a, b))
assert set(wa) == set(wb) and len(wa) > 0, set(wa) ^ set(wb)
dw = max(float(np.abs(wa[k].astype(np.float64) - wb[k]).max()) for k in wa)
print(f"{len(ma)} steps, loss rel diff {rl:.1e}, grad norm rel diff {rg:.1e}, adapter max diff {dw:.1e}")
sys.exit(0 if len(ma) == len(mb) == 6 and rl < 1e-9 and rg < 1e-9 and dw < 1e-6 else 1)
PY
) && ok "LoRA, SP=2 at ZeRO-3 == 1 process ($r)" || fail "LoRA under SP: $r"

# fp32, the production dtype: losses within 1e-6 relative of one process.
run 1 1 --set output.dir=one32 --set train.dtype=fp32 || fail "1-process fp32 run"
run 4 2 --set output.dir=sp32 --set train.dtype=fp32 --set distributed.zero=3 || fail "fp32 SP run"
r=$(same one32 sp32 fp32 --loss-rel 1e-6) && ok "fp32: SP=2 x DP=2, ZeRO-3 == 1 process ($(echo $r))" \
  || fail "fp32 SP: $(echo $r)"

# Resume across degrees: SP=2 stops after step 2, one process continues to step 4, SP=4 finishes.
run 2 2 --set output.dir=chain --stop-at-step 2 && run 1 1 --set output.dir=chain --resume --stop-at-step 4 \
  && run 4 4 --set output.dir=chain --resume || fail "SP=2 -> 1 -> 4 resume runs"
r=$(same one chain) && ok "SP=2 -> 1 -> 4 resumed == 1 process ($r)" || fail "resume across degrees: $r"

# Refusals, each naming distributed.sequence_parallel.
msg=$(run 1 3 --set output.dir=bad 2>&1; tail -3 "$log")
echo "$msg" | grep -q "distributed.sequence_parallel: the model's 4 attention heads do not split over 3" \
  && ok "a degree the heads cannot take is refused" || fail "degree 3 with 4 heads: $msg"
msg=$(run 1 2 --set output.dir=bad 2>&1; tail -3 "$log")
echo "$msg" | grep -q "distributed.sequence_parallel 2 needs a multiple of 2 ranks" \
  && ok "a world the degree does not divide is refused" || fail "SP=2 on 1 process: $msg"

if [ "$fails" -ne 0 ]; then echo "$fails sequence-parallel check(s) failed"; tail -30 "$log"; exit 1; fi
echo "all sequence-parallel checks passed"
