#!/usr/bin/env python3
"""Assembles bench/results/train_gpu.json from one GPU training run of scripts/gpu_check.sh (the
~1B model at 64k packed tokens): tokens/s, MFU and peak GPU memory beside the planner's estimate.

Standard library only: it runs under the GPU machine's torch venv, which has no package registry.

Inputs are what the CLI already writes, so the trainer needs no benchmark mode:
  --dry-run  the output of `longalign train ... --dry-run` (parameters, resolved model, the
             memory estimate of the configured ZeRO stage)
  --log      the run's output (its "== training summary ==" block)
  --run-dir  the run's output.dir: metrics.jsonl (cumulative tokens and elapsed seconds per step)
             and data.pack/ (plan.json's sequences per step, index.bin's sequence lengths)

tokens/s and MFU are taken over the steps after the first, whose time includes CUDA and cuDNN
start-up; the summary's whole-run figure is kept beside them. MFU counts model FLOPs only (no
activation recomputation): 6 * params * tokens plus causal attention, 6 * layers * width * s^2
per sequence of s tokens with width = heads * head_dim (the forward's QK^T and PV cost
4 * s^2 * width per layer, halved by the causal mask; the backward twice the forward), over
the GPU's dense bf16 peak.
"""
import argparse
import datetime
import json
import re
import struct
import sys
from pathlib import Path

# Dense bf16 tensor-core peaks (FLOP/s) from NVIDIA's data sheets, by a substring of the name;
# the first match counts, so the PCIe and NVL cards (lower clocks) come before the SXM default.
PEAKS = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H200 NVL", 835e12), ("H200", 989.4e12), ("H100", 989.4e12),
         ("A100", 312e12)]


def fail(msg):
    sys.exit(f"train_gpu_json: {msg}")


def grab(pattern, text, what, cast=float):
    m = re.search(pattern, text, re.M)
    if not m:
        fail(f"no {what} in the output (pattern {pattern!r}); did the run finish?")
    return cast(m.group(1))


def sequence_lengths(pack_dir):
    # index.bin: 16-byte entries {u64 offset, u32 length, u32 n_targets} (data/token_dataset.hpp).
    raw = (pack_dir / "index.bin").read_bytes()
    return [struct.unpack_from("<QII", raw, i)[1] for i in range(0, len(raw), 16)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", required=True, type=Path)
    ap.add_argument("--log", required=True, type=Path)
    ap.add_argument("--run-dir", required=True, type=Path)
    ap.add_argument("--device", required=True, help="GPU name, e.g. from nvidia-smi")
    ap.add_argument("--out", required=True, type=Path, nargs="+", help="JSON file(s) to write")
    a = ap.parse_args()

    dry, log = a.dry_run.read_text(), a.log.read_text()
    params = grab(r"^parameters: (\d+)", dry, "parameter count", int)
    # The attention width is heads * head_dim (hidden_size in Llama shapes, not in all).
    width = grab(r"^  num_attention_heads: (\d+)", dry, "model.num_attention_heads", int) * \
        grab(r"^  head_dim: (\d+)", dry, "model.head_dim", int)
    layers = grab(r"^  num_hidden_layers: (\d+)", dry, "model.num_hidden_layers", int)
    micro_tokens = grab(r"\((\d+) tokens per micro-step", dry, "tokens per micro-step", int)
    estimate = grab(r"^  total +([\d.]+) GiB", dry, "memory estimate total")
    peak_mib = grab(r"peak GPU memory (\d+) MiB", log, "peak GPU memory")
    run_tps = grab(r"time [\d.]+ s +(\d+) tokens/s", log, "tokens/s of the training summary")

    rows = [json.loads(l) for l in (a.run_dir / "metrics.jsonl").read_text().splitlines() if l.strip()]
    if len(rows) < 2:
        fail(f"{a.run_dir}/metrics.jsonl has {len(rows)} step(s); steady-state figures need 2 or more (train.max_steps)")
    first, last = rows[0], rows[-1]
    tokens = last["tokens"] - first["tokens"]
    seconds = last["elapsed_s"] - first["elapsed_s"]
    tps = tokens / seconds

    pack = a.run_dir / "data.pack"
    lengths = sequence_lengths(pack)
    plan = json.loads((pack / "plan.json").read_text())
    # Metrics step m (1-based) ran plan step m-1 in the first epoch (train/trainer.cpp).
    sq = sum(lengths[i] ** 2 for r in rows[1:] for u in plan["steps"][r["step"] - 1]["units"] for i in u["seqs"])
    attn_flops = 6.0 * layers * width * sq
    dense_flops = 6.0 * params * tokens
    peak = next((p for name, p in PEAKS if name in a.device), None)

    doc = {
        "device": a.device,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "params": params,
        "tokens_per_micro_step": micro_tokens,
        "tokens_per_s": round(tps, 1),
        "mfu": round((dense_flops + attn_flops) / seconds / peak, 4) if peak else None,
        "peak_gpu_gib": round(peak_mib / 1024, 2),
        "plan_estimate_gib": estimate,
        "mfu_without_attention": round(dense_flops / seconds / peak, 4) if peak else None,
        "mfu_formula": "(6 * params * tokens + 6 * layers * heads * head_dim * sum(s^2 over sequences)) / seconds / peak; "
                       "steps after the first; no recomputation counted",
        "peak_flops": peak,
        "steps_measured": len(rows) - 1,
        "tokens_per_s_whole_run": run_tps,
        "attention_flop_share": round(attn_flops / (dense_flops + attn_flops), 3),
    }
    text = json.dumps(doc, indent=2) + "\n"
    for out in a.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
