"""Builds small random HF Llama-family models offline (Llama, Qwen2, GLM) and saves, for each,
the model directory and HF's logits for a few sequences computed one sequence at a time (the
parity oracle). Biases get random values: transformers initializes them to zero, which would
hide a model that ignores them. `chatglm` is the GLM model `glm_rope2` rewritten in ChatGLM3's
own checkpoint layout (modeling_chatglm.py's names, q/k/v fused, its config keys), with the
same oracle: transformers has no ChatGLM3 class to run it directly. `llama_bias_bin` and
`chatglm_bin` are those models as PyTorch .bin weights (one file; three shards with
pytorch_model.bin.index.json, as ChatGLM3-6B ships), and `ordered_dict_bin` a state dict saved
whole with torch.save(model.state_dict()), which is an OrderedDict.

Usage: hf_reference.py OUT_DIR
"""
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
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
    # GLM with linear and llama3 rope scaling (of the rotary half of each head)
    "glm_linear": ((GlmConfig, GlmForCausalLM), dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                                     tie_word_embeddings=False, pad_token_id=None,
                                                     rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "glm_llama3": ((GlmConfig, GlmForCausalLM), dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                                     tie_word_embeddings=False, pad_token_id=None,
                                                     rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                                   "original_max_position_embeddings": 16})),
    # GLM with a rotary base of 2 * 10000, the twin of the ChatGLM3-layout copy (rope_ratio 2)
    "glm_rope2": ((GlmConfig, GlmForCausalLM), dict(num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                                    tie_word_embeddings=False, pad_token_id=None,
                                                    rope_theta=20000.0)),
}
# GLM's names -> ChatGLM3's, applied in order to every tensor name (qkv: q, k, v fused first).
CHATGLM_NAMES = [("model.embed_tokens.", "transformer.embedding.word_embeddings."),
                 ("model.layers.", "transformer.encoder.layers."),
                 ("model.norm.", "transformer.encoder.final_layernorm."),
                 ("lm_head.", "transformer.output_layer."),
                 ("self_attn.qkv.", "self_attention.query_key_value."),
                 ("self_attn.o_proj.", "self_attention.dense."),
                 ("mlp.gate_up_proj.", "mlp.dense_h_to_4h."),
                 ("mlp.down_proj.", "mlp.dense_4h_to_h.")]
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
        cfg = config_cls(**dict(dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
                                     initializer_range=0.2), **extra))
        if rope is not None:
            rope = dict(rope, rope_theta=10000.0)
            if hasattr(cfg, "rope_parameters"):
                # transformers 5 keeps GLM's partial_rotary_factor in rope_parameters: merge, never replace
                cfg.rope_parameters = dict(cfg.rope_parameters or {}, **rope)
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
    to_chatglm(out / "glm_rope2", out / "chatglm", rope_ratio=2.0)
    to_bin(out / "llama_bias", out / "llama_bias_bin", shards=1)
    to_bin(out / "chatglm", out / "chatglm_bin", shards=3)
    odict = out / "ordered_dict_bin"
    odict.mkdir()
    shutil.copy(out / "gqa_untied" / "config.json", odict / "config.json")
    torch.save(LlamaForCausalLM.from_pretrained(out / "gqa_untied").state_dict(), odict / "pytorch_model.bin")


def to_bin(src: Path, dst: Path, shards: int) -> None:
    """The model in `src` as .bin weights, laid out as transformers 4.x's
    save_pretrained(safe_serialization=False) wrote them: torch.save of a plain dict of tensors per
    shard, and, when sharded, pytorch_model-0000K-of-0000N.bin files named by
    pytorch_model.bin.index.json. (transformers 5 writes safetensors whatever it is asked.)"""
    tensors = load_file(str(src / "model.safetensors"))
    names = list(tensors)
    dst.mkdir(parents=True, exist_ok=True)
    if shards == 1:
        torch.save(dict(tensors), dst / "pytorch_model.bin")
    else:
        weight_map = {}
        for k in range(shards):
            fname = f"pytorch_model-{k + 1:05d}-of-{shards:05d}.bin"
            part = names[k::shards]
            torch.save({n: tensors[n] for n in part}, dst / fname)
            weight_map.update({n: fname for n in part})
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        (dst / "pytorch_model.bin.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    for f in ("config.json", "reference.safetensors"):
        shutil.copy(src / f, dst / f)


def to_chatglm(src: Path, dst: Path, rope_ratio: float) -> None:
    cfg = json.loads((src / "config.json").read_text())
    tensors = load_file(str(src / "model.safetensors"))
    for i in range(cfg["num_hidden_layers"]):
        for kind in ("weight", "bias"):
            parts = [tensors.pop(f"model.layers.{i}.self_attn.{m}.{kind}") for m in ("q_proj", "k_proj", "v_proj")]
            tensors[f"model.layers.{i}.self_attn.qkv.{kind}"] = torch.cat(parts, 0)
    renamed = {}
    for name, t in tensors.items():
        for ours, theirs in CHATGLM_NAMES:
            name = name.replace(ours, theirs)
        renamed[name] = t.contiguous()
    rotary = cfg["head_dim"] // 2  # modeling_chatglm.py keeps this buffer in its checkpoints
    renamed["transformer.rotary_pos_emb.inv_freq"] = 1.0 / (10000 * rope_ratio) ** (
        torch.arange(0, rotary, 2).float() / rotary)
    dst.mkdir(parents=True, exist_ok=True)
    save_file(renamed, str(dst / "model.safetensors"))
    config = dict(architectures=["ChatGLMModel"], model_type="chatglm", num_layers=cfg["num_hidden_layers"],
                  padded_vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                  ffn_hidden_size=cfg["intermediate_size"], kv_channels=cfg["head_dim"],
                  num_attention_heads=cfg["num_attention_heads"], multi_query_attention=True,
                  multi_query_group_num=cfg["num_key_value_heads"], seq_length=cfg["max_position_embeddings"],
                  layernorm_epsilon=cfg["rms_norm_eps"], rope_ratio=rope_ratio, add_qkv_bias=True,
                  add_bias_linear=False, rmsnorm=True, post_layer_norm=True,
                  apply_residual_connection_post_layernorm=False, tie_word_embeddings=False,
                  original_rope=True, eos_token_id=2, pad_token_id=0, torch_dtype="float32")
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    shutil.copy(src / "reference.safetensors", dst / "reference.safetensors")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
