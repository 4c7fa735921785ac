"""tlens eval's metrics.svg against the run's own files.

usage: check_eval_chart.py EVAL_DIR

One panel per metric (KL, cross-entropy, entropy), in that order, each with the
y label naming the unit of aggregate_metrics.json, one curve per lens of the
file, the logit lens among them, and at every layer a point whose value is the
aggregate's and whose error bar is 2 standard errors of the batches' mean,
computed here from batches.jsonl (sample standard deviation / sqrt(batches))."""
import json
import math
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
d = sys.argv[1]
agg = json.load(open(f"{d}/aggregate_metrics.json"))
batches = json.load(open(f"{d}/batches.jsonl"))
lenses = [k for k, v in agg.items() if isinstance(v, dict) and "kl" in v]
assert "logit" in lenses, lenses
L = len(agg["logit"]["kl"])
names = {"logit": "logit lens", "tuned": "tuned lens"}
units = agg.get("units")
unit = {"bits_per_byte": "bits/byte", "nats_per_token": "nats/token"}.get(units)

root = ET.parse(f"{d}/metrics.svg").getroot()
panels = [g for g in root.iter(SVG + "g") if g.get("class") == "panel"]
assert len(panels) == 3, len(panels)
point = re.compile(r"^(.*), layer (\d+): ([-0-9.e+]+)(?: \u00b1 ([-0-9.e+]+))?$")
n = len(batches)
for panel, metric, word in zip(panels, ("kl", "ce", "entropy"), ("KL", "cross-entropy", "entropy")):
    ylabel = [t.text for t in panel.iter(SVG + "text") if t.get("class") == "ylabel"]
    assert len(ylabel) == 1 and word in ylabel[0], ylabel
    if unit:
        assert f"({unit})" in ylabel[0], (ylabel, unit)
    seen = {}
    for c in panel.iter(SVG + "circle"):
        m = point.match(c.find(SVG + "title").text)
        assert m, c.find(SVG + "title").text
        seen[(m.group(1), int(m.group(2)))] = (float(m.group(3)), m.group(4) and float(m.group(4)))
    assert len(seen) == len(lenses) * L, (metric, len(seen))
    for lens in lenses:
        for i in range(L):
            key = f"layer_{i}"
            v, e = seen[(names.get(lens, lens), i)]
            want = agg[lens][metric][key]
            assert math.isclose(v, want, rel_tol=6e-4, abs_tol=1e-12), (metric, lens, i, v, want)
            vals = [b[lens][metric][key] for b in batches]
            mean = sum(vals) / n
            se = math.sqrt(sum((x - mean) ** 2 for x in vals) / (n - 1) / n)
            if 2 * se > 1e-9 * max(1.0, abs(mean)):
                assert e is not None and math.isclose(e, 2 * se, rel_tol=0.01), (metric, lens, i, e, 2 * se)
print(f"{d}/metrics.svg: {len(lenses)} lenses x {L} layers x 3 metrics match the aggregate and 2 SE of {n} batches")
