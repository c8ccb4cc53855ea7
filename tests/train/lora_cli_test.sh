#!/usr/bin/env bash
# LoRA through the CLI, against peft as the oracle:
# - a LoRA run (rank 8, all projections, embeddings and norms saved, dropout, activation
#   checkpointing) writes PEFT checkpoints (adapter_config.json + adapter_model.safetensors, no
#   full weights, optimizer state for the adapters and saved modules only) and its scratch base
#   in RUN/base; stopped and resumed it continues bit for bit;
# - peft loads the checkpoint onto RUN/base (PeftModel.from_pretrained), and its per-sequence loss
#   equals `eval loss --adapter`; `merge` equals peft's merge_and_unload() weight by weight, and
#   transformers' loss on the merged model equals ours; `generate --adapter` gives the merged
#   model's tokens;
# - ZeRO-2 and ZeRO-3 on 2 ranks, and optimizer offload, equal one process (fp64, as dist_cli).
set -u
bin="$1"; py="$2"; here="$3"; launch="$4"
source "$here/../test_lib.sh"
cd "$tmp"

"$bin" synth -o d.jsonl -n 80 --min-words 20 --max-words 80 --seed 4 >/dev/null 2>&1
"$bin" tokenizer train -i d.jsonl --vocab-size 400 -o tok.model >/dev/null 2>&1
"$py" "$here/eval_tokens.py" tokens.jsonl
cat >c.yaml <<YAML
model: {hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
        tie_word_embeddings: false}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 512, units_per_step: 4}
train:
  lr: 3.0e-3
  epochs: 1
  max_steps: 6
  warmup_ratio: 0.1
  dtype: fp64
  device: cpu
  activation_checkpointing: true
  lora: {rank: 8, alpha: 16, modules_to_save: [embed_tokens, norm, input_layernorm, post_attention_layernorm]}
checkpoint: {every_steps: 3, keep_last: 5}
output: {dir: one, log_every: 1}
distributed: {timeout_s: 30}
YAML
# Each step's loss and gradient norm as printed by JSON (17 significant digits: bit-exact).
curve() { "$py" -c 'import json,sys; [print(r["step"], repr(r["loss"]), repr(r["grad_norm"])) for r in map(json.loads, open(sys.argv[1]))]' "$1/metrics.jsonl"; }
train1() { "$bin" train --config c.yaml --no-progress "$@" >>log 2>&1; }
train2() { "$launch" --nproc-per-node 2 --standalone -- "$bin" train --config c.yaml --no-progress "$@" >>log 2>&1; }

# --- resume is exact, with dropout masks (keyed on step, rank and micro-step) recomputed alike
train1 --set output.dir=drop --set train.lora.dropout=0.1 || fail "LoRA run with dropout"
train1 --set output.dir=drop2 --set train.lora.dropout=0.1 --stop-at-step 3 &&
  train1 --set output.dir=drop2 --set train.lora.dropout=0.1 --resume latest || fail "stopped and resumed LoRA run"
if [ -s drop2/metrics.jsonl ] && cmp -s <(curve drop) <(curve drop2) &&
   cmp -s drop/checkpoints/step-00000006/adapter_model.safetensors drop2/checkpoints/step-00000006/adapter_model.safetensors; then
  ok "stopped at step 3 and resumed: losses and adapter bit-identical"
else
  fail "resumed LoRA run differs"; diff <(curve drop) <(curve drop2) | head -5
fi
train1 --set output.dir=nodrop --set train.max_steps=3 --set checkpoint.every_steps=0 || fail "run without dropout"
loss_at() { curve "$1" | sed -n "$2p" | cut -d' ' -f2; }
if [ "$(loss_at drop 1)" = "$(loss_at nodrop 1)" ] && [ "$(loss_at drop 2)" != "$(loss_at nodrop 2)" ]; then
  ok "dropout acts (step 2's loss differs; step 1's is equal: B = 0 hides the mask)"
else fail "dropout had no effect or changed step 1"; fi

ck=drop/checkpoints/step-00000006
"$py" - "$ck" <<'PY' && ok "checkpoint: PEFT files, adapter-only optimizer state" || fail "checkpoint layout"
import json, os, sys
from safetensors.numpy import load_file
ck = sys.argv[1]
files = set(os.listdir(ck))
assert {"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "tokenizer.model"} <= files, files
assert not any(f.startswith("model") for f in files), files
cfg = json.load(open(f"{ck}/adapter_config.json"))
assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 16, cfg
assert os.path.isfile(os.path.join(cfg["base_model_name_or_path"], "model.safetensors")), cfg["base_model_name_or_path"]
names = set(load_file(f"{ck}/adapter_model.safetensors"))
assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in names, sorted(names)[:5]
assert "base_model.model.model.embed_tokens.weight" in names and "base_model.model.lm_head.weight" not in names
opt = [n for n in load_file(f"{ck}/optimizer.safetensors") if n != "step"]
frozen = [n for n in opt if "lora_" not in n and not any(k in n for k in ("embed_tokens", "norm"))]
assert not frozen, frozen[:5]
PY

# --- peft reads our checkpoint: its loss equals ours with --adapter; merge equals peft's merge
"$bin" eval loss --model drop/base --adapter "$ck" --input tokens.jsonl -o ours.jsonl --max-tokens 64 >>log 2>&1 ||
  fail "eval loss --adapter"
"$bin" merge --model drop/base --adapter "$ck" -o merged >>log 2>&1 || fail "merge"
"$py" "$here/peft_eval_check.py" drop/base "$ck" tokens.jsonl ours.jsonl merged >peft.log 2>&1 &&
  ok "peft: same losses, merge = merge_and_unload ($(tr '\n' ' ' <peft.log))" || { fail "peft disagrees"; cat peft.log; }
"$py" "$here/hf_eval_check.py" merged tokens.jsonl ours.jsonl >>log 2>&1 && ok "transformers on the merged model: same losses" ||
  fail "merged model's losses differ"
a=$("$bin" generate -m drop/base --adapter "$ck" -p "What is the pass key?" --max-new-tokens 12 2>>log)
b=$("$bin" generate -m merged -p "What is the pass key?" --max-new-tokens 12 2>>log)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "generate --adapter = generate on the merged model" || fail "generate --adapter: '$a' vs '$b'"

# --- data parallelism: 2 ranks with ZeRO-2, ZeRO-3, and offload equal one process
same() {
  "$py" - "$1" "$2" <<'PY'
import json, sys, glob
import numpy as np
from safetensors.numpy import load_file
a, b = sys.argv[1:3]
ma = [json.loads(l) for l in open(f"{a}/metrics.jsonl")]
mb = [json.loads(l) for l in open(f"{b}/metrics.jsonl")]
assert len(ma) == len(mb) >= 2
rel = lambda k: max(abs(x[k] - y[k]) / abs(x[k]) for x, y in zip(ma, mb))
ca = load_file(sorted(glob.glob(f"{a}/checkpoints/step-*/adapter_model.safetensors"))[-1])
cb = load_file(sorted(glob.glob(f"{b}/checkpoints/step-*/adapter_model.safetensors"))[-1])
assert set(ca) == set(cb), set(ca) ^ set(cb)
d = max(np.abs(ca[k] - cb[k]).max() for k in ca)
print(f"loss rel diff {rel('loss'):.1e}, grad norm rel diff {rel('grad_norm'):.1e}, adapter max diff {d:.1e}")
# The bounds of dist_cli_test.sh's `same` (fp64): sums of <= 2048 terms, six AdamW steps.
sys.exit(0 if rel("loss") < 1e-9 and rel("grad_norm") < 1e-9 and d < 1e-6 else 1)
PY
}
train1 --set output.dir=ref || fail "1-process LoRA run"
for z in 2 3; do
  train2 --set output.dir=z$z --set distributed.zero=$z || { fail "2 ranks, ZeRO-$z"; continue; }
  same ref z$z && ok "2 ranks ZeRO-$z = 1 process" || fail "2 ranks ZeRO-$z differs from 1 process"
done
train1 --set output.dir=off --set distributed.offload_optimizer=true || fail "offload run"
same ref off && ok "optimizer offload = plain" || fail "offload differs"

[ "$fails" -eq 0 ] || { echo "--- log tail"; tail -30 log; }
exit $((fails > 0))
