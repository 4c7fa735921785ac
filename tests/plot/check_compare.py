"""tlens compare's table against the runs' own files, recomputed here.

usage: check_compare.py OUT_DIR STDOUT_FILE RUN...   (RUN: FOLDER or LABEL=FOLDER, as given)

From each run's aggregate_metrics.json (Python's json): the lenses (objects with
kl, ce and entropy per layer_<i>, in file order), the common unit, the columns
(layers when every run has the same depth, else K = the fewest layers at depths
k/K, a run of L layers showing its layer floor(k*L/K + 1/2)) and each row's mean
over all layers. comparison.md (the same text as printed) must hold these values
as %.4g in its three tables and the model's own CE and entropy; comparison.csv
the same at full precision; comparison.svg must exist."""
import csv
import io
import json
import math
import os
import re
import sys

out, stdout_file, args = sys.argv[1], sys.argv[2], sys.argv[3:]
METRICS = [("kl", "KL(model || lens)"), ("ce", "cross-entropy"), ("entropy", "entropy of the lens")]
UNITS = {"bits_per_byte": "bits/byte", "nats_per_token": "nats/token", None: "units not stated"}

runs = []
for a in args:
    if not os.path.isdir(a) and "=" in a and a.index("=") > 0:
        label, d = a.split("=", 1)
    else:
        d = a.rstrip("/") or a
        label = os.path.basename(d)
    agg = json.load(open(os.path.join(d, "aggregate_metrics.json")))
    lenses = [k for k, v in agg.items() if isinstance(v, dict) and all(isinstance(v.get(m), dict) for m, _ in METRICS)]
    L = len(agg[lenses[0]]["kl"])
    runs.append({"label": label, "agg": agg, "lenses": lenses, "L": L, "units": agg.get("units")})

stated = {r["units"] for r in runs if r["units"]}
assert len(stated) <= 1, stated
unit = UNITS[stated.pop() if stated else None]
K = min(r["L"] for r in runs)
same = all(r["L"] == K for r in runs)


def layer(L, k):
    return min(L - 1, math.floor(k * L / K + 0.5))


def value(r, lens, m, k):
    return r["agg"][lens][m][f"layer_{layer(r['L'], k)}"]


def mean(r, lens, m):
    return sum(r["agg"][lens][m][f"layer_{i}"] for i in range(r["L"])) / r["L"]


md = open(os.path.join(out, "comparison.md")).read()
assert open(stdout_file).read().startswith(md), "the printed table differs from comparison.md"
assert md.startswith(f"# Lens comparison ({unit})\n"), md[:80]
sections = {}
for part in md.split("\n## ")[1:]:
    title, _, body = part.partition("\n")
    # cells split at the bars Markdown does not escape
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])] for line in body.strip().splitlines()]
    sections[title] = rows
columns = [(r, lens) for r in runs for lens in r["lenses"]]
for m, title in METRICS:
    rows = sections[f"{title} ({unit})"]
    head = rows[0]
    assert head[0] == ("layer" if same else "depth"), head
    assert head[1:] == [f"{r['label'].replace('|', chr(92) + '|')}: {lens}" for r, lens in columns], head
    body = rows[2:]
    assert len(body) == K + 1, (title, len(body))
    for k in range(K):
        want_key = str(k) if same else f"{k / K:.3f}"
        assert body[k][0] == want_key, (body[k][0], want_key)
        for c, (r, lens) in enumerate(columns):
            assert body[k][1 + c] == f"{value(r, lens, m, k):.4g}", (title, k, r["label"], lens, body[k][1 + c])
    assert body[K][0] == "mean"
    for c, (r, lens) in enumerate(columns):
        assert body[K][1 + c] == f"{mean(r, lens, m):.4g}", (title, "mean", r["label"], lens, body[K][1 + c])
own = sections[f"The model's own ({unit})"][2:]
for row, r in zip(own, runs):
    for cell, m in zip(row[1:], ("ce", "entropy")):
        v = r["agg"].get("baseline", {}).get(m, {}).get("final")
        assert cell == (f"{v:.4g}" if v is not None else "-"), (r["label"], m, cell)

rows = list(csv.reader(io.StringIO(open(os.path.join(out, "comparison.csv")).read())))
head = rows[0]
cols = [f"layer_{k}" for k in range(K)] if same else [f"depth_{k / K:.4f}" for k in range(K)]
assert head == ["run", "lens", "metric", "units", "layers"] + cols + ["mean"], head
units = next(iter(r["units"] for r in runs if r["units"]), "")
got = iter(rows[1:])
n = 0
for r in runs:
    for lens in r["lenses"]:
        for m, _ in METRICS:
            row = next(got)
            n += 1
            assert row[:5] == [r["label"], lens, m, units, str(r["L"])], row[:5]
            assert [float(x) for x in row[5:5 + K]] == [value(r, lens, m, k) for k in range(K)], (r["label"], lens, m)
            assert math.isclose(float(row[5 + K]), mean(r, lens, m), rel_tol=1e-12), (r["label"], lens, m)
    for m in ("ce", "entropy"):
        row = next(got)
        n += 1
        v = r["agg"].get("baseline", {}).get(m, {}).get("final")
        assert row[:5] == [r["label"], "baseline", m, units, str(r["L"])] and row[5:5 + K] == [""] * K, row
        assert (row[5 + K] == "" and v is None) or float(row[5 + K]) == v, (row, v)
assert next(got, None) is None
assert os.path.getsize(os.path.join(out, "comparison.svg")) > 0
print(f"{out}: {len(runs)} runs, {len(columns)} lens columns, {K} {'layers' if same else 'depths'}, "
      f"{n} CSV rows: every number is the runs' own")
