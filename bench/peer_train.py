"""The peer for bench/train_bench.sh: a plain PyTorch training loop (pip torch, no longalign)
over the same packed data and the same model shape, so tokens/s and peak RSS compare directly.

It reads a `longalign pack` directory (tokens.bin, targets.bin, index.bin, plan.json), builds a
Llama (RMSNorm, RoPE, GQA, SwiGLU) in ~60 lines, and for each plan step runs every unit with
block-diagonal causal attention (torch SDPA with a per-pack mask), the same sequence loss weights,
gradient clipping and torch.optim.AdamW.

Usage: peer_train.py PACK_DIR STEPS hidden inter layers heads kv_heads lr
"""
import json
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(s, h, inter, nh, nkv):
        super().__init__()
        s.nh, s.nkv, s.d = nh, nkv, h // nh
        s.n1, s.n2 = torch.nn.RMSNorm(h, eps=1e-5), torch.nn.RMSNorm(h, eps=1e-5)
        s.q, s.k = torch.nn.Linear(h, h, bias=False), torch.nn.Linear(h, nkv * s.d, bias=False)
        s.v, s.o = torch.nn.Linear(h, nkv * s.d, bias=False), torch.nn.Linear(h, h, bias=False)
        s.g, s.u, s.dn = (torch.nn.Linear(h, inter, bias=False), torch.nn.Linear(h, inter, bias=False),
                          torch.nn.Linear(inter, h, bias=False))

    def forward(s, x, cos, sin, mask):
        t = x.shape[0]
        y = s.n1(x)
        q, k, v = s.q(y).view(t, s.nh, s.d), s.k(y).view(t, s.nkv, s.d), s.v(y).view(t, s.nkv, s.d)
        rot = lambda z: torch.cat([-z[..., s.d // 2:], z[..., : s.d // 2]], -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        a = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), attn_mask=mask,
                                           enable_gqa=True)
        x = x + s.o(a.transpose(0, 1).reshape(t, -1))
        y = s.n2(x)
        return x + s.dn(F.silu(s.g(y)) * s.u(y))


class Llama(torch.nn.Module):
    def __init__(s, vocab, h, inter, layers, nh, nkv):
        super().__init__()
        s.emb = torch.nn.Embedding(vocab, h)
        s.blocks = torch.nn.ModuleList(Block(h, inter, nh, nkv) for _ in range(layers))
        s.norm, s.head = torch.nn.RMSNorm(h, eps=1e-5), torch.nn.Linear(h, vocab, bias=False)
        s.inv = 1.0 / (10000 ** (torch.arange(0, h // nh, 2).float() / (h // nh)))

    def forward(s, ids, pos, mask):
        f = pos.float()[:, None] * s.inv[None]
        e = torch.cat([f, f], -1)
        cos, sin = e.cos()[:, None], e.sin()[:, None]
        x = s.emb(ids)
        for b in s.blocks:
            x = b(x, cos, sin, mask)
        return s.head(s.norm(x))


def main():
    pack, steps = sys.argv[1], int(sys.argv[2])
    h, inter, layers, nh, nkv = map(int, sys.argv[3:8])
    lr = float(sys.argv[8])
    header = json.load(open(f"{pack}/header.json"))
    plan = json.load(open(f"{pack}/plan.json"))
    toks = np.fromfile(f"{pack}/tokens.bin", dtype=np.int32)
    tgt = np.fromfile(f"{pack}/targets.bin", dtype=np.uint8)
    idx = np.fromfile(f"{pack}/index.bin", dtype=np.uint64).reshape(-1, 2)
    torch.manual_seed(0)
    model = Llama(header["vocab_size"], h, inter, layers, nh, nkv)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    real_tokens, t0 = 0, time.time()
    for step in range(steps):
        units = plan["steps"][step % len(plan["steps"])]["units"]
        for u in units:
            ids, pos, lab, w, seg = [], [], [], [], []
            pad_to = max(int(idx[i][1] & 0xFFFFFFFF) for i in u["seqs"]) if plan["strategy"] != "pack" else 0
            for k, (i, wt) in enumerate(zip(u["seqs"], u["weights"])):
                off, n = int(idx[i][0]), int(idx[i][1] & 0xFFFFFFFF)
                s, m = toks[off:off + n].astype(np.int64), tgt[off:off + n]
                L = max(n, pad_to)
                ids += list(s) + [0] * (L - n)
                pos += list(range(L))
                lab += [int(s[t + 1]) if t + 1 < n and m[t + 1] else -100 for t in range(L)]
                w += [wt if t + 1 < n and m[t + 1] else 0.0 for t in range(L)]
                seg += [k] * L
                real_tokens += n
            ids, pos, lab, w, seg = map(torch.tensor, (ids, pos, lab, w, seg))
            causal = torch.ones(len(ids), len(ids), dtype=torch.bool).tril()
            mask = causal & (seg[:, None] == seg[None, :])
            logits = model(ids, pos, mask)
            nll = F.cross_entropy(logits.float(), lab.clamp_min(0), reduction="none")
            (nll * w.float()).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    secs = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"steps": steps, "seconds": secs, "real_tokens": real_tokens,
                      "real_tokens_per_s": real_tokens / secs, "peak_rss_mb": rss}))


if __name__ == "__main__":
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
    main()
