"""The checks a reader would make of a chart, from the SVG file alone.

usage: check_svg.py [--has TEXT]... FILE.svg...

Each file must parse as XML (xml.etree) with an <svg> root in the SVG namespace,
and, shown 800 px wide:
  - every text at least 10 px high, non-empty, inside the page;
  - no two texts overlapping, their boxes estimated from font size and length
    (0.6 of the size per character, 0.8 of it above the baseline and 0.25 below:
    wider than Helvetica, Arial or Liberation Sans set them);
  - axes labelled: at least one x label and one y label (class xlabel / ylabel),
    every y label of a loss, divergence or entropy naming its unit
    "(bits/byte)" or "(nats/token)";
  - a legend (texts of class legend);
  - each --has TEXT among its texts (a substring of one).
Exits 1 with one line per problem, else prints one line per file."""
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
EM, ASCENT, DESCENT = 0.6, 0.8, 0.25
MIN_PX = 10.0


def text_boxes(root):
    out = []
    for t in root.iter(SVG + "text"):
        s = "".join(t.itertext())
        size = float(t.get("font-size", "16"))
        x, y = float(t.get("x", "0")), float(t.get("y", "0"))
        w = EM * size * len(s)
        anchor = t.get("text-anchor", "start")
        x0 = x if anchor == "start" else x - w / 2 if anchor == "middle" else x - w
        out.append({"text": s, "size": size, "cls": t.get("class", ""),
                    "box": (x0, y - ASCENT * size, x0 + w, y + DESCENT * size)})
    return out


def meet(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check(path, has):
    problems = []
    root = ET.parse(path).getroot()
    if root.tag != SVG + "svg":
        return [f"{path}: root is {root.tag}, not an SVG <svg>"]
    width, height = float(root.get("width")), float(root.get("height"))
    vb = [float(v) for v in root.get("viewBox", f"0 0 {width} {height}").split()]
    if vb != [0, 0, width, height]:
        problems.append(f"{path}: viewBox {vb} is not the page {width} x {height}")
    scale = 800.0 / width
    texts = text_boxes(root)
    for t in texts:
        if not t["text"].strip():
            problems.append(f"{path}: an empty text")
        if t["size"] * scale < MIN_PX:
            problems.append(f"{path}: '{t['text']}' is {t['size'] * scale:.1f} px high at 800 px wide")
        x0, y0, x1, y1 = t["box"]
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            problems.append(f"{path}: '{t['text']}' reaches off the page ({x0:.0f},{y0:.0f})-({x1:.0f},{y1:.0f})")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if meet(texts[i]["box"], texts[j]["box"]):
                problems.append(f"{path}: '{texts[i]['text']}' overlaps '{texts[j]['text']}'")
    cls = lambda c: [t["text"] for t in texts if c in t["cls"].split()]
    if not cls("xlabel"):
        problems.append(f"{path}: no x axis label")
    if not cls("ylabel"):
        problems.append(f"{path}: no y axis label")
    for y in cls("ylabel"):
        if re.search(r"KL|entropy|loss", y, re.I) and not re.search(r"\((bits/byte|nats/token)\)", y):
            problems.append(f"{path}: y label '{y}' names no unit")
    if not cls("legend"):
        problems.append(f"{path}: no legend")
    for h in has:
        if not any(h in t["text"] for t in texts):
            problems.append(f"{path}: no text holds '{h}'")
    if not problems:
        print(f"{path}: {len(texts)} texts, {len(cls('ylabel'))} y axes, none overlapping, {width:.0f} x {height:.0f}")
    return problems


def main(argv):
    has, files = [], []
    i = 0
    while i < len(argv):
        if argv[i] == "--has":
            has.append(argv[i + 1])
            i += 2
        else:
            files.append(argv[i])
            i += 1
    if not files:
        print(__doc__)
        return 2
    problems = []
    for f in files:
        problems += check(f, has)
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
