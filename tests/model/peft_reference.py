"""The LoRA parity oracle, made offline with transformers + peft.

peft_reference.py OUT_DIR
    base/             a small random Llama (GQA, untied head, attention and MLP biases)
    peft_adapter/     a LoRA adapter made by peft on every projection, A and B random
                      (init_lora_weights=False, so B is not zero and the adapter matters), with
                      modules_to_save embed_tokens, norm, input_layernorm and lm_head moved away
                      from the base; peft_adapter/reference.safetensors holds the packed input ids,
                      cu_seqlens and peft's logits, one sequence at a time
    peft_rslora/      another: q_proj and down_proj by a regular expression, rslora scaling, no
                      saved modules; its reference.safetensors likewise
    peft_merged/      peft_adapter folded in by merge_and_unload(), saved as a HF model

peft_reference.py check BASE ADAPTER IDS OUT
    loads ADAPTER (any PEFT adapter directory, e.g. one this trainer wrote) onto BASE with
    PeftModel.from_pretrained and writes its logits for IDS (input_ids + cu_seqlens) to OUT.
"""
import sys
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

LENGTHS = [5, 1, 17, 9]


def packed_logits(model, ids: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for b in range(len(cu) - 1):
            x = ids[int(cu[b]):int(cu[b + 1])]
            out.append(model(input_ids=x[None]).logits[0].float())
    return torch.cat(out).contiguous()


def make(out: Path) -> None:
    torch.manual_seed(4321)
    cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                      rope_theta=10000.0, initializer_range=0.2, tie_word_embeddings=False, attention_bias=True,
                      mlp_bias=True)
    base = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in base.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.2)
    base.save_pretrained(out / "base", safe_serialization=True)
    ids = torch.cat([torch.randint(3, cfg.vocab_size, (n,)) for n in LENGTHS]).long()
    cu = torch.tensor([0] + list(torch.cumsum(torch.tensor(LENGTHS), 0)), dtype=torch.int32)

    adapters = {
        "peft_adapter": LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, init_lora_weights=False,
                                   target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                   "down_proj"],
                                   modules_to_save=["embed_tokens", "norm", "input_layernorm", "lm_head"]),
        "peft_rslora": LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False, use_rslora=True,
                                  target_modules=r".*\.(q_proj|down_proj)"),
    }
    for name, lc in adapters.items():
        model = get_peft_model(LlamaForCausalLM.from_pretrained(out / "base"), lc).eval()
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "lora_B" in pname:
                    p.normal_(0.0, 0.05)  # peft's own B init is small; make the adapter's effect plain
                elif ".modules_to_save." in pname:
                    p.add_(torch.randn_like(p) * 0.1)
        model.save_pretrained(out / name)
        save_file({"input_ids": ids, "cu_seqlens": cu, "logits": packed_logits(model, ids, cu)},
                  str(out / name / "reference.safetensors"))
        if name == "peft_adapter":
            model.merge_and_unload().save_pretrained(out / "peft_merged", safe_serialization=True)


def check(base: Path, adapter: Path, ids_file: Path, out: Path) -> None:
    t = load_file(str(ids_file))
    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base).float(), adapter).eval()
    save_file({"logits": packed_logits(model, t["input_ids"].long(), t["cu_seqlens"])}, str(out))


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*map(Path, sys.argv[2:6]))
    else:
        make(Path(sys.argv[1]))
