# Two training runs agree: every step's loss and gradient norm, and the final weights (see the
# tolerances' derivation above `same` in dist_cli_test.sh). Usage: compare_runs.py RUN_A RUN_B
# [fp64|fp32] [--loss-rel X]: --loss-rel also bounds the losses' relative difference by X.
import json, sys, glob
import numpy as np
from safetensors.numpy import load_file
args = sys.argv[1:]
loss_rel = None
if "--loss-rel" in args:
    k = args.index("--loss-rel")
    loss_rel = float(args[k + 1])
    del args[k:k + 2]
a, b, dtype = (args + ["fp64"])[:3]
ma = [json.loads(l) for l in open(f"{a}/metrics.jsonl")]
mb = [json.loads(l) for l in open(f"{b}/metrics.jsonl")]
assert len(ma) == len(mb) >= 2, (len(ma), len(mb))
rel = lambda k: max(abs(x[k] - y[k]) / abs(x[k]) for x, y in zip(ma, mb))
rl, rg = rel("loss"), rel("grad_norm")
ca = load_file(sorted(glob.glob(f"{a}/checkpoints/step-*/model.safetensors"))[-1])
cb = load_file(sorted(glob.glob(f"{b}/checkpoints/step-*/model.safetensors"))[-1])
assert set(ca) == set(cb), set(ca) ^ set(cb)
assert all(ca[k].dtype == (np.float64 if dtype == "fp64" else np.float32) for k in ca), {ca[k].dtype for k in ca}
diffs = np.concatenate([np.abs(ca[k].astype(np.float64) - cb[k]).ravel() for k in ca])
lr = max(x["lr"] for x in ma)
if dtype == "fp64":
    print(f"loss rel diff {rl:.1e}, grad norm rel diff {rg:.1e}, weight max diff {diffs.max():.1e}")
    good = rl < 1e-9 and rg < 1e-9 and diffs.max() < 1e-6
else:
    print(f"fp32: loss rel diff {rl:.1e}, grad norm rel diff {rg:.1e}, weight mean diff {diffs.mean():.1e} "
          f"(max {diffs.max():.1e}, lr {lr:.0e})")
    good = rl < 1e-4 and rg < 1e-4 and diffs.mean() < 0.01 * lr
if loss_rel is not None:
    print(f"(losses within {loss_rel:.0e} relative: {rl <= loss_rel})")
    good = good and rl <= loss_rel
sys.exit(0 if good else 1)
