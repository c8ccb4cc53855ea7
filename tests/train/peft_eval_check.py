"""peft as the oracle for `eval loss --adapter`: loads ADAPTER onto BASE with
PeftModel.from_pretrained (fp64) and compares its per-sequence loss on TOKENS (eval_tokens.py's
records) with OURS (`longalign eval loss --adapter` output). Ours evaluates in fp32: ~1e-5 relative
by hf_eval_check.py's estimate, so 1e-4 leaves room. With MERGED, also compares our `merge` output
with peft's merge_and_unload() weight by weight.

peft_eval_check.py BASE ADAPTER TOKENS OURS [MERGED]
"""
import json
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def main(base: str, adapter: str, tokens: str, ours: str, merged: str = "") -> int:
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float64),
                                      adapter).eval()
    worst = 0.0
    for rec, mine in zip(map(json.loads, open(tokens)), map(json.loads, open(ours))):
        with torch.no_grad():
            hf = model(input_ids=torch.tensor(rec["input_ids"])[None],
                       labels=torch.tensor(rec["labels"])[None]).loss.item()
        worst = max(worst, abs(hf - mine["loss"]) / max(1.0, abs(hf)))
    print(f"peft's loss on our adapter: worst relative difference {worst:.2e}")
    if worst >= 1e-4:
        return 1
    if merged:
        theirs = model.merge_and_unload().state_dict()
        mine = load_file(f"{merged}/model.safetensors")
        if set(mine) != set(theirs):
            print("merged tensor names differ:", sorted(set(mine) ^ set(theirs))[:5])
            return 1
        # Our merge rounds W + s B A once to the base's stored dtype; peft's in fp64 here: within
        # 1e-6 relative of the largest weight (fp32 has u = 6e-8), far below any real error (O(s B A)).
        rel = max((mine[k].double() - theirs[k].double()).abs().max().item() / theirs[k].abs().max().item()
                  for k in mine)
        print(f"merged weights: max relative difference {rel:.2e}")
        if rel >= 1e-6:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
