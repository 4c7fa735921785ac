"""A second, independent reference: the reference's PredictionTrajectory formulas
written out in numpy (fp32 arrays, as the reference holds them), applied to the
log-probabilities tlens saved (--save_log_probs), compared with tlens's own
trajectory.json of the same run. Checks the statistics (within 1e-5), the top-1
labels, the hover strings and their order (numpy's argpartition and argsort decide
ties here too) and the layer/sequence labels. As against the goldens, a percentage
may sit one rounding step away, and a comparison cell whose changes all print as
0.00% (changes of 1e-8: fp32 noise in exp) may order them differently.

usage: check_numpy.py RUN.safetensors RUN/trajectory.json INPUTS.json VOCAB"""
import json
import sys

import numpy as np

from check_trajectory import err, fmt, load_vocab, read_safetensors, rounding_step, zero_change


def topk(sort_by, values, k):
    """the reference's top-k: argpartition, then argsort of the negated values"""
    idx = np.argpartition(sort_by, -k, axis=-1)[..., -k:]
    order = np.argsort(-np.take_along_axis(sort_by, idx, axis=-1), axis=-1)
    idx = np.take_along_axis(idx, order, axis=-1)
    return idx, np.take_along_axis(values, idx, axis=-1)


def stats_of(lp, lpo, tgt, anti):
    """lp, lpo: [R, T, V] fp32 log-probs of self and other; tgt, anti: [T]"""
    p, po = np.exp(lp), np.exp(lpo)
    at = lambda x, ids: np.take_along_axis(x, ids[None, :, None], axis=-1)[..., 0]
    ranks = np.argsort(np.argsort(-lp, axis=-1), axis=-1) + 1
    final = lp[-1][None]
    return {
        "entropy": -np.sum(p * lp, axis=-1),
        "forward_kl": np.sum(np.exp(final) * (final - lp), axis=-1),
        "cross_entropy": -at(lp, tgt),
        "max_probability": np.exp(lp.max(-1)),
        "rank": at(ranks, tgt).astype(np.float64),
        "log_prob_diff": at(lp, tgt) - at(lp, anti),
        "kl": np.sum(p * (lp - lpo), axis=-1),
        "js": 0.5 * np.sum(p * (lp - lpo), axis=-1) + 0.5 * np.sum(po * (lpo - lp), axis=-1),
        "tv": np.abs(p - po).max(-1),
    }


def labels_of(vocab, sort_by, values, k, delta):
    """top-1 label strings [R, T] and hover strings [R, T, k, 2] as the reference formats them"""
    idx, vals = topk(sort_by, values, k)
    toks = np.vectorize(lambda i: fmt(vocab[i] if i < len(vocab) else None))(idx)
    width = max(len(t) for t in toks.ravel())  # the numpy string array's width
    pct = np.char.mod("%.2f", vals * np.float32(100))
    pct = np.char.add(np.char.add("Δ", pct), "%") if delta else np.char.add(pct, "%")
    pct = np.vectorize(lambda s: s[:width])(pct)
    hover = np.stack([toks, pct], axis=-1)
    return toks[..., 0], hover


def main():
    lpf, ours_path, inputs_path, vocab_path = sys.argv[1:5]
    st = read_safetensors(lpf)
    ours = json.load(open(ours_path))
    inp = json.load(open(inputs_path))
    vocab = load_vocab(vocab_path)
    tgt, anti = np.array(inp["targets"]), np.array(inp["anti_targets"])
    ids = st["input_ids"][0]
    fail = nval = nstr = nstep = nnoise = 0
    worst = 0.0
    for lens in ours:
        lp = st[f"{lens}.log_probs"][0]
        lpo = st[f"{lens}.other_log_probs"][0]
        R, T, V = lp.shape
        ref = stats_of(lp, lpo, tgt, anti)
        plab, phov = labels_of(vocab, lp, np.exp(lp), inp["topk"], False)
        d = np.exp(lpo) - np.exp(lp)
        dlab, dhov = labels_of(vocab, np.abs(d), d, inp["topk"], True)
        layer_labels = [str(i) for i in range(R - 1)] + ["output"]
        seq = [fmt(vocab[i]) for i in ids]
        for key, want in ref.items():
            o = ours[lens][key]
            have = np.array(o["stats"], dtype=np.float64)
            for (r, c), w in np.ndenumerate(want.astype(np.float64)):
                nval += 1
                e = err(have[r, c], w)
                worst = max(worst, e)
                if not e <= 1e-5:
                    fail += 1
                    print(f"{lens}/{key}[{r}][{c}]: ours {have[r, c]}, numpy {w}")
            if o["layer_labels"] != layer_labels or o["sequence_labels"] != seq:
                fail += 1
                print(f"{lens}/{key}: layer or sequence labels differ")
            if key == "log_prob_diff":
                continue
            cmp = key in ("kl", "js", "tv")
            lab, hov = (dlab, dhov) if cmp else (plab, phov)
            noise = set()
            for r in range(R):
                for c in range(T):
                    mine = o["hover_over_entries"][r][c]
                    vals = list(hov[r, c, :, 1]) + [row[1] for row in mine]
                    same = [list(x) for x in hov[r, c]] == mine
                    if cmp and not same and all(zero_change(v) for v in vals):
                        noise.add((r, c))
            nnoise += len(noise)
            for (r, c), w in np.ndenumerate(lab):
                nstr += 1
                if o["label_strings"][r][c] != w and (r, c) not in noise:
                    fail += 1
                    print(f"{lens}/{key}: label[{r}][{c}]: ours {o['label_strings'][r][c]!r}, numpy {w!r}")
            for (r, c, j, x), w in np.ndenumerate(hov):
                nstr += 1
                a = o["hover_over_entries"][r][c][j][x]
                if a == w or (r, c) in noise:
                    continue
                if x == 1 and rounding_step(a, w):
                    nstep += 1
                else:
                    fail += 1
                    print(f"{lens}/{key}: hover[{r}][{c}][{j}][{x}]: ours {a!r}, numpy {w!r}")
    print(f"numpy reference on {lpf}: {nval} values (max error {worst:.2e}), {nstr} strings, "
          f"{nstep} percentages one rounding step apart, {nnoise} noise-only comparison cells, {fail} differences")
    return 1 if fail or nstep * 500 > nstr else 0


if __name__ == "__main__":
    sys.exit(main())
