#!/bin/bash
# trajectory.html in headless Chromium: the page's script runs from a file:// URL,
# every heatmap has layers x tokens cells carrying trajectory.json's labels (and
# its layer and sequence labels), the page fetched nothing (Resource Timing is
# empty, the Content-Security-Policy forbids requests and none was refused) and
# logged nothing to the console. Skipped (77) without chromium.
set -euo pipefail
source "$SRC/tests/analysis/common.sh"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "no chromium: skipped"; exit 77; }
S=$FIXTURES/models/stories260k
G=$FIXTURES/golden/trajectory/stories260k
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); json.dump(d["input_ids"], open(sys.argv[2],"w")); json.dump(d["other_input_ids"], open(sys.argv[3],"w"))' \
  "$G/inputs.json" "$WORK/ids.json" "$WORK/other.json"
# a label with "</" in it must not end the page's data early
"$TLENS" trajectory --model "$S" -l "$G/lens" --logit --input_ids "$WORK/ids.json" --other_input_ids "$WORK/other.json" \
  --title 'stories260k </script> test' --output "$WORK/out" 2> "$WORK/run.log"
HTML=$WORK/out/trajectory.html
if grep -Eiq 'https?:|<link|<img|<iframe| src=|url\(' "$HTML"; then echo "FAIL: the page refers to something outside it"; exit 1; fi
timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/profile" --enable-logging=stderr --v=0 \
  --no-first-run --disable-extensions --dump-dom "file://$HTML" > "$WORK/dom.html" 2> "$WORK/chromium.log"
python3 - "$WORK/out/trajectory.json" "$WORK/dom.html" "$WORK/chromium.log" <<'PYEOF'
import json, sys
from html.parser import HTMLParser

data = json.load(open(sys.argv[1]))
log = open(sys.argv[3], errors="replace").read().splitlines()


class Dom(HTMLParser):
    """collects the body's attributes and, per heatmap, its cells, y and x labels"""

    def __init__(self):
        super().__init__()
        self.body, self.maps, self.stack, self.cur = {}, [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "body":
            self.body = a
        if tag == "div" and "heatmap" in cls.split():
            self.cur = {"attrs": a, "cells": [], "y": [], "x": []}
            self.maps.append(self.cur)
        kind = None
        if tag == "div" and self.cur is not None:
            kind = {"cell": "cells", "ylabel": "y", "xlabel": "x"}.get(cls)
        self.stack.append(kind)
        if kind:
            self.cur[kind].append("")

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, text):
        if self.stack and self.stack[-1]:
            self.cur[self.stack[-1]][-1] += text


d = Dom()
d.feed(open(sys.argv[2]).read())
fail = []
if d.body.get("data-ready") != "1":
    fail.append("the script did not finish (no data-ready)")
if "data-errors" in d.body:
    fail.append("script errors: " + d.body["data-errors"])
if d.body.get("data-resources") != "0":
    fail.append(f"the page fetched {d.body.get('data-resources')} resources")
console = [l for l in log if ":CONSOLE" in l or "Content Security Policy" in l]
if console:
    fail.append("console: " + " / ".join(console[:3]))
want = [(lens, key) for lens in data for key in data[lens]]
have = [(m["attrs"].get("data-lens"), m["attrs"].get("data-key")) for m in d.maps]
if have != want:
    fail.append(f"heatmaps {have}, expected {want}")
ncells = 0
for m in d.maps:
    v = data[m["attrs"]["data-lens"]][m["attrs"]["data-key"]]
    rows, cols = len(v["layer_labels"]), len(v["stats"][0])
    labels = [v["label_strings"][r][c] if v["label_strings"] else "" for r in reversed(range(rows)) for c in range(cols)]
    ncells += len(m["cells"])
    if len(m["cells"]) != rows * cols:
        fail.append(f"{have}: {len(m['cells'])} cells, expected {rows} x {cols}")
    elif m["cells"] != labels:
        fail.append(f"{m['attrs']}: cell labels differ from trajectory.json")
    if m["y"][:rows] != list(reversed(v["layer_labels"])) or m["x"] != (v["sequence_labels"] or [""] * cols):
        fail.append(f"{m['attrs']}: layer or sequence labels differ")
for f in fail:
    print("FAIL:", f)
print(f"trajectory.html: {len(d.maps)} heatmaps, {ncells} cells checked in the rendered DOM")
sys.exit(1 if fail else 0)
PYEOF
