#!/usr/bin/env bash
# End-to-end training checks through the CLI on a tiny model (seconds on 2 cores):
# loss falls; resume is bit-exact; checkpoints load in HF transformers and `eval loss` matches
# HF; SIGINT saves and exits 0; non-finite steps stop with exit 1; damaged packs and resumes that
# do not continue the run are refused; bad configs fail before work.
set -u
bin="$1"; py="$2"; here="$3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

"$bin" synth -o "$tmp/d.jsonl" -n 120 --min-words 20 --max-words 80 --seed 3 >/dev/null 2>&1
"$bin" tokenizer train -i "$tmp/d.jsonl" --vocab-size 400 -o "$tmp/tok.model" >/dev/null 2>&1
cat >"$tmp/c.yaml" <<YAML
model: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 512, units_per_step: 2}
train: {lr: 3.0e-3, epochs: 1, max_steps: 8, warmup_ratio: 0.1, dtype: fp32, device: cpu, activation_checkpointing: true}
checkpoint: {every_steps: 4, keep_last: 5}
output: {dir: run1, log_every: 1}
YAML
losses() { "$py" -c "import json,sys;print(' '.join(repr(json.loads(l)['loss']) for l in open(sys.argv[1])))" "$1"; }

# 1. A full run: the loss falls.
if "$bin" train --config "$tmp/c.yaml" --no-progress >"$tmp/log1" 2>&1; then
  l=$(losses "$tmp/run1/metrics.jsonl")
  "$py" -c "import sys;v=[float(x) for x in sys.argv[1:]];sys.exit(0 if len(v)==8 and v[-1]<v[0]-0.5 else 1)" $l \
    && ok "loss falls: $l" || fail "loss did not fall: $l"
  # report.html follows the run: all 8 steps in it, the loss chart, the plan's statistics.
  grep -q "8 (last: step 8)" "$tmp/run1/report.html" && grep -q ">Loss<" "$tmp/run1/report.html" \
    && grep -q "token fill" "$tmp/run1/report.html" && ok "train writes report.html" || fail "report.html missing or incomplete"
else
  fail "training run failed"; tail -5 "$tmp/log1"
fi

# 2. Resume: stop after step 3, resume, and the losses of steps 4-8 equal the full run's bit for bit.
"$bin" train --config "$tmp/c.yaml" --set output.dir=run2 --no-progress --stop-at-step 3 >"$tmp/log2" 2>&1 || fail "stop-at-step run"
"$bin" train --config "$tmp/c.yaml" --set output.dir=run2 --no-progress --resume >>"$tmp/log2" 2>&1 || fail "resume run"
[ "$(losses "$tmp/run1/metrics.jsonl")" = "$(losses "$tmp/run2/metrics.jsonl")" ] \
  && ok "resume is bit-exact" || { fail "resume differs"; losses "$tmp/run1/metrics.jsonl"; losses "$tmp/run2/metrics.jsonl"; }
ls "$tmp/run1/checkpoints" | grep -q step-00000004 && ls "$tmp/run1/checkpoints" | grep -q step-00000008 \
  && ok "checkpoints every 4 steps" || fail "checkpoints missing"
# Resuming from an earlier checkpoint of a run sets the later ones aside (kept, renamed), so that
# `latest` is the new trajectory's and keep_last never rotates the new checkpoints out for them.
cp -r "$tmp/run1" "$tmp/run1b"
"$bin" train --config "$tmp/c.yaml" --set output.dir=run1b --set checkpoint.every_steps=1 --no-progress --stop-at-step 6 \
  --resume "$tmp/run1b/checkpoints/step-00000004" >"$tmp/log2b" 2>&1 || fail "resume from an earlier checkpoint"
ls "$tmp/run1b/checkpoints" | grep -q "^abandoned-step-00000008-" && grep -q "abandoned trajectory" "$tmp/log2b" \
  && [ "$(ls "$tmp/run1b/checkpoints" | grep -c '^step-')" = 3 ] \
  && ok "resume from step 4 of 8: step 8 set aside, latest is step 6: $(ls "$tmp/run1b/checkpoints" | tr '\n' ' ')" \
  || { fail "earlier-checkpoint resume"; ls "$tmp/run1b/checkpoints"; tail -3 "$tmp/log2b"; }

# 3. HF loads the checkpoint unchanged, and `eval loss` equals HF's per-sequence loss.
"$py" "$here/eval_tokens.py" "$tmp/tokens.jsonl"
ck="$tmp/run1/checkpoints/step-00000008"
if "$bin" eval loss --model "$ck" --input "$tmp/tokens.jsonl" -o "$tmp/ours.jsonl" --max-tokens 64 >"$tmp/log3" 2>&1; then
  if "$py" "$here/hf_eval_check.py" "$ck" "$tmp/tokens.jsonl" "$tmp/ours.jsonl" >"$tmp/log3b" 2>&1; then
    ok "HF loads the checkpoint; eval loss matches HF: $(tail -1 "$tmp/log3b")"
  else
    fail "eval loss differs from HF"; tail -5 "$tmp/log3b"
  fi
else
  fail "eval loss failed"; tail -5 "$tmp/log3"
fi

# 4. SIGINT finishes the step, saves a checkpoint and exits 0.
"$bin" train --config "$tmp/c.yaml" --set output.dir=run3 --set train.max_steps=500 --no-progress >"$tmp/log4" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$tmp/run3/metrics.jsonl" ] && break; sleep 0.2; done
kill -INT "$pid"; wait "$pid"; rc=$?
[ "$rc" = 0 ] && ls "$tmp/run3/checkpoints" 2>/dev/null | grep -q step- && grep -q SIGINT "$tmp/log4" \
  && ok "SIGINT: checkpoint saved, exit 0" || { fail "SIGINT handling (exit $rc)"; tail -3 "$tmp/log4"; }

# 5. Non-finite steps are skipped and, K in a row, stop the run with exit 1 and a clear error.
# A checkpoint with an infinite weight makes every loss non-finite (a skipped step changes nothing).
cp -r "$ck" "$tmp/infck"
"$py" - "$tmp/infck/model.safetensors" <<'PY'
import json, struct, sys
with open(sys.argv[1], "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    name = next(k for k in h if k.endswith("norm.weight"))
    f.seek(8 + n + h[name]["data_offsets"][0])
    f.write(struct.pack("<f", float("inf")))
PY
"$bin" train --config "$tmp/c.yaml" --set output.dir=run4 --set model.path=infck --set train.max_bad_steps=2 \
  --no-progress >"$tmp/log5" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "consecutive non-finite" "$tmp/log5" && ok "non-finite steps stop the run (exit 1)" \
  || { fail "non-finite handling (exit $rc)"; tail -3 "$tmp/log5"; }

# 5b. A damaged pack is refused before training: weights that the weighting rule does not give,
# and (with the checksums refreshed as a forger would not bother to) a flipped token.
cp -r "$tmp/run1/data.pack" "$tmp/badpack"
"$py" -c "import json,sys;p=json.load(open(sys.argv[1]))
p['steps'][0]['units'][0]['weights'][0]=1e30
json.dump(p,open(sys.argv[1],'w'))" "$tmp/badpack/plan.json"
"$bin" train --config "$tmp/c.yaml" --set output.dir=run4b --set data.pack_dir=badpack --set "data.inputs=[]" \
  --no-progress >"$tmp/log5b" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "corrupt: plan.json" "$tmp/log5b" && [ ! -e "$tmp/run4b/checkpoints" ] \
  && ok "edited plan refused (exit 1)" || { fail "edited plan (exit $rc)"; tail -3 "$tmp/log5b"; }
rm -rf "$tmp/badpack"; cp -r "$tmp/run1/data.pack" "$tmp/badpack"
printf '\x7f' | dd of="$tmp/badpack/tokens.bin" bs=1 seek=9 conv=notrunc 2>/dev/null
"$bin" train --config "$tmp/c.yaml" --set output.dir=run4c --set data.pack_dir=badpack --set "data.inputs=[]" \
  --no-progress >"$tmp/log5c" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "tokens.bin fails its CRC-32C check" "$tmp/log5c" && ok "flipped token refused (exit 1)" \
  || { fail "flipped token (exit $rc)"; tail -3 "$tmp/log5c"; }

# 5c. Resume is validated: a finished run has nothing left to do (and writes nothing); a
# checkpoint beyond the run's steps or from another plan is refused, checkpoints untouched.
before=$(ls "$tmp/run2/checkpoints")
"$bin" train --config "$tmp/c.yaml" --set output.dir=run2 --no-progress --resume >"$tmp/log5d" 2>&1; rc=$?
[ "$rc" = 0 ] && grep -q "nothing left to train" "$tmp/log5d" && [ "$(ls "$tmp/run2/checkpoints")" = "$before" ] \
  && ok "resuming a finished run does nothing" || { fail "finished resume (exit $rc)"; tail -3 "$tmp/log5d"; }
"$bin" train --config "$tmp/c.yaml" --set output.dir=run2 --set train.max_steps=3 --no-progress --resume \
  >"$tmp/log5e" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "beyond this run's 3 steps" "$tmp/log5e" && [ "$(ls "$tmp/run2/checkpoints")" = "$before" ] \
  && ok "checkpoint beyond the run refused (exit 2)" || { fail "beyond-total resume (exit $rc)"; tail -3 "$tmp/log5e"; }
"$bin" train --config "$tmp/c.yaml" --set output.dir=run2 --set data.seed=7 --set train.max_steps=12 --no-progress \
  --resume >"$tmp/log5f" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "different plan" "$tmp/log5f" && grep -q -- "--resume-new-data" "$tmp/log5f" \
  && ok "checkpoint of another plan refused (exit 2)" || { fail "other-plan resume (exit $rc)"; tail -3 "$tmp/log5f"; }
"$bin" train --config "$tmp/c.yaml" --set output.dir=run2 --set data.seed=7 --set train.max_steps=12 --no-progress \
  --resume --resume-new-data >"$tmp/log5g" 2>&1; rc=$?
[ "$rc" = 0 ] && ls "$tmp/run2/checkpoints" | grep -q step-00000012 && ok "--resume-new-data continues on new data" \
  || { fail "--resume-new-data (exit $rc)"; tail -3 "$tmp/log5g"; }

# 6. Bad configuration is caught before any work: nothing is packed.
echo x >"$tmp/afile"
"$bin" train --config "$tmp/c.yaml" --set output.dir=afile/run >"$tmp/log6" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "afile" "$tmp/log6" && ok "unwritable output dir: exit 2" || fail "unwritable output (exit $rc)"
"$bin" train --config "$tmp/c.yaml" --set "data.inputs=[nope.jsonl]" --set output.dir=run5 >"$tmp/log7" 2>&1; rc=$?
[ "$rc" = 2 ] && grep -q "nope.jsonl" "$tmp/log7" && [ ! -e "$tmp/run5" ] && ok "missing input: exit 2, no work" \
  || fail "missing input (exit $rc)"
cp -r "$ck" "$tmp/badck"
sed -i 's/"intermediate_size": 128/"intermediate_size": 256/' "$tmp/badck/config.json"
printf 'model: {path: badck}\ndata: {inputs: [d.jsonl], tokenizer: tok.model}\noutput: {dir: run6}\ntrain: {device: cpu}\n' >"$tmp/bad.yaml"
"$bin" train --config "$tmp/bad.yaml" >"$tmp/log8" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q "mlp.gate_proj.weight" "$tmp/log8" && [ ! -e "$tmp/run6/data.pack" ] \
  && ok "mismatched checkpoint names the tensor before work" || { fail "checkpoint mismatch (exit $rc)"; tail -2 "$tmp/log8"; }
"$bin" train --config "$tmp/c.yaml" --dry-run >"$tmp/log9" 2>&1 && grep -q "^parameters:" "$tmp/log9" \
  && ok "--dry-run" || fail "--dry-run"

if [ "$fails" -ne 0 ]; then echo "$fails training check(s) failed"; exit 1; fi
echo "all training checks passed"
