#!/usr/bin/env bash
# Data parallelism on CPU through scripts/launch.sh (TCPStore collectives): 2 processes match
# 1 process with the same global batch (losses over 6 steps within 1e-6, final parameters 2e-6),
# ZeRO-1, 2 and 3 (on 1, 2 and 4 ranks) and optimizer offload match it, checkpoints move across
# ZeRO stages, checkpoints move between world sizes 2 -> 1 and 1 -> 2 with the same
# continuation, killing a worker makes the launcher exit non-zero promptly, and without a launcher a
# rank whose peer died or hung exits within the timeout naming that peer.
set -u
bin="$1"; py="$2"; launch="$3"
cfgdir="$(cd "$(dirname "$launch")/../configs" && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

"$bin" synth -o d.jsonl -n 120 --min-words 20 --max-words 80 --seed 3 >/dev/null 2>&1
"$bin" tokenizer train -i d.jsonl --vocab-size 400 -o tok.model >/dev/null 2>&1
cat >c.yaml <<YAML
model: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 512, units_per_step: 4}
train: {lr: 3.0e-3, epochs: 1, max_steps: 6, warmup_ratio: 0.1, dtype: fp32, device: cpu, activation_checkpointing: true}
checkpoint: {every_steps: 0, keep_last: 5}
output: {dir: one, log_every: 1}
distributed: {timeout_s: 20}
YAML
train1() { "$bin" train --config c.yaml --no-progress "$@" >>"log.$$" 2>&1; }
train2() { "$launch" --nproc-per-node 2 --standalone -- "$bin" train --config c.yaml --no-progress "$@" >>"log.$$" 2>&1; }
# same RUN_A RUN_B: losses within 1e-6 (relative) and final parameters within 2e-6 (absolute).
# Reduction order differs between setups (reduce-scatter vs all-reduce, 1 vs 2 ranks) by ~1e-7
# relative; AdamW's m/(sqrt(v)+eps) turns that into up to ~1e-6 on weights whose gradients are
# near zero, while a real divergence shows at the scale of a step, lr = 3e-3.
same() {
  "$py" - "$1" "$2" <<'PY'
import json, sys, glob
from safetensors.numpy import load_file
a, b = sys.argv[1:3]
la = [json.loads(l)["loss"] for l in open(f"{a}/metrics.jsonl")]
lb = [json.loads(l)["loss"] for l in open(f"{b}/metrics.jsonl")]
assert len(la) == len(lb) >= 5, (la, lb)
rel = max(abs(x - y) / abs(x) for x, y in zip(la, lb))
ca = load_file(sorted(glob.glob(f"{a}/checkpoints/step-*/model.safetensors"))[-1])
cb = load_file(sorted(glob.glob(f"{b}/checkpoints/step-*/model.safetensors"))[-1])
diff = max(float(abs(ca[k] - cb[k]).max()) for k in ca)
print(f"loss rel diff {rel:.2e}, param max diff {diff:.2e}")
sys.exit(0 if rel < 1e-6 and diff < 2e-6 else 1)
PY
}

train1 --set output.dir=one || fail "1-process run"
train2 --set output.dir=two || fail "2-process run"
r=$(same one two) && ok "2 processes == 1 process ($r)" || fail "2 vs 1 process: $r"
train2 --set output.dir=zero1 --set distributed.zero=1 || fail "ZeRO-1 run"
ls zero1/checkpoints/step-00000006/optimizer-00001.safetensors >/dev/null 2>&1 || fail "ZeRO-1 shards not saved"
r=$(same two zero1) && ok "ZeRO-1 == ZeRO-0 ($r)" || fail "ZeRO-1 vs ZeRO-0: $r"
train2 --set output.dir=zero2 --set distributed.zero=2 || fail "ZeRO-2 run"
r=$(same two zero2) && ok "ZeRO-2 == ZeRO-0 ($r)" || fail "ZeRO-2 vs ZeRO-0: $r"
# A whole epoch ends with a short step (fewer units than ranks x micro-steps): ranks without a
# unit contribute zeros, and the result still equals one process.
train1 --set output.dir=ep1 --set train.max_steps=0 || fail "1-process epoch"
train2 --set output.dir=ep0 --set train.max_steps=0 --set distributed.bucket_mb=0.05 || fail "ZeRO-0 epoch"
r=$(same ep1 ep0) && ok "full epoch, ZeRO-0 with overlapped all-reduce on 2 == 1 process ($r)" || fail "epoch ZeRO-0: $r"
train2 --set output.dir=ep2 --set train.max_steps=0 --set distributed.zero=2 || fail "ZeRO-2 epoch"
n_units=$("$py" -c "import json;p=json.load(open('ep1/data.pack/plan.json'));print([len(s['units']) for s in p['steps']][-1])")
r=$(same ep1 ep2) && ok "full epoch with a final step of $n_units unit(s): ZeRO-2 on 2 == 1 process ($r)" \
  || fail "epoch ZeRO-2 vs 1 process: $r"

# ZeRO-3 (weights sharded too, each layer gathered for its forward and its recompute) on 2 and 4
# ranks, and on 1 process (a world of one), equals the replicated single process; so does the
# optimizer offloaded to the host, alone and with ZeRO-3; and a full epoch whose last step leaves
# ranks without a unit (they run idle micro-steps to take part in the gathers).
train4() { "$launch" --nproc-per-node 4 --standalone -- "$bin" train --config c.yaml --no-progress "$@" >>"log.$$" 2>&1; }
for w in 1 2 4; do
  "train$w" --set output.dir=z3w$w --set distributed.zero=3 || fail "ZeRO-3 run on $w rank(s)"
  r=$(same one z3w$w) && ok "ZeRO-3 on $w rank(s) == 1 process ($r)" || fail "ZeRO-3 on $w rank(s): $r"
done
ls z3w4/checkpoints/step-00000006/optimizer-00003.safetensors >/dev/null 2>&1 || fail "ZeRO-3 optimizer shards not saved"
train1 --set output.dir=off1 --set distributed.offload_optimizer=true || fail "offload run"
r=$(same one off1) && ok "optimizer offload on 1 process == 1 process ($r)" || fail "offload: $r"
# Ranks taking turns to build the full model before the parallelism pass (as host memory would
# force for a large model): one at a time on 2 ranks, same result, at ZeRO-3 (background gathers)
# and ZeRO-0 (overlapped all-reduce), the two passes that open a second channel.
for z in 3 0; do
  n0=$(wc -l <"log.$$")
  train2 --set output.dir=turns$z --set distributed.zero=$z --set distributed.build_concurrency=1 || fail "ZeRO-$z in waves"
  ref=one; [ "$z" = 0 ] && ref=two
  r=$(same $ref turns$z) && tail -n +$((n0 + 1)) "log.$$" | grep -q "1 of this node's 2 at a time, 2 waves" \
    && ok "ZeRO-$z on 2 ranks, the model built one rank at a time == run '$ref' ($r)" || fail "ZeRO-$z in waves: $r"
done
train2 --set output.dir=off3 --set distributed.offload_optimizer=true --set distributed.zero=3 || fail "ZeRO-3 + offload run"
r=$(same one off3) && ok "ZeRO-3 + offload on 2 ranks == 1 process ($r)" || fail "ZeRO-3 + offload: $r"
train2 --set output.dir=ep3 --set train.max_steps=0 --set distributed.zero=3 || fail "ZeRO-3 epoch"
r=$(same ep1 ep3) && ok "full epoch with a final step of $n_units unit(s): ZeRO-3 on 2 == 1 process ($r)" \
  || fail "epoch ZeRO-3 vs 1 process: $r"
train2 --set output.dir=nockpt --set distributed.zero=3 --set train.activation_checkpointing=false \
  && grep -q "runs with activation checkpointing although" "log.$$" && r=$(same one nockpt) \
  && ok "ZeRO-3 with train.activation_checkpointing false recomputes anyway and says so ($r)" \
  || fail "ZeRO-3 without checkpointing: $r"

# Checkpoints move across stages and world sizes: ZeRO-3 on 2 ranks -> ZeRO-1 on 1 process ->
# ZeRO-3 on 2 ranks, and ZeRO-3 on 4 ranks -> ZeRO-2 on 2, each continuing the uninterrupted run.
train2 --set output.dir=x31 --set distributed.zero=3 --stop-at-step 2 \
  && train1 --set output.dir=x31 --set distributed.zero=1 --resume --stop-at-step 4 \
  && train2 --set output.dir=x31 --set distributed.zero=3 --resume || fail "ZeRO-3 -> ZeRO-1 -> ZeRO-3 resume runs"
r=$(same one x31) && ok "ZeRO-3 on 2 -> ZeRO-1 on 1 -> ZeRO-3 on 2 ($r)" || fail "ZeRO-3 <-> ZeRO-1 resume: $r"
train4 --set output.dir=x42 --set distributed.zero=3 --stop-at-step 3 \
  && train2 --set output.dir=x42 --set distributed.zero=2 --resume || fail "ZeRO-3 on 4 -> ZeRO-2 on 2 resume runs"
r=$(same one x42) && ok "ZeRO-3 on 4 -> ZeRO-2 on 2 ($r)" || fail "ZeRO-3 -> ZeRO-2 resume: $r"

# 2 ranks (ZeRO-1) stop after step 2, 1 rank resumes; and the reverse.
train2 --set output.dir=r21 --set distributed.zero=2 --stop-at-step 2 && train1 --set output.dir=r21 --resume \
  || fail "2 -> 1 resume runs"
r=$(same one r21) && ok "checkpoint from 2 ranks resumes on 1 ($r)" || fail "2 -> 1: $r"
train1 --set output.dir=r12 --stop-at-step 2 && train2 --set output.dir=r12 --set distributed.zero=1 --resume \
  || fail "1 -> 2 resume runs"
r=$(same one r12) && ok "checkpoint from 1 rank resumes on 2 ($r)" || fail "1 -> 2: $r"

# The demo's own model (configs/tiny_cpu.yaml, 4M parameters) on 2 ranks at ZeRO 0-3 == 1 rank.
"$bin" synth -o demo.jsonl -n 60 --min-words 60 --max-words 400 --seed 5 >/dev/null 2>&1
"$bin" tokenizer train -i demo.jsonl --vocab-size 2000 -o demo.model >/dev/null 2>&1
tiny=(--config "$cfgdir/tiny_cpu.yaml" --set "data.inputs=[$tmp/demo.jsonl]" --set "data.tokenizer=$tmp/demo.model"
      --set train.max_steps=2 --set train.epochs=1 --set checkpoint.at_end=true --no-progress)
"$bin" train "${tiny[@]}" --set output.dir="$tmp/t1" >>"log.$$" 2>&1 || fail "tiny_cpu.yaml on 1 process"
for z in 0 1 2 3; do
  "$launch" --nproc-per-node 2 --standalone -- "$bin" train "${tiny[@]}" --set output.dir="$tmp/t2z$z" \
    --set distributed.zero=$z >>"log.$$" 2>&1 || fail "tiny_cpu.yaml on 2 ranks at ZeRO-$z"
  "$py" - t1 "t2z$z" <<'PY' && ok "configs/tiny_cpu.yaml on 2 ranks at ZeRO-$z == 1 process" || fail "tiny_cpu.yaml ZeRO-$z"
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(f"{d}/metrics.jsonl")] for d in sys.argv[1:3])
assert len(a) == len(b) == 2 and max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-6, (a, b)
PY
done

# Gradients far over the TCPStore's 8 MiB value limit (a 52M-parameter model: 208 MB of fp32
# gradients) travel in chunks: 2 processes at ZeRO-0 (bucketed) and ZeRO-2 match 1 process.
big=(--set model.hidden_size=1024 --set model.intermediate_size=2816 --set model.num_hidden_layers=4
     --set model.num_attention_heads=8 --set model.num_key_value_heads=8 --set train.max_steps=2
     --set data.max_tokens=256 --set checkpoint.at_end=true)
train1 --set output.dir=big1 "${big[@]}" || fail "1-process run of a 52M-parameter model"
train2 --set output.dir=big2 "${big[@]}" || fail "2-process run with 208 MB of gradients"
train2 --set output.dir=big3 --set distributed.zero=2 "${big[@]}" || fail "ZeRO-2 run with 208 MB of gradients"
train2 --set output.dir=big4 --set distributed.zero=3 --set checkpoint.max_shard_mb=64 "${big[@]}" \
  || fail "ZeRO-3 run of a 52M-parameter model"
# Written one gathered group at a time into 64 MB shards: the same tensors as the 1-process run's
# (within the reduction-order tolerance), every one listed in the index.
"$py" - big1 big4 <<'PY' && ok "ZeRO-3 weights streamed into shards equal 1 process's" || fail "ZeRO-3 sharded weights"
import glob, json, sys
from safetensors.numpy import load_file
one = load_file(glob.glob(f"{sys.argv[1]}/checkpoints/step-*/model.safetensors")[0])
d = glob.glob(f"{sys.argv[2]}/checkpoints/step-*")[0]
wm = json.load(open(f"{d}/model.safetensors.index.json"))["weight_map"]
assert len(set(wm.values())) >= 3 and set(wm) == set(one), (len(set(wm.values())), set(wm) ^ set(one))
got = {}
for f in set(wm.values()):
    got.update(load_file(f"{d}/{f}"))
assert max(float(abs(one[k] - got[k]).max()) for k in one) < 1e-4
PY
"$py" - big1 big2 big3 big4 <<'PY' && ok "208 MB of gradients over the store: ZeRO-0, 2 and 3 on 2 == 1 process" || fail "large payloads"
import json, sys
runs = [[json.loads(l)["loss"] for l in open(f"{d}/metrics.jsonl")] for d in sys.argv[1:]]
assert all(len(r) == 2 for r in runs), runs
for r in runs[1:]:
    assert max(abs(x - y) / abs(x) for x, y in zip(runs[0], r)) < 1e-5, runs
PY

# World size must divide the plan's units per step: refused before training.
"$launch" --nproc-per-node 3 --standalone -- "$bin" train --config c.yaml --set output.dir=w3 --no-progress >w3.log 2>&1
rc=$?; [ "$rc" = 2 ] && grep -q "does not divide" w3.log && ok "world size 3 refused for 4 units per step" \
  || fail "world size check (exit $rc)"

# Kill one worker of a long run: the launcher stops the other and exits non-zero, well within the timeout.
"$launch" --nproc-per-node 2 --standalone --kill-grace 5 -- "$bin" train --config c.yaml --set output.dir=kill \
  --set train.max_steps=100000 --set train.epochs=1000 --no-progress >kill.log 2>&1 &
lpid=$!
for _ in $(seq 1 300); do [ -s kill/metrics.jsonl ] && break; sleep 0.1; done
victim=$(pgrep -f "output.dir=kill" | while read -r p; do [ "$(tr '\0' ' ' </proc/$p/cmdline | cut -d' ' -f1)" = "$bin" ] && echo "$p"; done | tail -1)
start=$(date +%s)
kill -9 "$victim"
wait "$lpid"; rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" != 0 ] && [ "$took" -le 20 ] && ok "killed worker: launcher exit $rc after ${took}s" \
  || { fail "killed worker: exit $rc after ${took}s"; tail -3 kill.log; }
pgrep -f "output.dir=kill" >/dev/null && fail "workers left running after the launcher exited"

# Without a launcher to stop them (ranks on other nodes), survivors stop on their own within the
# timeout: a dead rank 1 (many buckets in flight) is named; a hung (stopped) rank 0, whose store
# no longer answers, trips the watchdog at timeout + grace (5 s + 5 s). The bounds allow for the
# step the survivor is in when its peer goes (seconds on a loaded 2-core machine); before, the
# dead-rank case took the timeout once per gradient bucket, and the hung one never ended.
survivor() {  # survivor VICTIM SIGNAL ARGS...: runs 2 ranks by hand, signals VICTIM, times the other
  local victim=$1 sig=$2; shift 2
  local port=$((29700 + RANDOM % 200)) pids=() r
  rm -rf "sv"
  for r in 0 1; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$bin" train --config c.yaml \
      --set output.dir=sv --set train.max_steps=100000 --set distributed.timeout_s=5 --no-progress "$@" >"sv.$r.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 300); do [ -s sv/metrics.jsonl ] && break; sleep 0.1; done
  kill "-$sig" "${pids[$victim]}"
  local start=$(date +%s.%N) other=$((1 - victim))
  wait "${pids[$other]}"; sv_rc=$?
  sv_took=$("$py" -c "import sys;print(round($(date +%s.%N)-float(sys.argv[1]),1))" "$start")
  kill -9 "${pids[$victim]}" 2>/dev/null; wait "${pids[$victim]}" 2>/dev/null
  sv_log="sv.$other.log"
}
survivor 1 KILL --set distributed.bucket_mb=0.01
"$py" -c "import sys;sys.exit(0 if $sv_rc==1 and $sv_took<=12 else 1)" && grep -q "rank 1 sent nothing within 5 s" "$sv_log" \
  && ok "dead rank 1: rank 0 exits 1 after ${sv_took}s naming it" || { fail "dead rank 1: exit $sv_rc after ${sv_took}s"; tail -2 "$sv_log"; }
survivor 1 KILL --set distributed.zero=3
"$py" -c "import sys;sys.exit(0 if $sv_rc==1 and $sv_took<=12 else 1)" && grep -q "rank 1 sent nothing within 5 s" "$sv_log" \
  && ok "ZeRO-3, rank 1 dies mid-gather: rank 0 exits 1 after ${sv_took}s naming it" \
  || { fail "ZeRO-3 dead rank 1: exit $sv_rc after ${sv_took}s"; tail -2 "$sv_log"; }
survivor 0 STOP
"$py" -c "import sys;sys.exit(0 if $sv_rc==1 and $sv_took<=14 else 1)" && grep -q "waiting for rank 0" "$sv_log" \
  && ok "hung rank 0: rank 1 exits 1 after ${sv_took}s naming it" || { fail "hung rank 0: exit $sv_rc after ${sv_took}s"; tail -2 "$sv_log"; }

if [ "$fails" -ne 0 ]; then echo "$fails distributed check(s) failed"; tail -20 "log.$$"; exit 1; fi
echo "all distributed checks passed"
