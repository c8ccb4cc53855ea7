#!/usr/bin/env bash
# Qwen2 (q/k/v biases) and GLM (biases, fused gate_up_proj, partial interleaved rope; also with
# llama3 rope scaling) through the CLI: `eval loss` on a random tiny transformers model equals
# HF's per-sequence loss; two training steps from it (model.path) write a checkpoint that
# transformers loads as the same family, whose `eval loss` again equals HF's. A GLM model in
# ChatGLM3's own layout gives the same `eval loss` as its GLM-named twin (transformers has no
# ChatGLM3 class to compare with), and training from it writes a ChatGLM3-layout checkpoint.
# PyTorch .bin copies (one file; ChatGLM3's layout in three shards with
# pytorch_model.bin.index.json) give the same `eval loss` as their safetensors twins.
# LoRA on the fused projections: a GLM run with an adapter on every projection (gate_up_proj one
# adapter) writes a checkpoint that peft loads onto the base with our `eval loss --adapter`; a
# ChatGLM3 run adapting query_key_value and dense_h_to_4h merges (`merge`) into a ChatGLM3
# checkpoint whose loss equals the unmerged adapter's, and ZeRO-3 trains the same adapter.
set -u
bin="$1"; py="$2"; here="$3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

"$py" "$here/../model/hf_reference.py" "$tmp/ref" >"$tmp/ref.log" 2>&1 || { echo "FAIL: hf_reference.py"; tail -5 "$tmp/ref.log"; exit 1; }
"$bin" synth -o "$tmp/d.jsonl" -n 60 --min-words 20 --max-words 60 --seed 5 >/dev/null 2>&1
"$bin" tokenizer train -i "$tmp/d.jsonl" --vocab-size 400 -o "$tmp/tok.model" >/dev/null 2>&1
"$py" "$here/eval_tokens.py" "$tmp/tokens.jsonl"

# eval loss of the model in $1 against HF's, labelled $2.
eval_matches() {
  local out="$tmp/ours-$2.jsonl"
  if ! "$bin" eval loss --model "$1" --input "$tmp/tokens.jsonl" -o "$out" --max-tokens 64 >"$tmp/eval-$2.log" 2>&1; then
    fail "$2: eval loss failed"; tail -5 "$tmp/eval-$2.log"; return
  fi
  "$py" "$here/hf_eval_check.py" "$1" "$tmp/tokens.jsonl" "$out" >"$tmp/check-$2.log" 2>&1 \
    && ok "$2: eval loss matches HF: $(tail -1 "$tmp/check-$2.log")" || { fail "$2: eval loss differs from HF"; tail -5 "$tmp/check-$2.log"; }
}

# glm_llama3: GLM with llama3 rope scaling, whose written config transformers must read back
# with the scaling on the rotary half of each head.
for fam in qwen2 glm glm_llama3; do
  type=${fam%%_*}
  eval_matches "$tmp/ref/$fam" "$fam"
  cat >"$tmp/$fam.yaml" <<YAML
model: {path: $tmp/ref/$fam}
data: {inputs: [d.jsonl], tokenizer: tok.model, max_tokens: 256, units_per_step: 2}
train: {lr: 1.0e-3, epochs: 1, max_steps: 2, dtype: fp32, device: cpu}
checkpoint: {every_steps: 2}
output: {dir: run-$fam, log_every: 1}
YAML
  if "$bin" train --config "$tmp/$fam.yaml" --no-progress >"$tmp/train-$fam.log" 2>&1; then
    ck="$tmp/run-$fam/checkpoints/step-00000002"
    grep -q "\"model_type\": \"$type\"" "$ck/config.json" && ok "$fam: checkpoint keeps model_type $type" \
      || fail "$fam: checkpoint config.json lost model_type $type"
    eval_matches "$ck" "$fam-trained"
  else
    fail "$fam: training from model.path failed"; tail -5 "$tmp/train-$fam.log"
  fi
done

# The losses in $1 and $2 (eval loss outputs) agree within 1e-4, labelled $3.
same_losses() {
  "$py" - "$1" "$2" <<'PY' >"$tmp/same-$3.log" 2>&1 \
    && ok "$3: $(cat "$tmp/same-$3.log")" || { fail "$3: $(cat "$tmp/same-$3.log")"; }
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
worst = max(abs(x - y) for x, y in zip(a, b))
print(f"eval loss equals its twin's over {len(a)} sequences, worst difference {worst:.2e}")
sys.exit(0 if len(a) == len(b) and worst < 1e-4 else 1)
PY
}

# eval loss of the model in $1 equals that of its twin $2 within 1e-4, labelled $3.
same_loss() {
  for d in "$1" "$2"; do
    "$bin" eval loss --model "$d" --input "$tmp/tokens.jsonl" -o "$d.loss.jsonl" --max-tokens 64 >"$d.eval.log" 2>&1 \
      || { fail "$3: eval loss on $d failed"; tail -5 "$d.eval.log"; return; }
  done
  same_losses "$1.loss.jsonl" "$2.loss.jsonl" "$3"
}

same_loss "$tmp/ref/chatglm" "$tmp/ref/glm_rope2" chatglm
same_loss "$tmp/ref/llama_bias_bin" "$tmp/ref/llama_bias" llama_bias_bin
same_loss "$tmp/ref/chatglm_bin" "$tmp/ref/chatglm" chatglm_bin_sharded
eval_matches "$tmp/ref/glm_rope2" glm_rope2
# In fp64: the ZeRO-3 twin below must train the same weights, and in fp32 AdamW turns rounding
# noise on gradients near zero into weight differences of up to lr (tests/dist/dist_cli_test.sh).
sed "s/ref\/glm/ref\/chatglm/; s/run-glm/run-chatglm/; s/dtype: fp32/dtype: fp64/" "$tmp/glm.yaml" >"$tmp/chatglm.yaml"
if "$bin" train --config "$tmp/chatglm.yaml" --no-progress >"$tmp/train-chatglm.log" 2>&1; then
  ck="$tmp/run-chatglm/checkpoints/step-00000002"
  grep -q '"model_type": "chatglm"' "$ck/config.json" && grep -q '"rope_ratio"' "$ck/config.json" \
    && ok "chatglm: checkpoint keeps ChatGLM3's config keys" || fail "chatglm: checkpoint config.json lost ChatGLM3's keys"
  "$py" -c "import sys; from safetensors import safe_open
names = set().union(*(safe_open(f, 'pt').keys() for f in sys.argv[1:]))
sys.exit(0 if 'transformer.encoder.layers.0.self_attention.query_key_value.weight' in names else 1)" "$ck"/*.safetensors \
    && ok "chatglm: checkpoint keeps ChatGLM3's tensor names" || fail "chatglm: checkpoint lost ChatGLM3's tensor names"
else
  fail "chatglm: training from model.path failed"; tail -5 "$tmp/train-chatglm.log"
fi
# ZeRO-3 (one process, a world of one) writes the ChatGLM3 layout from one gathered layer at a
# time, fused query_key_value included, and trains the same model as the replicated run (both in
# fp64, where the two differ by ~1e-15: their fp32 eval losses then agree to fp32 rounding).
{ sed "s/run-chatglm/run-chatglm-z3/" "$tmp/chatglm.yaml"; echo "distributed: {zero: 3}"; } >"$tmp/chatglm-z3.yaml"
if "$bin" train --config "$tmp/chatglm-z3.yaml" --no-progress >"$tmp/train-chatglm-z3.log" 2>&1; then
  same_loss "$tmp/run-chatglm/checkpoints/step-00000002" "$tmp/run-chatglm-z3/checkpoints/step-00000002" chatglm_zero3
else
  fail "chatglm: ZeRO-3 training failed"; tail -5 "$tmp/train-chatglm-z3.log"
fi

# --- LoRA on fused projections (fp64 training, so that ZeRO-3 and the merge compare tightly)
lora_run() {  # config, run dir, lora mapping, extra yaml
  sed "s/run-[a-z0-9-]*/$2/; s/dtype: fp32/dtype: fp64/; s/^train: {/train: {lora: $3, /" "$1" >"$tmp/$2.yaml"
  [ -n "${4:-}" ] && echo "$4" >>"$tmp/$2.yaml"
  "$bin" train --config "$tmp/$2.yaml" --no-progress >"$tmp/train-$2.log" 2>&1 || { fail "$2: LoRA training failed"; tail -5 "$tmp/train-$2.log"; return 1; }
}
if lora_run "$tmp/glm.yaml" lora-glm "{rank: 4, alpha: 8, modules_to_save: [norm]}"; then
  ck="$tmp/lora-glm/checkpoints/step-00000002"
  "$bin" eval loss --model "$tmp/ref/glm" --adapter "$ck" --input "$tmp/tokens.jsonl" -o "$tmp/lora-glm.jsonl" \
    --max-tokens 64 >"$tmp/eval-lora-glm.log" 2>&1 || fail "glm LoRA: eval loss --adapter failed"
  "$py" -c "import sys; from safetensors import safe_open
sys.exit(0 if 'base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight' in safe_open(sys.argv[1], 'pt').keys() else 1)" \
    "$ck/adapter_model.safetensors" && ok "glm LoRA: one adapter on the fused gate_up_proj" || fail "glm LoRA: adapter names"
  "$py" "$here/peft_eval_check.py" "$tmp/ref/glm" "$ck" "$tmp/tokens.jsonl" "$tmp/lora-glm.jsonl" >"$tmp/peft-glm.log" 2>&1 \
    && ok "glm LoRA: $(tail -1 "$tmp/peft-glm.log")" || { fail "glm LoRA: peft disagrees"; tail -5 "$tmp/peft-glm.log"; }
fi
if lora_run "$tmp/chatglm.yaml" lora-chatglm "{rank: 4, target_modules: [query_key_value, dense_h_to_4h], dropout: 0.1}" &&
   lora_run "$tmp/chatglm.yaml" lora-chatglm-z3 "{rank: 4, target_modules: [query_key_value, dense_h_to_4h], dropout: 0.1}" \
     "distributed: {zero: 3}"; then
  ck="$tmp/lora-chatglm/checkpoints/step-00000002"
  "$py" -c "import sys; from safetensors import safe_open
names = set(safe_open(sys.argv[1] + '/adapter_model.safetensors', 'pt').keys())
sys.exit(0 if 'base_model.model.transformer.encoder.layers.1.self_attention.query_key_value.lora_A.weight' in names and len(names) == 8 else 1)" "$ck" \
    && ok "chatglm LoRA: adapter under ChatGLM3's names" || fail "chatglm LoRA: adapter names"
  cmp -s "$ck/adapter_model.safetensors" "$tmp/lora-chatglm-z3/checkpoints/step-00000002/adapter_model.safetensors" \
    || "$py" -c "import sys; from safetensors.numpy import load_file
a, b = (load_file(p + '/checkpoints/step-00000002/adapter_model.safetensors') for p in sys.argv[1:3])
sys.exit(0 if set(a) == set(b) and max(abs(a[k] - b[k]).max() for k in a) < 1e-9 else 1)" "$tmp/lora-chatglm" "$tmp/lora-chatglm-z3" \
    && ok "chatglm LoRA: ZeRO-3 trains the same adapter" || fail "chatglm LoRA: ZeRO-3 adapter differs"
  if "$bin" merge --model "$tmp/ref/chatglm" --adapter "$ck" -o "$tmp/merged-chatglm" >"$tmp/merge-chatglm.log" 2>&1; then
    "$bin" eval loss --model "$tmp/ref/chatglm" --adapter "$ck" --input "$tmp/tokens.jsonl" -o "$tmp/loss-adapter.jsonl" \
      --max-tokens 64 >>"$tmp/eval-lora-chatglm.log" 2>&1 || fail "chatglm LoRA: eval loss --adapter failed"
    "$bin" eval loss --model "$tmp/merged-chatglm" --input "$tmp/tokens.jsonl" -o "$tmp/loss-merged.jsonl" \
      --max-tokens 64 >>"$tmp/eval-lora-chatglm.log" 2>&1 || fail "chatglm LoRA: eval loss on the merged model failed"
    grep -q '"model_type": "chatglm"' "$tmp/merged-chatglm/config.json" && ok "chatglm LoRA: merged checkpoint in ChatGLM3's layout" \
      || fail "chatglm LoRA: merged config.json is not ChatGLM3's"
    same_losses "$tmp/loss-adapter.jsonl" "$tmp/loss-merged.jsonl" chatglm_lora_merged
    "$py" - "$tmp/loss-adapter.jsonl" "$tmp/ref/chatglm.loss.jsonl" <<'PY' && ok "chatglm LoRA: the adapter changes the loss" || fail "chatglm LoRA: the adapter changes nothing"
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
print(f"adapter vs base: largest loss change {max(abs(x - y) for x, y in zip(a, b)):.2e}")
sys.exit(0 if max(abs(x - y) for x, y in zip(a, b)) > 1e-3 else 1)
PY
  else
    fail "chatglm LoRA: merge failed"; tail -5 "$tmp/merge-chatglm.log"
  fi
fi

[ "$fails" = 0 ] && echo "all Qwen2/GLM CLI checks passed" || { echo "$fails failed"; exit 1; }
