"""The trajectory benchmark (see bench_trajectory.sh): times `tlens trajectory` and the
reference's approach in PyTorch, each as a child process whose wall time and peak RSS
come from os.wait4, on the same inputs and with the same number of threads.

usage: bench_trajectory.py TLENS WORK_DIR TOKENS      (WORK_DIR/model: the synthetic model)
       bench_trajectory.py --torch MODEL HIDDEN OTHER_HIDDEN INPUTS.json THREADS   (the PyTorch side)

The PyTorch side does what tuned-lens 0.2.0's PredictionTrajectory does with numpy
arrays: it holds the log-probabilities of every row (the logit lens at each stream,
then the model's output) as one [layers+1, tokens, vocab] fp32 tensor per input and
computes each statistic from whole tensors (probs = exp(log_probs) per statistic, as
the reference's `probs` property does), plus the top-k labels by probability and by
probability change. It starts from the hidden states `tlens hidden` dumps, so its
time has no model forward in it (tlens's has); that forward's time is printed too.
Ranks are counted (1 + tokens with a larger log-probability) rather than argsorted,
which only makes the PyTorch side cheaper."""
import json
import os
import random
import struct
import subprocess
import sys
import time

K = 10


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def write_ids_safetensors(path, ids):
    head = json.dumps({"input_ids": {"dtype": "I32", "shape": [1, len(ids)], "data_offsets": [0, 4 * len(ids)]}})
    head = head.encode() + b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + struct.pack(f"<{len(ids)}i", *ids))


def timed(cmd, env=None, out=None):
    """runs cmd; returns (exit status, wall seconds, peak RSS in MB) of the child"""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.monotonic() - t0, ru.ru_maxrss / 1024.0


def python_with_torch():
    for py in (os.environ.get("PYTHON"), sys.executable, "python3", "/usr/bin/python3"):
        if py and subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0:
            return py
    return None


def mem_available_mb():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def driver(tlens, work, T):
    model = f"{work}/model"
    cfg = json.load(open(f"{model}/config.json"))
    L, V, d = cfg["num_hidden_layers"], cfg["vocab_size"], cfg["hidden_size"]
    threads = os.cpu_count() or 1
    rng = random.Random(0)
    ids = [rng.randrange(V) for _ in range(T)]
    other = [rng.randrange(V) if i % 16 == 7 else t for i, t in enumerate(ids)]
    anti = [(t + 5) % V for t in ids[1:]] + [5]
    json.dump(ids, open(f"{work}/ids.json", "w"))
    json.dump(other, open(f"{work}/other.json", "w"))
    inputs = {"targets": ids[1:] + [0], "anti_targets": anti}
    json.dump(inputs, open(f"{work}/inputs.json", "w"))
    print(f"bench_trajectory: gpt_neox {L} layers, d {d}, V {V}; {T} tokens, every statistic (kl/js/tv against "
          f"a second input), top-{K} labels, the logit lens; {threads} threads")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))

    log = open(f"{work}/tlens.log", "w")
    cmd = [tlens, "trajectory", "--model", model, "--logit", "--input_ids", f"{work}/ids.json",
           "--other_input_ids", f"{work}/other.json", "--anti_targets", ",".join(map(str, anti)), "--eos_id", "0",
           "--topk", str(K), "--threads", str(threads), "--output", f"{work}/out"]
    rc, wall, rss = timed(cmd, env, log)
    if rc != 0:
        print(open(f"{work}/tlens.log").read())
        sys.exit(f"bench_trajectory: tlens trajectory failed ({rc})")
    row_mb = (L + 1) * T * V * 4 / 2**20
    print(f"  tlens trajectory (forward + statistics + JSON/SVG/HTML): {wall:7.2f} s, peak RSS {rss:7.0f} MB")

    py = python_with_torch()
    if not py:
        print("  PyTorch: no python3 with torch here (Debian: python3-torch); skipped")
        return
    need = 5 * row_mb + 1024  # two log-prob tensors, their probs and one temporary, plus the process
    avail = mem_available_mb()
    if avail is not None and avail < need:
        print(f"  PyTorch: needs about {need:.0f} MB, {avail:.0f} MB available; skipped")
        return
    for name, src in (("h", ids), ("o", other)):
        write_ids_safetensors(f"{work}/{name}_ids.safetensors", src)
        hrc, hwall, _ = timed([tlens, "hidden", "--model", model, "--input", f"{work}/{name}_ids.safetensors",
                               "--output", f"{work}/{name}.safetensors"], env, log)
        if hrc != 0:
            sys.exit(f"bench_trajectory: tlens hidden failed ({hrc})")
    print(f"  (tlens hidden, the forward whose hidden states PyTorch starts from: {hwall:.2f} s per input)")
    rc, wall, rss = timed([py, os.path.abspath(__file__), "--torch", model, f"{work}/h.safetensors",
                           f"{work}/o.safetensors", f"{work}/inputs.json", str(threads)], env)
    if rc != 0:
        sys.exit(f"bench_trajectory: the PyTorch side failed ({rc})")
    print(f"  PyTorch, the reference's full tensors (2 x {row_mb:.0f} MB of log-probs), no forward: "
          f"{wall:7.2f} s, peak RSS {rss:7.0f} MB")


def torch_side(model, hidden, other_hidden, inputs_path, threads):
    import torch

    torch.set_num_threads(int(threads))
    t_start = time.monotonic()

    def tensors(path, names):
        head, base = read_header(path)
        out = {}
        dt = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64}
        with open(path, "rb") as f:
            for n in names:
                a, b = head[n]["data_offsets"]
                f.seek(base + a)
                buf = bytearray(f.read(b - a))
                out[n] = torch.frombuffer(buf, dtype=dt[head[n]["dtype"]]).reshape(head[n]["shape"])
        return out

    cfg = json.load(open(f"{model}/config.json"))
    L, eps = cfg["num_hidden_layers"], cfg["layer_norm_eps"]
    w = tensors(f"{model}/model.safetensors",
                ["gpt_neox.final_layer_norm.weight", "gpt_neox.final_layer_norm.bias", "embed_out.weight"])
    WU, g, b = w["embed_out.weight"], w["gpt_neox.final_layer_norm.weight"], w["gpt_neox.final_layer_norm.bias"]
    inp = json.load(open(inputs_path))
    tgt, anti = torch.tensor(inp["targets"]), torch.tensor(inp["anti_targets"])

    def log_probs(path):
        """[L+1, T, V]: the logit lens at each stream, then the model's output row"""
        h = tensors(path, [f"hidden_states.{i}" for i in range(L + 1)])
        rows = []
        for i in range(L):
            x = torch.nn.functional.layer_norm(h[f"hidden_states.{i}"][0], (WU.shape[1],), g, b, eps)
            rows.append((x @ WU.T).log_softmax(-1))
        rows.append((h[f"hidden_states.{L}"][0] @ WU.T).log_softmax(-1))
        return torch.stack(rows)

    with torch.no_grad():
        t0 = time.monotonic()
        lp, lpo = log_probs(hidden), log_probs(other_hidden)
        t1 = time.monotonic()
        at = lambda x, ids: x.gather(-1, ids[None, :, None].expand(x.shape[0], -1, 1))[..., 0]
        stats = {}
        stats["entropy"] = -(lp.exp() * lp).sum(-1)
        final = lp[-1:]
        stats["forward_kl"] = (final.exp() * (final - lp)).sum(-1)
        stats["cross_entropy"] = -at(lp, tgt)
        stats["max_probability"] = lp.max(-1).values.exp()
        stats["rank"] = 1 + (lp > at(lp, tgt)[..., None]).sum(-1)
        stats["log_prob_diff"] = at(lp, tgt) - at(lp, anti)
        stats["kl"] = (lp.exp() * (lp - lpo)).sum(-1)
        stats["js"] = 0.5 * (lp.exp() * (lp - lpo)).sum(-1) + 0.5 * (lpo.exp() * (lpo - lp)).sum(-1)
        stats["tv"] = (lp.exp() - lpo.exp()).abs().max(-1).values
        top = lp.topk(K, -1)
        delta = lpo.exp() - lp.exp()
        dtop = delta.abs().topk(K, -1)
        t2 = time.monotonic()
    print(f"    (PyTorch: reading {t0 - t_start:.2f} s, log-prob tensors {t1 - t0:.2f} s, statistics and "
          f"top-{K} {t2 - t1:.2f} s; mean entropy of the output row {stats['entropy'][-1].mean():.4f} nats; "
          f"{top.indices.shape[0] * top.indices.shape[1]} cells labelled by probability and by change)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--torch":
        torch_side(*sys.argv[2:7])
    else:
        driver(sys.argv[1], sys.argv[2], int(sys.argv[3]))
