"""Builds small random HF Llama-family models offline (Llama, Qwen2, GLM) and saves, for each,
the model directory and HF's logits for a few sequences computed one sequence at a time (the
parity oracle). Biases get random values: transformers initializes them to zero, which would
hide a model that ignores them.

Usage: hf_reference.py OUT_DIR
"""
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (GlmConfig, GlmForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

LLAMA = (LlamaConfig, LlamaForCausalLM)
VARIANTS = {
    # GQA 2:1, untied head, plain RoPE
    "gqa_untied": (LLAMA, dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)),
    # tied head, linear rope scaling
    "tied_linear": (LLAMA, dict(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                                rope_scaling={"rope_type": "linear", "factor": 2.0})),
    # MQA 4:1, explicit head_dim, llama3 rope scaling
    "llama3_mqa": (LLAMA, dict(num_attention_heads=4, num_key_value_heads=1, head_dim=32, tie_word_embeddings=False,
                               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    # Llama with q/k/v/o biases and MLP biases
    "llama_bias": (LLAMA, dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                               attention_bias=True, mlp_bias=True)),
    # Qwen2: q/k/v biased, o not; tied head
    "qwen2": ((Qwen2Config, Qwen2ForCausalLM), dict(num_attention_heads=4, num_key_value_heads=2,
                                                    tie_word_embeddings=True)),
    # GLM: q/k/v biased, fused gate_up_proj, interleaved rope on half of each head
    "glm": ((GlmConfig, GlmForCausalLM), dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                              tie_word_embeddings=False, pad_token_id=None)),
}
LENGTHS = [5, 1, 17, 9]


def randomize_biases(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0.0, 0.2)


def main(out: Path) -> None:
    for i, (name, ((config_cls, model_cls), extra)) in enumerate(VARIANTS.items()):
        torch.manual_seed(1234 + i)
        rope = extra.pop("rope_scaling", None)
        cfg = config_cls(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                         initializer_range=0.2, **extra)
        if rope is not None:
            rope = dict(rope, rope_theta=10000.0)
            if hasattr(cfg, "rope_parameters"):
                cfg.rope_parameters = rope
            else:
                cfg.rope_scaling = rope
        model = model_cls(cfg).float().eval()
        randomize_biases(model)
        model.save_pretrained(out / name, safe_serialization=True)
        ids = [torch.randint(3, cfg.vocab_size, (n,)) for n in LENGTHS]
        with torch.no_grad():
            logits = [model(input_ids=x[None]).logits[0].float() for x in ids]
        cu = torch.tensor([0] + list(torch.cumsum(torch.tensor(LENGTHS), 0)), dtype=torch.int32)
        save_file({"input_ids": torch.cat(ids).long(), "cu_seqlens": cu, "logits": torch.cat(logits).contiguous()},
                  str(out / name / "reference.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
