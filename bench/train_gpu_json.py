#!/usr/bin/env python3
"""Assembles bench/results/train_gpu.json from the GPU training runs of scripts/gpu_check.sh (the
~1B model at 64k packed tokens): tokens/s, MFU and peak GPU memory beside the planner's estimate.

Standard library only: it runs under the GPU machine's torch venv, which has no package registry.

Called after each run, it writes what it has, so a run stopped at its time limit, or a check whose
later steps never start, still leaves the figures measured so far. The file is read back and
updated, and each --out is replaced atomically (a temp file beside it, then a rename).

Inputs are what the CLI already writes, so the trainer needs no benchmark mode:
  --dry-run  the output of `longalign train ... --dry-run` (parameters, resolved model, the
             memory estimate of the configured ZeRO stage)
  --log      the run's output (its "== training summary ==" block, "peak GPU memory")
  --run-dir  the run's output.dir: metrics.jsonl (cumulative tokens and elapsed seconds per step)
             and data.pack/ (plan.json's sequences per step, index.bin's sequence lengths)
  --status   how the run ended, as scripts/gpu_check.sh saw it (ok, "exit 1", timeout, ...)
Any input may be missing or incomplete (only --dry-run, before the run; a run killed mid-way):
what can be computed is written, and "complete" says whether the main run's figures are all there.

Without --variant these are the main run's figures, at the top level. With --variant NAME (zero3,
offload, sort, naive: the same model in another mode) they go to "variants"[NAME]: tokens/s, peak
memory and, given its --dry-run, the planner's estimate for that mode.

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
import os
import re
import struct
import sys
from pathlib import Path

# Dense bf16 tensor-core peaks (FLOP/s) from NVIDIA's data sheets, by a substring of the name;
# the first match counts, so the PCIe and NVL cards (lower clocks) come before the SXM default.
PEAKS = [("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H200 NVL", 835e12), ("H200", 989.4e12), ("H100", 989.4e12),
         ("A100", 312e12)]

MFU_FORMULA = ("(6 * params * tokens + 6 * layers * heads * head_dim * sum(s^2 over sequences)) / seconds / peak; "
               "steps after the first; no recomputation counted")


def grab(pattern, text, cast=float):
    """The first group of `pattern` in `text`, or None (the output is incomplete)."""
    m = re.search(pattern, text or "", re.M)
    return cast(m.group(1)) if m else None


def read_text(path):
    try:
        return path.read_text(errors="replace") if path else None
    except OSError:
        return None


def sequence_lengths(pack_dir):
    # index.bin: 16-byte entries {u64 offset, u32 length, u32 n_targets} (data/pack/token_dataset.hpp).
    raw = (pack_dir / "index.bin").read_bytes()
    return [struct.unpack_from("<QII", raw, i)[1] for i in range(0, len(raw) - 15, 16)]


def metrics_rows(run_dir):
    """metrics.jsonl's complete rows (a killed writer may leave a partial last line)."""
    text = read_text(run_dir / "metrics.jsonl") if run_dir else None
    rows = []
    for line in (text or "").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    return rows


def dry_run_figures(dry):
    """What the --dry-run output says: parameters, the attention shape, the memory estimate."""
    heads, head_dim = grab(r"^  num_attention_heads: (\d+)", dry, int), grab(r"^  head_dim: (\d+)", dry, int)
    return {
        "params": grab(r"^parameters: (\d+)", dry, int),
        # The attention width is heads * head_dim (hidden_size in Llama shapes, not in all).
        "width": heads * head_dim if heads and head_dim else None,
        "layers": grab(r"^  num_hidden_layers: (\d+)", dry, int),
        "tokens_per_micro_step": grab(r"\((\d+) tokens per micro-step", dry, int),
        "plan_estimate_gib": grab(r"^  total +([\d.]+) GiB", dry),
    }


def run_figures(log, run_dir, f, peak, notes):
    """The measured figures of one run; `notes` collects what could not be computed and why."""
    out = {}
    peak_mib = grab(r"peak GPU memory (\d+) MiB", log, int)
    if peak_mib is not None:
        out["peak_gpu_gib"] = round(peak_mib / 1024, 2)
    else:
        notes.append("no 'peak GPU memory' line in the log")
    run_tps = grab(r"time [\d.]+ s +(\d+) tokens/s", log)
    if run_tps is not None:
        out["tokens_per_s_whole_run"] = run_tps
    rows = metrics_rows(run_dir)
    if len(rows) < 2:
        notes.append(f"metrics.jsonl has {len(rows)} step(s); steady-state figures need 2 or more")
        return out
    first, last = rows[0], rows[-1]
    tokens = last["tokens"] - first["tokens"]
    seconds = last["elapsed_s"] - first["elapsed_s"]
    if seconds <= 0:
        notes.append("no time elapsed between the first and last steps")
        return out
    out["tokens_per_s"] = round(tokens / seconds, 1)
    out["steps_measured"] = len(rows) - 1
    if not (peak and f.get("params") and f.get("layers") and f.get("width")):
        notes.append("MFU not computed (" + ("the GPU's peak is unknown" if not peak else "no --dry-run figures") + ")")
        return out
    dense_flops = 6.0 * f["params"] * tokens
    try:
        pack = run_dir / "data.pack"
        lengths = sequence_lengths(pack)
        plan = json.loads((pack / "plan.json").read_text())
        # Metrics step m (1-based) ran plan step m-1 in the first epoch (train/trainer.cpp).
        sq = sum(lengths[i] ** 2 for r in rows[1:] for u in plan["steps"][r["step"] - 1]["units"] for i in u["seqs"])
    except (OSError, ValueError, KeyError, IndexError) as e:
        notes.append(f"attention FLOPs not computed ({run_dir}/data.pack: {e})")
        out["mfu_without_attention"] = round(dense_flops / seconds / peak, 4)
        return out
    attn_flops = 6.0 * f["layers"] * f["width"] * sq
    out["mfu"] = round((dense_flops + attn_flops) / seconds / peak, 4)
    out["mfu_without_attention"] = round(dense_flops / seconds / peak, 4)
    out["attention_flop_share"] = round(attn_flops / (dense_flops + attn_flops), 3)
    return out


def write_atomic(doc, outs):
    text = json.dumps(doc, indent=2) + "\n"
    for out in outs:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, out)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", type=Path)
    ap.add_argument("--log", type=Path)
    ap.add_argument("--run-dir", type=Path)
    ap.add_argument("--status", default="ok", help="how the run ended (ok, 'exit N', timeout)")
    ap.add_argument("--variant", help="a run of the same model in another mode, recorded under variants")
    ap.add_argument("--device", required=True, help="GPU name, e.g. from nvidia-smi")
    ap.add_argument("--out", required=True, type=Path, nargs="+", help="JSON file(s) to write; the first is updated")
    a = ap.parse_args()

    try:
        doc = json.loads(a.out[0].read_text())
        if not isinstance(doc, dict) or doc.get("device") != a.device:
            doc = {}  # another machine's results: start afresh
    except (OSError, ValueError):
        doc = {}
    doc["device"] = a.device
    doc["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    peak = next((p for name, p in PEAKS if name in a.device), None)
    dry, log = read_text(a.dry_run), read_text(a.log)
    f = dry_run_figures(dry)
    notes = []
    if a.dry_run and dry is None:
        notes.append(f"{a.dry_run} not readable")

    if a.variant:
        # The model's figures (for MFU) are the main run's; the estimate is this mode's own.
        base = {"params": doc.get("params"), "layers": doc.get("layers"), "width": doc.get("attention_width")}
        v = {"status": a.status}
        if f["plan_estimate_gib"] is not None:
            v["plan_estimate_gib"] = f["plan_estimate_gib"]
        if log is not None or a.run_dir:
            v.update(run_figures(log, a.run_dir, base, peak, notes))
        if notes:
            v["notes"] = notes
        doc.setdefault("variants", {})[a.variant] = v
    else:
        # A rerun of the main run replaces its figures (the variants stay).
        doc = {k: v for k, v in doc.items() if k in ("device", "date", "variants")}
        for key in ("params", "tokens_per_micro_step", "plan_estimate_gib", "layers"):
            if f[key] is not None:
                doc[key] = f[key]
        if f["width"] is not None:
            doc["attention_width"] = f["width"]
        doc["status"] = a.status if (log is not None or a.run_dir) else "dry run only; the training run has not ended"
        if log is not None or a.run_dir:
            doc.update(run_figures(log, a.run_dir, f, peak, notes))
        doc["peak_flops"] = peak
        doc["mfu_formula"] = MFU_FORMULA
        doc["notes"] = notes
        doc["complete"] = all(k in doc for k in ("params", "plan_estimate_gib", "tokens_per_s", "mfu", "peak_gpu_gib"))
    print(write_atomic(doc, a.out), end="")


if __name__ == "__main__":
    main()
