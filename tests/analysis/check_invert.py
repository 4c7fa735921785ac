"""Checks tlens invert's outputs (see test_invert.sh).
usage: check_invert.py MODEL_DIR GOLDEN_INVERT.safetensors OURS_PREFIX TRACE"""
import json
import math
import sys

import numpy as np

from check_trajectory import read_safetensors

model, golden_path, ours, trace = sys.argv[1:5]
cfg = json.load(open(f"{model}/config.json"))
W = read_safetensors(f"{model}/model.safetensors")
WU = W.get("lm_head.weight", W["model.embed_tokens.weight"]).astype(np.float64)
gain = W["model.norm.weight"].astype(np.float64)
eps = cfg["rms_norm_eps"]
golden = read_safetensors(golden_path)
z = golden["target_logits"].astype(np.float64)
logp = z - z.max(-1, keepdims=True)
logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
p = np.exp(logp)


def kl_of(y):
    """mean KL(p || softmax(W_U y)) for post-norm states y"""
    lq = y @ WU.T
    lq -= lq.max(-1, keepdims=True)
    lq -= np.log(np.exp(lq).sum(-1, keepdims=True))
    return float(np.mean(np.sum(p * (logp - lq), -1)))


fail = []
o = read_safetensors(f"{ours}.safetensors")
kl, ref = float(o["kl"][0]), float(golden["kl"][0])
print(f"{golden_path}: our KL {kl:.6g}, the reference's {ref:.6g} (within 1e-3 required)")
if not kl <= ref + 1e-3:
    fail.append(f"KL {kl} is not within 1e-3 of the reference's {ref}")
if o["preimage"].shape != golden["preimage"].shape:
    fail.append(f"preimage shape {o['preimage'].shape}, expected {golden['preimage'].shape}")
again = kl_of(o["preimage"].astype(np.float64))
if abs(again - kl) > 1e-5 * max(1.0, kl) + 1e-7:
    fail.append(f"the preimage's KL is {again}, reported {kl}")
if abs(kl_of(golden["preimage"].astype(np.float64)) - ref) > 1e-5:
    fail.append("numpy does not reproduce the reference's own KL (the check itself is wrong)")
# the preimage is a normalised state: RMS of y / gain is at most 1 (below 1 when
# |h| is comparable to the norm's eps, as from the start h = 0)
rms = np.sqrt(np.mean((o["preimage"].astype(np.float64) / gain) ** 2, -1))
if np.any(rms > 1 + 1e-5):
    fail.append(f"the preimage rows are not normalised: rms {rms}")
# the prior: loss = kl + w * mean(0.5 |y|^2 + d/2 log 2 pi)
pr = read_safetensors(f"{ours}.prior.safetensors")
y = pr["preimage"].astype(np.float64)
want = kl_of(y) + 0.01 * np.mean(0.5 * np.sum(y * y, -1) + 0.5 * y.shape[-1] * math.log(2 * math.pi))
if abs(float(pr["loss"][0]) - want) > 1e-4 * abs(want):
    fail.append(f"prior loss {float(pr['loss'][0])}, expected {want}")
# SGD: 50 evaluations go downhill from h = 0 (whose KL is that of y = 0)
sg = read_safetensors(f"{ours}.sgd.safetensors")
start = kl_of(np.zeros_like(y))
if not float(sg["kl"][0]) < start:
    fail.append(f"SGD did not reduce the KL from {start}: {float(sg['kl'][0])}")
# the first evaluations against torch.optim.LBFGS on the same objective
try:
    import torch as th
except ImportError:
    th = None
if th is not None:
    th.set_num_threads(1)
    U = th.tensor(WU, dtype=th.float32)
    g = th.tensor(gain, dtype=th.float32)
    lp = th.tensor(logp, dtype=th.float32)
    pt = lp.exp()
    h = th.nn.Parameter(th.zeros(z.shape[0], U.shape[1]))
    opt = th.optim.LBFGS([h], line_search_fn="strong_wolfe", lr=1.0, max_iter=200, tolerance_change=1e-4)
    seen = []

    def closure():
        opt.zero_grad()
        y = g * h * th.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        loss = th.sum(pt * (lp - (y @ U.T).log_softmax(-1)), -1).nanmean()
        loss.backward()
        seen.append(loss.item())
        return loss

    while len(seen) < 20:
        opt.step(closure)
    mine = [float(l.split()[2]) for l in open(trace) if l.startswith("eval ")][:20]
    worst = max(abs(a - b) / max(abs(b), 1e-3) for a, b in zip(mine, seen[:20]))
    print(f"first 20 evaluations against torch.optim.LBFGS: max relative difference {worst:.2e}")
    if worst > 1e-3:
        fail.append(f"evaluations differ from torch's: ours {mine}, torch {seen[:20]}")
else:
    print("(no torch: the step-by-step comparison with torch.optim.LBFGS is skipped)")
for f in fail:
    print("FAIL:", f)
sys.exit(1 if fail else 0)
