"""tlens eval's layer_transfer.svg against the layer-transfer matrix of its
aggregate_metrics.json, from the two files alone.

usage: check_heatmap.py AGGREGATE.json LAYER_TRANSFER.svg

The file holds, per lens, ["layer_transfer"]["kl"]["layer_<i>"]["layer_<j>"]: the
lens of layer i on the hidden state of layer j (the reference's eval_loop.py
layout). The page must show one panel per lens that is not the logit lens (the
logit lens alone when it is the only one), in the file's order, each of L x L
cells (<rect class="cell">) whose titles read "[<lens>, ]lens layer i, hidden state
layer j: v", every (i, j) once, v the file's value to the 6 significant digits the
title is written with; the y label of a panel names its lens when there are
several; the colour bar's label names the file's unit; x and y labels present."""
import json
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
agg_path, svg_path = sys.argv[1], sys.argv[2]
agg = json.load(open(agg_path))
lenses = [k for k, v in agg.items() if isinstance(v, dict) and "layer_transfer" in v]
assert lenses, f"{agg_path}: no layer_transfer"
drawn = [k for k in lenses if k != "logit"] or lenses
unit = {"bits_per_byte": "bits/byte", "nats_per_token": "nats/token"}[agg["units"]]
root = ET.parse(svg_path).getroot()
texts = [(t.get("class"), "".join(t.itertext())) for t in root.iter(SVG + "text")]
assert any(c == "legend" and f"({unit})" in s and "KL" in s for c, s in texts), ("colour bar label", texts[:3])
panels = [g for g in root.iter(SVG + "g") if g.get("class") == "panel"]
assert len(panels) == len(drawn), (len(panels), drawn)
title = re.compile(r"^(?:(.*), )?lens layer (\d+), hidden state layer (\d+): (\S+)$")
cells = 0
for panel, lens in zip(panels, drawn):
    m = agg[lens]["layer_transfer"]["kl"]
    L = len(m)
    ylabel = [t.text for t in panel.iter(SVG + "text") if t.get("class") == "ylabel"]
    xlabel = [t.text for t in panel.iter(SVG + "text") if t.get("class") == "xlabel"]
    assert len(ylabel) == 1 and "layer" in ylabel[0] and len(xlabel) == 1 and "layer" in xlabel[0], (ylabel, xlabel)
    if len(drawn) > 1:
        assert ylabel[0].startswith(lens + ":"), (ylabel, lens)
    rects = [r for r in panel.iter(SVG + "rect") if r.get("class") == "cell"]
    assert len(rects) == L * L, (lens, len(rects), L)
    seen = set()
    for r in rects:
        t = title.match(r.find(SVG + "title").text)
        assert t, r.find(SVG + "title").text
        name, i, j, v = t.group(1), int(t.group(2)), int(t.group(3)), float(t.group(4))
        assert name == (lens if len(drawn) > 1 else None), (name, lens)
        want = m[f"layer_{i}"][f"layer_{j}"]
        assert v == float("%.6g" % want), (lens, i, j, v, want)
        seen.add((i, j))
    assert len(seen) == L * L, (lens, len(seen))
    cells += len(rects)
print(f"{svg_path}: {len(drawn)} lens(es), {cells} cells equal to {agg_path}")
