#!/usr/bin/env bash
# Data parallelism on CPU through scripts/launch.sh (TCPStore collectives): 2 processes match
# 1 process with the same global batch, ZeRO-1, 2 and 3 (on 1, 2 and 4 ranks) and optimizer offload
# match it, checkpoints move across ZeRO stages and between world sizes 2 -> 1 and 1 -> 2 with the
# same continuation, killing a worker makes the launcher exit non-zero promptly, and without a
# launcher a rank whose peer died or hung exits within the timeout naming that peer.
#
# The equivalence checks train in fp64 (train.dtype: fp64), where the reduction-order differences
# between setups are ~1e-15 and any CPU's instruction set gives the same verdict; a few fp32 runs
# keep the production dtype covered with tolerances derived from fp32's arithmetic (see `same`).
set -u
bin="$1"; py="$2"; launch="$3"  # $4: --quick (see below)
cfgdir="$(cd "$(dirname "$launch")/../configs" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
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
train: {lr: 3.0e-3, epochs: 1, max_steps: 6, warmup_ratio: 0.1, dtype: fp64, device: cpu, activation_checkpointing: true}
checkpoint: {every_steps: 0, keep_last: 5}
output: {dir: one, log_every: 1}
distributed: {timeout_s: 20}
YAML
train1() { "$bin" train --config c.yaml --no-progress "$@" >>"log.$$" 2>&1; }
train2() { "$launch" --nproc-per-node 2 --standalone -- "$bin" train --config c.yaml --no-progress "$@" >>"log.$$" 2>&1; }
# same RUN_A RUN_B [fp32]: every step's loss and gradient norm, and the final weights, agree.
# Why the tolerances are what they are (u: unit roundoff, 1.1e-16 in fp64, 6.0e-8 in fp32):
# - Losses and gradient norms are sums over <= 2048 tokens whose order differs between setups
#   (1 vs 2 ranks, all-reduce vs reduce-scatter): rounding differences stay below n*u relative
#   (2.3e-13 in fp64), so fp64 allows 1e-9. A real divergence (a wrong shard, a missed reduction,
#   a dropped micro-step, a gradient scaled by the world size) changes the gradient norm at once
#   and the losses by ~lr relative from step 2 on: 1e-3, six orders above.
# - Weights: AdamW's first steps move each weight by lr*g/(|g|+eps), eps = 1e-8, whose sensitivity
#   to the gradient is up to 1/eps where g is within rounding of zero: a gradient error dg moves a
#   weight by up to lr*dg/eps per step. In fp64 dg <= 2048 terms * u * O(1) = 2.3e-13, so six steps
#   at lr 3e-3 move a weight by at most 6 * 3e-3 * 2.3e-13 / 1e-8 = 4e-7: allowed 1e-6, while a real
#   divergence moves weights by O(lr) = 3e-3.
# - fp32 (same bounds with u = 6e-8): losses and gradient norms within 1e-4 relative (n*u = 1.2e-4
#   for n = 2048 is the worst case; a random walk gives sqrt(n)*u = 3e-6). Single weights are not
#   comparable (dg/eps reaches 1, so a weight near zero gradient may move by lr either way: the
#   PITFALLS entry on CPU numerics), so the *mean* absolute weight difference must stay below 1% of
#   lr: only the few weights whose gradient is within rounding of zero move differently, while a
#   real divergence moves most weights by O(lr).
same() { "$py" "$here/compare_runs.py" "$1" "$2" "${3:-fp64}"; }

train1 --set output.dir=one || fail "1-process run"
train2 --set output.dir=two || fail "2-process run"
r=$(same one two) && ok "2 processes == 1 process ($r)" || fail "2 vs 1 process: $r"
# The production dtype: fp32 with fp32's tolerances, replicated (ZeRO-0) and sharded (ZeRO-3).
train1 --set output.dir=one32 --set train.dtype=fp32 || fail "1-process fp32 run"
train2 --set output.dir=two32 --set train.dtype=fp32 || fail "2-process fp32 run"
r=$(same one32 two32 fp32) && ok "2 processes == 1 process in fp32 ($r)" || fail "2 vs 1 process in fp32: $r"
train2 --set output.dir=z3fp32 --set train.dtype=fp32 --set distributed.zero=3 || fail "ZeRO-3 fp32 run"
r=$(same one32 z3fp32 fp32) && ok "ZeRO-3 on 2 ranks == 1 process in fp32 ($r)" || fail "ZeRO-3 in fp32: $r"
finish() {
  if [ "$fails" -ne 0 ]; then echo "$fails distributed check(s) failed"; tail -20 "log.$$"; exit 1; fi
  echo "all distributed checks passed"
  exit 0
}
# --quick (the numerics_isa_* tests, which run it under forced lower instruction sets): the
# equivalence checks above plus ZeRO-3 on 2 ranks in fp64, then stop.
if [ "${4:-}" = --quick ]; then
  train2 --set output.dir=z3q --set distributed.zero=3 || fail "ZeRO-3 run"
  r=$(same one z3q) && ok "ZeRO-3 on 2 ranks == 1 process ($r)" || fail "ZeRO-3 on 2 ranks: $r"
  finish
fi
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

# A plan that gives ranks different numbers of packs (plan.json's "rank", written by the planner
# where that balances better than blocks): here rewritten by hand so that every step gives rank 0
# one pack and rank 1 the rest, with the pack's checksum updated. 2 ranks follow it (metrics
# count 3 micro-steps a full step, blocks would take 2) and equal 1 process, which runs the
# same plan in one block and warns that the plan was made for 2 ranks; at ZeRO-3 rank 0 runs idle
# micro-steps to take part in the gathers.
"$bin" pack --input d.jsonl --tokenizer tok.model --max-tokens 512 --units-per-step 4 --world-size 2 \
  -o ranks.pack --no-progress >/dev/null 2>&1 || fail "pack for 2 ranks"
"$py" - ranks.pack <<'PY' || fail "rewriting the plan's ranks"
import json, sys
d = sys.argv[1]
def crc32c(data):  # Castagnoli, reflected, as the pack's manifest records it
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
plan = json.load(open(f"{d}/plan.json"))
assert plan["world_size"] == 2 and plan["version"] == 3
for step in plan["steps"]:
    for k, unit in enumerate(step["units"]):
        unit["rank"] = 0 if k == 0 else 1
text = (json.dumps(plan) + "\n").encode()
open(f"{d}/plan.json", "wb").write(text)
sums = json.load(open(f"{d}/checksums.json"))
sums["files"]["plan.json"] = {"bytes": len(text), "crc32c": f"{crc32c(text):08x}"}
json.dump(sums, open(f"{d}/checksums.json", "w"))
PY
sed -e 's|^data: .*|data: {pack_dir: ranks.pack}|' c.yaml >ranks.yaml
touch "log.$$"
n0=$(wc -l <"log.$$")
"$bin" train --config ranks.yaml --no-progress --set output.dir=ranks1 >>"log.$$" 2>&1 || fail "1 process on a 2-rank plan"
tail -n +$((n0 + 1)) "log.$$" | grep -q "this plan gives its packs to 2 ranks, not 1" \
  || fail "1 process on a 2-rank plan does not warn that it falls back to blocks"
for z in 0 3; do
  "$launch" --nproc-per-node 2 --standalone -- "$bin" train --config ranks.yaml --no-progress \
    --set output.dir=ranks2z$z --set distributed.zero=$z >>"log.$$" 2>&1 || fail "2 ranks with uneven packs, ZeRO-$z"
  micro=$("$py" -c "import json,sys;print(sorted({json.loads(l)['micro_steps'] for l in open(sys.argv[1])}))" ranks2z$z/metrics.jsonl)
  r=$(same ranks1 ranks2z$z) && [ "$micro" = "[3]" ] \
    && ok "2 ranks running 1 and 3 packs a step (micro-steps $micro), ZeRO-$z == 1 process ($r)" \
    || fail "2 ranks with uneven packs, ZeRO-$z: micro-steps $micro (want [3]), $r"
done

# The tiled MLP (4 chunks of a 512-token pack) on 2 ranks at ZeRO-0, whose all-reduce starts a
# bucket when every parameter in it has had its gradient hook: the hooks must fire once a
# backward, not once a chunk, or buckets go out with partial gradients. Equals the untiled
# single process; so does ZeRO-3 tiled.
train2 --set output.dir=tiled0 --set train.tiled_mlp_tokens=128 --set distributed.bucket_mb=0.05 || fail "tiled MLP, ZeRO-0"
r=$(same one tiled0) && ok "tiled MLP, ZeRO-0 with overlapped all-reduce on 2 == 1 process untiled ($r)" || fail "tiled MLP, ZeRO-0: $r"
train2 --set output.dir=tiled3 --set train.tiled_mlp_tokens=128 --set distributed.zero=3 || fail "tiled MLP, ZeRO-3"
r=$(same one tiled3) && ok "tiled MLP, ZeRO-3 on 2 == 1 process untiled ($r)" || fail "tiled MLP, ZeRO-3: $r"

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

# The demo's own model (configs/tiny_cpu.yaml, 4M parameters, fp32 as the demo runs it) on 2
# ranks at ZeRO 0-3 == 1 rank: two steps' losses within fp32's worst-case n*u (see `same`).
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
assert len(a) == len(b) == 2 and max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-4, (a, b)
PY
done

# Gradients far over the TCPStore's 8 MiB value limit (a 52M-parameter model: 416 MB of fp64
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
# (within fp64's weight tolerance, derived at `same`), every one listed in the index.
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
assert all(got[k].dtype == one[k].dtype == "float64" for k in one)
assert max(float(abs(one[k] - got[k]).max()) for k in one) < 1e-6
PY
"$py" - big1 big2 big3 big4 <<'PY' && ok "208 MB of gradients over the store: ZeRO-0, 2 and 3 on 2 == 1 process" || fail "large payloads"
import json, sys
runs = [[json.loads(l)["loss"] for l in open(f"{d}/metrics.jsonl")] for d in sys.argv[1:]]
assert all(len(r) == 2 for r in runs), runs
for r in runs[1:]:
    assert max(abs(x - y) / abs(x) for x, y in zip(runs[0], r)) < 1e-9, runs  # fp64: see `same`
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

finish
