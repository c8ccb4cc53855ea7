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
    glm_base/         a small random GLM (HF's GlmForCausalLM: fused mlp.gate_up_proj, q/k/v biases)
    peft_glm/         a peft adapter on GLM's q/k/v/o, fused gate_up_proj and down_proj, with saved
                      modules; peft_glm_merged/ is it merged by merge_and_unload()
    chatglm_base/     glm_base in ChatGLM3's own layout (hf_reference.to_chatglm: q, k, v fused)
    peft_chatglm/     an adapter on ChatGLM3's query_key_value, dense, dense_h_to_4h and
                      dense_4h_to_h under the names peft gives them on modeling_chatglm.py's model,
                      with final_layernorm and word_embeddings saved. transformers cannot run
                      ChatGLM3 offline (remote code), so its reference logits are glm_base's with
                      the adapter merged by hand into the fused tensors and split back: the fused
                      adapter's row order and names are checked against that, not against peft

peft_reference.py check BASE ADAPTER IDS OUT
    loads ADAPTER (any PEFT adapter directory, e.g. one this trainer wrote) onto BASE with
    PeftModel.from_pretrained and writes its logits for IDS (input_ids + cu_seqlens) to OUT.
"""
import json
import sys
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, GlmConfig, GlmForCausalLM, LlamaConfig, LlamaForCausalLM

from hf_reference import to_chatglm

LENGTHS = [5, 1, 17, 9]


def packed_logits(model, ids: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for b in range(len(cu) - 1):
            x = ids[int(cu[b]):int(cu[b + 1])]
            out.append(model(input_ids=x[None]).logits[0].float())
    return torch.cat(out).contiguous()


def save_base(base, dst: Path):
    """Biases drawn large enough to matter (HF initialises them to zero), then saved."""
    base = base.float().eval()
    with torch.no_grad():
        for name, p in base.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.2)
    base.save_pretrained(dst, safe_serialization=True)
    return base


def make(out: Path) -> None:
    torch.manual_seed(4321)
    cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                      rope_theta=10000.0, initializer_range=0.2, tie_word_embeddings=False, attention_bias=True,
                      mlp_bias=True)
    save_base(LlamaForCausalLM(cfg), out / "base")
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
        save_peft_adapter(LlamaForCausalLM.from_pretrained(out / "base"), lc, out / name, ids, cu,
                          out / "peft_merged" if name == "peft_adapter" else None)
    make_glm(out, ids, cu)


def save_peft_adapter(base, lc: LoraConfig, dst: Path, ids, cu, merged_dst) -> None:
    model = get_peft_model(base, lc).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "lora_B" in pname:
                p.normal_(0.0, 0.05)  # peft's own B init is small; make the adapter's effect plain
            elif ".modules_to_save." in pname:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(dst)
    save_file({"input_ids": ids, "cu_seqlens": cu, "logits": packed_logits(model, ids, cu)},
              str(dst / "reference.safetensors"))
    if merged_dst is not None:
        model.merge_and_unload().save_pretrained(merged_dst, safe_serialization=True)


def make_glm(out: Path, ids, cu) -> None:
    torch.manual_seed(8765)
    cfg = GlmConfig(vocab_size=512, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
                    rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.2, tie_word_embeddings=False,
                    pad_token_id=None)
    base = save_base(GlmForCausalLM(cfg), out / "glm_base")
    save_file({"input_ids": ids, "cu_seqlens": cu, "logits": packed_logits(base, ids, cu)},
              str(out / "glm_base" / "reference.safetensors"))
    lc = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, init_lora_weights=False,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"],
                    modules_to_save=["embed_tokens", "norm", "input_layernorm", "lm_head"])
    save_peft_adapter(GlmForCausalLM.from_pretrained(out / "glm_base"), lc, out / "peft_glm", ids, cu,
                      out / "peft_glm_merged")
    to_chatglm(out / "glm_base", out / "chatglm_base", rope_ratio=1.0)
    make_chatglm_adapter(out, cfg, ids, cu)


def make_chatglm_adapter(out: Path, cfg, ids, cu) -> None:
    r, alpha = 4, 12.0
    h, d = cfg.hidden_size, cfg.head_dim
    q, kv, inter = cfg.num_attention_heads * d, cfg.num_key_value_heads * d, cfg.intermediate_size
    shapes = {"self_attention.query_key_value": (h, q + 2 * kv), "self_attention.dense": (q, h),
              "mlp.dense_h_to_4h": (h, 2 * inter), "mlp.dense_4h_to_h": (inter, h)}
    g = torch.Generator().manual_seed(99)
    state = {}
    for i in range(cfg.num_hidden_layers):
        for module, (n_in, n_out) in shapes.items():
            prefix = f"base_model.model.transformer.encoder.layers.{i}.{module}"
            state[f"{prefix}.lora_A.weight"] = torch.randn(r, n_in, generator=g) * 0.2
            state[f"{prefix}.lora_B.weight"] = torch.randn(n_out, r, generator=g) * 0.05
    state["base_model.model.transformer.encoder.final_layernorm.weight"] = 1 + 0.1 * torch.randn(h, generator=g)
    state["base_model.model.transformer.embedding.word_embeddings.weight"] = torch.randn(cfg.vocab_size, h, generator=g)
    dst = out / "peft_chatglm"
    dst.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dst / "adapter_model.safetensors"))
    (dst / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": 0.0,
        "target_modules": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
        "modules_to_save": ["final_layernorm", "word_embeddings"], "bias": "none"}, indent=2) + "\n")
    # The oracle: W + (alpha / r) B A on each fused tensor, then split as GLM's modules hold it.
    ours = {"self_attention.query_key_value": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
            "self_attention.dense": ["self_attn.o_proj"], "mlp.dense_h_to_4h": ["mlp.gate_up_proj"],
            "mlp.dense_4h_to_h": ["mlp.down_proj"]}
    model = GlmForCausalLM.from_pretrained(out / "glm_base").float().eval()
    params = dict(model.named_parameters())
    with torch.no_grad():
        for i in range(cfg.num_hidden_layers):
            for module, parts in ours.items():
                prefix = f"base_model.model.transformer.encoder.layers.{i}.{module}"
                delta = (alpha / r) * state[f"{prefix}.lora_B.weight"] @ state[f"{prefix}.lora_A.weight"]
                row = 0
                for part in parts:
                    w = params[f"model.layers.{i}.{part}.weight"]
                    w += delta[row:row + w.shape[0]]
                    row += w.shape[0]
                assert row == delta.shape[0]
        params["model.norm.weight"].copy_(state["base_model.model.transformer.encoder.final_layernorm.weight"])
        params["model.embed_tokens.weight"].copy_(
            state["base_model.model.transformer.embedding.word_embeddings.weight"])
    save_file({"input_ids": ids, "cu_seqlens": cu, "logits": packed_logits(model, ids, cu)},
              str(dst / "reference.safetensors"))


def check(base: Path, adapter: Path, ids_file: Path, out: Path) -> None:
    t = load_file(str(ids_file))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base).float(), adapter).eval()
    save_file({"logits": packed_logits(model, t["input_ids"].long(), t["cu_seqlens"])}, str(out))


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*map(Path, sys.argv[2:6]))
    else:
        make(Path(sys.argv[1]))
