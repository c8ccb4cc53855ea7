"""Oracle for `longalign eval loss` and for checkpoint compatibility: loads our checkpoint with
transformers' AutoModelForCausalLM.from_pretrained (unchanged; the class its config.json names:
LlamaForCausalLM, Qwen2ForCausalLM, GlmForCausalLM) and recomputes each pre-tokenized
record's mean target loss with HF; compares with our per-sequence JSONL.

Usage: hf_eval_check.py CHECKPOINT_DIR TOKENS_JSONL OURS_JSONL
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM

ckpt, tokens_path, ours_path = sys.argv[1:4]
model = AutoModelForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32).eval()
records = [json.loads(l) for l in open(tokens_path)]
ours = [json.loads(l) for l in open(ours_path)]
assert len(records) == len(ours), (len(records), len(ours))
worst = 0.0
for rec, mine in zip(records, ours):
    ids = torch.tensor(rec["input_ids"])[None]
    labels = torch.tensor(rec["labels"])[None]
    with torch.no_grad():
        hf = model(input_ids=ids, labels=labels).loss.item()  # HF shifts labels itself
    worst = max(worst, abs(hf - mine["loss"]) / max(1.0, abs(hf)))
print(f"{type(model).__name__}: checked {len(records)} sequences, worst relative difference {worst:.2e}")
# fp32 on both sides, so only summation order differs: a mean token loss of ~6 from logits each
# within ~1e-5 of HF's (tests/model/hf_parity_test.cpp's estimate) moves by ~1e-5; 1e-4 relative
# leaves room, while a wrong label shift or mask changes the loss by > 1e-2.
sys.exit(0 if worst < 1e-4 else 1)
