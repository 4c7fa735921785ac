"""Compares `tlens trajectory` outputs with the goldens tuned-lens 0.2.0 made
(golden/trajectory/<model>/trajectory.json).

usage: check_trajectory.py GOLDEN.json RUNS_DIR VOCAB
RUNS_DIR/<run>/trajectory.json are our outputs (VARIANTS maps each golden entry to
a run and statistic) and RUNS_DIR/<run>.safetensors the log-probs each run saved;
VOCAB is the token strings (a JSON list, or a tokenizer.json).

Every value must agree within 1e-5 (absolute, or relative above 1) and every label
and hover string must be equal, with three exceptions that come from fp32 noise in
the reference itself, each counted and printed:
  - a percentage one step of its last digit away (the value is within noise of x.xx5);
  - a rank where the target's log-probability ties (to fp32 resolution, in our saved
    log-probs) with other tokens, and the golden rank lies within the tie;
  - a comparison cell whose every change prints as 0.00% in both (changes of 1e-8
    that only reorder noise);
  - two hover tokens in each other's place whose log-probabilities (ours) differ by
    less than 1e-5: their order is below the tolerance (and so is the cell's label
    when it is the first of them)."""
import json
import math
import struct
import sys

import numpy as np

# golden key -> (run folder, our statistic key)
VARIANTS = {
    "entropy": ("base", "entropy"),
    "forward_kl": ("base", "forward_kl"),
    "cross_entropy": ("base", "cross_entropy"),
    "max_probability": ("base", "max_probability"),
    "rank": ("base", "rank"),
    "rank_show_ranks": ("show_ranks", "rank"),
    "log_prob_diff": ("base", "log_prob_diff"),
    "log_prob_diff_delta": ("delta", "log_prob_diff"),
    "kl_vs_other": ("base", "kl"),
    "js_vs_other": ("base", "js"),
    "tv_vs_other": ("base", "tv"),
    "slice_2_9_entropy": ("slice", "entropy"),
    "forward_kl_stride_2": ("stride", "forward_kl"),
    "forward_kl_clip_0_2": ("clip", "forward_kl"),
    "mask_input_entropy": ("mask_input", "entropy"),
    "batch_entropy": ("batch", "entropy"),
    "batch_cross_entropy": ("batch", "cross_entropy"),
}
FIELDS = ["name", "units", "min", "max", "includes_output", "layer_labels", "sequence_labels"]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    dt = {"F32": np.float32, "I32": np.int32, "I64": np.int64}
    out = {}
    for k, v in head.items():
        if k != "__metadata__":
            a, b = v["data_offsets"]
            out[k] = np.frombuffer(data[a:b], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return out


def pct_value(s):
    t = s[1:] if s.startswith("Δ") else s
    t = t[:-1] if t.endswith("%") else t
    try:
        return float(t)
    except ValueError:
        return None


def rounding_step(a, b):
    if a.startswith("Δ") != b.startswith("Δ") or a.endswith("%") != b.endswith("%"):
        return False
    x, y = pct_value(a), pct_value(b)
    return x is not None and y is not None and abs(abs(x - y) - 0.01) < 1e-9


def zero_change(s):
    return s.startswith("Δ") and pct_value(s) is not None and pct_value(s) == 0.0


def load_vocab(path):
    """Token strings by id: a JSON list, or a tokenizer.json's vocab and added tokens."""
    d = json.load(open(path))
    if isinstance(d, list):
        return d
    by_id = {i: t for t, i in d["model"]["vocab"].items()}
    for a in d.get("added_tokens", []):
        by_id[a["id"]] = a["content"]
    return [by_id.get(i) for i in range(max(by_id) + 1)]


def fmt(tok):
    """The reference's TokenFormatter."""
    if not isinstance(tok, str):
        return "<unk>"
    if len(tok) > 7:
        tok = tok[:6] + "…"
    return tok.replace("Ċ", "\\n").replace("Ġ", "_")


def err(a, b):
    d = abs(a - b)
    return d / abs(b) if abs(b) > 1 else d


class Checker:
    def __init__(self, golden_path, runs, vocab):
        self.golden = json.load(open(golden_path))
        self.path = golden_path
        self.runs = runs
        self.cache = {}
        self.lps = {}
        self.ids_of = {}
        for i, t in enumerate(load_vocab(vocab)):
            self.ids_of.setdefault(fmt(t), []).append(i)
        self.targets = json.load(open(golden_path.replace("trajectory.json", "inputs.json")))["targets"]
        self.fail = self.nvals = self.nstr = 0
        self.worst = 0.0
        self.excused = {"rounding step": 0, "rank tie": 0, "noise-only change": 0, "near tie": 0}

    def bad(self, msg):
        self.fail += 1
        if self.fail <= 40:
            print(msg)

    def excuse(self, kind, msg):
        self.excused[kind] += 1
        print(f"{msg} ({kind})")

    def log_probs(self, run, lens, b, r, c):
        if run not in self.lps:
            self.lps[run] = read_safetensors(f"{self.runs}/{run}.safetensors")
        return self.lps[run][f"{lens}.log_probs"][b, r, c].astype(np.float64)

    def near_tie(self, lp, a, b):
        """tokens printed a and b have log-probabilities within 1e-5 of each other"""
        la = max((lp[i] for i in self.ids_of.get(a, [])), default=None)
        lb = max((lp[i] for i in self.ids_of.get(b, [])), default=None)
        return la is not None and lb is not None and abs(la - lb) < 1e-5

    def rank_tied(self, lens, r, c, golden_rank):
        lp = self.log_probs("base", lens, 0, r, c)
        t = lp[self.targets[c]]
        tol = 8 * 2.0 ** (math.floor(math.log2(abs(t))) - 23) if t != 0 else 1e-30
        gt = int((lp > t + tol).sum())
        close = int((np.abs(lp - t) <= tol).sum())
        return close > 1 and gt + 1 <= golden_rank <= gt + close

    def run(self):
        for lens, entries in self.golden.items():
            for gkey, g in entries.items():
                run, key = VARIANTS[gkey]
                if run not in self.cache:
                    self.cache[run] = json.load(open(f"{self.runs}/{run}/trajectory.json"))
                self.entry(lens, gkey, run, g, self.cache[run][lens][key])
        print(f"{self.path}: {self.nvals} values (max error {self.worst:.2e}), {self.nstr} strings; "
              f"excused: {self.excused}; {self.fail} differences")
        # each excuse is rare: fp32 noise at a rounding edge or a tie
        if sum(self.excused.values()) * 500 > self.nstr:
            self.bad("too many excused differences")
        return 1 if self.fail else 0

    def entry(self, lens, gkey, run, g, o):
        where = f"{lens}/{gkey}"
        for f in FIELDS:
            if o[f] != g[f]:
                self.bad(f"{where}: {f}: ours {o[f]!r}, golden {g[f]!r}")
        gs, os_ = np.array(g["stats"], dtype=np.float64), np.array(o["stats"], dtype=np.float64)
        if gs.shape != os_.shape:
            return self.bad(f"{where}: stats shape {os_.shape}, golden {gs.shape}")
        is_rank = gkey.startswith("rank")
        tied = set()
        for (r, c), gv in np.ndenumerate(gs):
            ov = os_[r, c]
            self.nvals += 1
            e = err(ov, gv)
            if e <= 1e-5:
                self.worst = max(self.worst, e)
            elif is_rank and self.rank_tied(lens, r, c, gv):
                tied.add((r, c))
                self.excuse("rank tie", f"{where}: stats[{r}][{c}]: ours {ov:g}, golden {gv:g}")
            else:
                self.bad(f"{where}: stats[{r}][{c}]: ours {ov}, golden {gv}")
        for f in ("label_strings", "hover_over_entries"):
            if (g[f] is None) != (o[f] is None):
                self.bad(f"{where}: {f}: ours {'null' if o[f] is None else 'set'}, golden "
                         f"{'null' if g[f] is None else 'set'}")
        if g["label_strings"] is None or o["label_strings"] is None:
            return
        cmp = gkey.endswith("_vs_other")
        noise = set()
        gh, oh = g["hover_over_entries"], o["hover_over_entries"]
        rows = list(range(len(gh)))
        if run == "stride":  # the rows kept: every stride-th and the last
            R = self.lps.get(run, read_safetensors(f"{self.runs}/{run}.safetensors"))[f"{lens}.log_probs"].shape[1]
            rows = list(range(0, R - 1, 2)) + [R - 1]
        for r in range(len(gh)):
            for c in range(len(gh[r])):
                gcell = [s for row in gh[r][c] for s in row]
                ocell = [s for row in oh[r][c] for s in row]
                self.nstr += len(gcell)
                if len(gcell) != len(ocell):
                    self.bad(f"{where}: hover[{r}][{c}]: {len(ocell)} strings, golden {len(gcell)}")
                    continue
                if gcell == ocell:
                    continue
                vals = gcell[1::2] + ocell[1::2]
                if cmp and all(zero_change(s) for s in vals):
                    noise.add((r, c))
                    self.excuse("noise-only change", f"{where}: hover[{r}][{c}]")
                    continue
                hw = len(gh[r][c][0])
                for i, (a, b) in enumerate(zip(ocell, gcell)):
                    if a == b:
                        continue
                    if i % 2 == 0 and not cmp and self.near_tie(
                            self.log_probs(run, lens, i % hw // 2, rows[r], c), a, b):
                        if i < hw:
                            noise.add((r, c))
                        self.excuse("near tie", f"{where}: hover[{r}][{c}][{i}]: ours {a!r}, golden {b!r}")
                    elif rounding_step(a, b):
                        self.excuse("rounding step", f"{where}: hover[{r}][{c}][{i}]: ours {a!r}, golden {b!r}")
                    else:
                        self.bad(f"{where}: hover[{r}][{c}][{i}]: ours {a!r}, golden {b!r}")
        for r, (grow, orow) in enumerate(zip(g["label_strings"], o["label_strings"])):
            for c, (a, b) in enumerate(zip(orow, grow)):
                self.nstr += 1
                if a == b or (r, c) in noise or (gkey == "rank_show_ranks" and (r, c) in tied):
                    continue
                self.bad(f"{where}: label[{r}][{c}]: ours {a!r}, golden {b!r}")


if __name__ == "__main__":
    sys.exit(Checker(sys.argv[1], sys.argv[2], sys.argv[3]).run())
