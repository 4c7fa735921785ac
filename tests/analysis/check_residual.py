"""`tlens trajectory --residual` on the gpt2 golden against an independent reference:
GPT-2's forward written out in numpy (float64), checked first against the hidden
states transformers made (golden/gpt2/forward.safetensors), which gives every
sub-layer stream as TransformerLens names them (hook_resid_pre, hook_resid_mid,
hook_resid_post, hook_attn_out, hook_mlp_out); the tuned lens (params.pt, read here
with zipfile + pickle) and the logit lens applied to those streams; and the
reference's statistics (check_numpy.stats_of) on the result, compared with our
trajectory.json. Our forward runs in fp32 and this one in float64, so values agree
within 1e-4 (absolute, or relative above 1), ranks up to ties within that noise.
Also, from the log-probabilities tlens saved: the logit lens at resid_post of layer l
equals it at resid_pre of layer l+1 bit for bit (both from one hooked run).

usage: check_residual.py GOLDEN_GPT2_DIR RUNS_DIR
RUNS_DIR/<run>/trajectory.json and RUNS_DIR/<run>.safetensors, runs named
<component> (clean) and abl_<component> (--ablate attn:1,mlp:0), cmp_resid_post
(--ablate attn:1,mlp:0 --compare clean)."""
import collections
import json
import math
import pickle
import sys
import zipfile

import numpy as np

from check_numpy import stats_of
from check_trajectory import read_safetensors

TOL = 1e-4


def load_pt(path):
    """a params.pt state dict of plain tensors -> {name: float64 array}"""
    z = zipfile.ZipFile(path)
    root = z.namelist()[0].split("/")[0]
    dtypes = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64}

    def rebuild(storage, offset, size, stride, *_):
        a = storage[offset:]
        return np.lib.stride_tricks.as_strided(a, shape=size, strides=[s * a.itemsize for s in stride]).copy()

    class Reader(pickle.Unpickler):
        def find_class(self, mod, name):
            if (mod, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if (mod, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if mod == "torch" and name in dtypes:
                return name
            raise pickle.UnpicklingError(f"unexpected {mod}.{name} in {path}")

        def persistent_load(self, pid):
            _, kind, key, _, _ = pid
            return np.frombuffer(z.read(f"{root}/data/{key}"), dtype=dtypes[kind])

    return {k: v.astype(np.float64) for k, v in Reader(z.open(f"{root}/data.pkl")).load().items()}


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def forward(W, cfg, ids, zero=()):
    """GPT-2 on ids [T]: {component: [L, T, d]} and the output (after ln_f) [T, d].
    zero: (layer, "attn"|"mlp") sub-layers whose output is replaced by zeros."""
    T, d, H, eps = len(ids), cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    hd = d // H
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][:T]
    comp = {k: [] for k in ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")}
    causal = np.tril(np.ones((T, T), dtype=bool))
    for l in range(cfg["n_layer"]):
        p = lambda n: W[f"transformer.h.{l}.{n}"]
        comp["resid_pre"].append(x)
        a = layer_norm(x, p("ln_1.weight"), p("ln_1.bias"), eps)
        q, k, v = np.split(a @ p("attn.c_attn.weight") + p("attn.c_attn.bias"), 3, axis=-1)
        q, k, v = (t.reshape(T, H, hd).transpose(1, 0, 2) for t in (q, k, v))
        s = np.where(causal, q @ k.transpose(0, 2, 1) / math.sqrt(hd), -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        o = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(T, d)
        attn = o @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        if (l, "attn") in zero:
            attn = np.zeros_like(attn)
        x = x + attn
        comp["attn_out"].append(attn), comp["resid_mid"].append(x)
        h = gelu_new(layer_norm(x, p("ln_2.weight"), p("ln_2.bias"), eps) @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"))
        mlp = h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
        if (l, "mlp") in zero:
            mlp = np.zeros_like(mlp)
        x = x + mlp
        comp["mlp_out"].append(mlp), comp["resid_post"].append(x)
    out = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return {k: np.stack(v) for k, v in comp.items()}, out


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def trajectory(W, cfg, lens, streams, out):
    """[L+1, T, V] log-probs: the lens (None: the logit lens) at each stream, then the model"""
    WU, eps = W["transformer.wte.weight"], cfg["layer_norm_epsilon"]
    unembed = lambda h: layer_norm(h, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps) @ WU.T
    rows = []
    for l, h in enumerate(streams):
        if lens is not None:
            h = h + h @ lens[f"{l}.weight"].T + lens[f"{l}.bias"]
        rows.append(log_softmax(unembed(h)))
    rows.append(log_softmax(out @ WU.T))
    return np.stack(rows)


def err(a, b):
    return abs(a - b) / max(1.0, abs(b))


def main():
    gold, runs = sys.argv[1:3]
    cfg = json.load(open(f"{gold}/model/config.json"))
    W = {k: v.astype(np.float64) for k, v in read_safetensors(f"{gold}/model/model.safetensors").items()}
    lens = load_pt(f"{gold}/lens/params.pt")
    hf = read_safetensors(f"{gold}/forward.safetensors")
    ids = hf["input_ids"][0].astype(np.int64)
    L = cfg["n_layer"]
    fail = []

    # the numpy forward is GPT-2's: HF's hidden states within fp32 noise
    clean, out = forward(W, cfg, ids)
    for l in range(L):
        e = np.abs(clean["resid_pre"][l] - hf[f"hidden_states.{l}"][0]).max()
        if e > 1e-4:
            fail.append(f"numpy resid_pre[{l}] differs from transformers' hidden state by {e}")
    if np.abs(out - hf[f"hidden_states.{L}"][0]).max() > 1e-4:
        fail.append("numpy output differs from transformers' last hidden state")
    abl, abl_out = forward(W, cfg, ids, zero={(1, "attn"), (0, "mlp")})

    tgt = np.append(ids[1:], 0)  # the default targets with --eos_id 0
    keys = ("entropy", "forward_kl", "cross_entropy", "max_probability", "rank")
    nval, worst = 0, 0.0
    for run, streams, o in [(k, clean[k], out) for k in clean] + [(f"abl_{k}", abl[k], abl_out) for k in clean]:
        ours = json.load(open(f"{runs}/{run}/trajectory.json"))
        for lens_type, lw in (("tuned", lens), ("logit", None)):
            lp = trajectory(W, cfg, lw, streams, o)
            want = stats_of(lp, lp, tgt, tgt)
            for key in keys:
                have = np.array(ours[lens_type][key]["stats"], dtype=np.float64)
                for (r, c), w in np.ndenumerate(want[key]):
                    nval += 1
                    if key == "rank":
                        # within the tokens tied with the target to the tolerance
                        t = lp[r, c, tgt[c]]
                        lo, hi = np.sum(lp[r, c] > t + TOL) + 1, np.sum(lp[r, c] >= t - TOL)
                        ok = lo <= have[r, c] <= hi
                    else:
                        e = err(have[r, c], w)
                        worst, ok = max(worst, e), e <= TOL
                    if not ok:
                        fail.append(f"{run} {lens_type}/{key}[{r}][{c}]: ours {have[r, c]}, numpy {w}")
    # --compare clean: kl, js, tv of the ablated resid_post against the clean one
    ours = json.load(open(f"{runs}/cmp_resid_post/trajectory.json"))
    for lens_type, lw in (("tuned", lens), ("logit", None)):
        want = stats_of(trajectory(W, cfg, lw, abl["resid_post"], abl_out),
                        trajectory(W, cfg, lw, clean["resid_post"], out), tgt, tgt)
        for key in ("kl", "js", "tv"):
            have = np.array(ours[lens_type][key]["stats"], dtype=np.float64)
            for (r, c), w in np.ndenumerate(want[key]):
                nval += 1
                e = abs(have[r, c] - w)  # absolute: these are differences of near-equal rows
                worst = max(worst, e)
                if not e <= TOL:
                    fail.append(f"cmp_resid_post {lens_type}/{key}[{r}][{c}]: ours {have[r, c]}, numpy {w}")

    # one hooked run: the logit lens at resid_post[l] and at resid_pre[l+1] are the same bits
    post = read_safetensors(f"{runs}/abl_resid_post.safetensors")["logit.log_probs"][0]
    pre = read_safetensors(f"{runs}/abl_resid_pre.safetensors")["logit.log_probs"][0]
    for l in range(L - 1):
        if not np.array_equal(post[l], pre[l + 1]):
            fail.append(f"logit lens: resid_post[{l}] and resid_pre[{l + 1}] differ (max {np.abs(post[l] - pre[l + 1]).max()})")
    # and the ablation shows: zeroed attention at layer 1 leaves resid_mid[1] = resid_pre[1]
    mid = read_safetensors(f"{runs}/abl_resid_mid.safetensors")["logit.log_probs"][0]
    if not np.array_equal(mid[1], pre[1]):
        fail.append("with attn:1 zeroed, the logit lens at resid_mid[1] differs from resid_pre[1]")

    for f in fail[:40]:
        print(f)
    print(f"--residual on {gold}: {nval} values against numpy (max error {worst:.2e}), {len(fail)} failures")
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
