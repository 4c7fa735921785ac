"""Renders charts in headless Chromium, as a reader's browser would show them.

usage: check_render.py CHROMIUM WORKDIR FILE.svg...

For each page:
  - the browser decodes it as an image (an <img> whose onload fires, not onerror);
  - a screenshot at its own size (800 px wide) is a PNG of that size that is not
    blank: some pixels far from white, several colours (decoded here with zlib);
  - the texts as the browser lays them out (getBBox of every <text>, with the
    fonts this machine has) overlap nowhere, stay on the page, and are no wider
    than the layout's estimate (0.6 of the font size per character), which is what
    kept them apart.
Exits 1 with one line per problem."""
import json
import os
import re
import struct
import subprocess
import sys
import zlib

chromium, work, files = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(work, exist_ok=True)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
         "--no-first-run", f"--user-data-dir={work}/profile"]
problems = []


def run(args, timeout=120):
    return subprocess.run([chromium] + FLAGS + args, capture_output=True, text=True, timeout=timeout)


def png_pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, w = 8, b"", 0
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


pages = []
for k, svg in enumerate(files):
    text = open(svg, encoding="utf-8").read()
    w = int(float(re.search(r'<svg[^>]* width="([0-9.]+)"', text).group(1)))
    h = int(float(re.search(r'<svg[^>]* height="([0-9.]+)"', text).group(1)))
    pages.append((svg, w, h, re.sub(r"^<\?xml[^>]*\?>\s*", "", text)))

    # the screenshot
    png = os.path.join(work, f"page{k}.png")
    if os.path.exists(png):
        os.remove(png)
    r = run([f"--window-size={w},{h}", f"--screenshot={png}", "file://" + os.path.abspath(svg)])
    if not os.path.exists(png):
        problems.append(f"{svg}: no screenshot (status {r.returncode}): {r.stderr[-300:]}")
        continue
    pw, ph, bpp, rows = png_pixels(png)
    if (pw, ph) != (w, h):
        problems.append(f"{svg}: screenshot {pw} x {ph}, page {w} x {h}")
    dark, colours = 0, set()
    for row in rows:
        for x in range(0, len(row), bpp):
            px = row[x:x + 3]
            colours.add(px)
            if min(px) < 160:
                dark += 1
    if dark < 0.003 * pw * ph or len(colours) < 8:
        problems.append(f"{svg}: the screenshot looks blank ({dark} dark pixels, {len(colours)} colours)")

# every page in one document: decoded as images, and its texts laid out inline
html = ["<!DOCTYPE html><html><body style='margin:0'>"]
for k, (svg, w, h, body) in enumerate(pages):
    html.append(f"<img id='img{k}' src='file://{os.path.abspath(svg)}' "
                f"onload=\"this.dataset.ok='1'\" onerror=\"this.dataset.ok='0'\">")
    html.append(f"<div id='page{k}'>{body}</div>")
html.append("""<pre id='out'></pre><script>
window.addEventListener('load', function () {
  var res = [];
  document.querySelectorAll("div[id^='page']").forEach(function (d) {
    var k = +d.id.slice(4), img = document.getElementById('img' + k), boxes = [];
    d.querySelectorAll('text').forEach(function (t) {
      var b = t.getBBox();
      boxes.push([t.textContent, +t.getAttribute('font-size'), b.x, b.y, b.width, b.height]);
    });
    res.push({k: k, image: img.dataset.ok || 'pending', w: img.naturalWidth, boxes: boxes});
  });
  document.getElementById('out').textContent = JSON.stringify(res);
});
</script></body></html>""")
page = os.path.join(work, "all.html")
open(page, "w", encoding="utf-8").write("\n".join(html))
r = run(["--virtual-time-budget=10000", "--allow-file-access-from-files", "--dump-dom", "file://" + page], timeout=300)
m = re.search(r"<pre id=\"out\">(.*?)</pre>", r.stdout, re.S)
if not m or not m.group(1).strip():
    problems.append(f"the layout page gave no result (status {r.returncode}): {r.stderr[-300:]}")
    res = []
else:
    res = json.loads(m.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"'))
for page_res in res:
    svg, w, h, _ = pages[page_res["k"]]
    if page_res["image"] != "1" or page_res["w"] != w:
        problems.append(f"{svg}: the browser did not decode it as an image ({page_res['image']}, width {page_res['w']})")
    boxes = page_res["boxes"]
    for s, size, x, y, bw, bh in boxes:
        if bw > 0.6 * size * len(s) + 0.5:
            problems.append(f"{svg}: '{s}' is {bw:.1f} px wide, wider than its estimate {0.6 * size * len(s):.1f}")
        if x < -0.5 or y < -0.5 or x + bw > w + 0.5 or y + bh > h + 0.5:
            problems.append(f"{svg}: '{s}' reaches off the page")
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            # intersecting by more than half a pixel each way
            if a[2] + 0.5 < b[2] + b[4] and b[2] + 0.5 < a[2] + a[4] and a[3] + 0.5 < b[3] + b[5] and b[3] + 0.5 < a[3] + a[5]:
                problems.append(f"{svg}: as rendered, '{a[0]}' overlaps '{b[0]}'")
    if not problems:
        print(f"{svg}: rendered {w} x {h}, {len(boxes)} texts laid out apart")
for p in problems:
    print("FAIL:", p)
sys.exit(1 if problems else 0)
