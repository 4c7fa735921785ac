"""Checks the module's argpartition / argsort / top-k against numpy on arrays full of
ties (the cases where the choice of indices depends on the algorithm itself)."""
import subprocess
import sys

import numpy as np

tool = sys.argv[1]
rng = np.random.default_rng(0)
cases = []
for n in [1, 2, 3, 5, 8, 16, 17, 18, 40, 100, 512, 1000, 5003]:
    for kind in range(5):
        if kind == 0:
            v = np.zeros(n, np.float32)
        elif kind == 1:
            v = rng.integers(0, 3, n).astype(np.float32)
        elif kind == 2:
            v = rng.standard_normal(n).astype(np.float32)
        elif kind == 3:
            v = np.round(rng.standard_normal(n), 1).astype(np.float32)
        else:
            v = rng.integers(0, 50, n).astype(np.float32)
            v[rng.integers(0, n, max(1, n // 20))] = np.nan
        for k in sorted({1, 2, 3, 4, 10, 16, 17, 20, n}):
            if k <= n and k <= 100:
                cases.append((k, v))
text = "".join(f"{k} {len(v)} " + " ".join(repr(float(x)) for x in v) + "\n" for k, v in cases)
out = subprocess.run([tool], input=text, capture_output=True, text=True, check=True).stdout.splitlines()
assert len(out) == 3 * len(cases), (len(out), len(cases))
bad = 0
for c, (k, v) in enumerate(cases):
    part = np.argpartition(v, -k)
    srt = np.argsort(v)
    ti = part[-k:]
    top = ti[np.argsort(-v[ti])]
    got = [np.array(list(map(int, out[3 * c + j].split())), dtype=np.int64) for j in range(3)]
    for name, want, have in (("argpartition", part, got[0]), ("argsort", srt, got[1]), ("topk", top, got[2])):
        if not np.array_equal(want, have):
            bad += 1
            if bad < 10:
                print(f"case n={len(v)} k={k}: {name} differs: numpy {want[:20]} ours {have[:20]}")
print(f"npsort: {len(cases)} cases x 3 orderings, {bad} differ from numpy {np.__version__}")
sys.exit(1 if bad else 0)
