"""The folders tests/bench/bench_load.sh loads, from one safetensors model folder
(a `tlens synth` model, F32 or BF16), read with numpy and written by hand and by PyTorch:

usage: bench_load_make.py SRC_MODEL_DIR OUT_DIR
  OUT_DIR/st4/  the weights in 4 safetensors shards + model.safetensors.index.json
  OUT_DIR/bin/  the same weights as one pytorch_model.bin (torch.save)
"""
import collections
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

src, out = sys.argv[1], sys.argv[2]
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
(hlen,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8 : 8 + hlen])
entries = [(n, e) for n, e in header.items() if n != "__metadata__"]
dtypes = {e["dtype"] for _, e in entries}
assert len(dtypes) == 1 and dtypes <= {"F32", "BF16"}, "bench models are all F32 or all BF16"
dtype = dtypes.pop()


def data(e):
    b, en = e["data_offsets"]
    return raw[8 + hlen + b : 8 + hlen + en]


def folder(name):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(src, "config.json"), d)
    return d


# 4 shards of consecutive tensors, about equal in bytes
d = folder("st4")
total = sum(len(data(e)) for _, e in entries)
shards, cur, size = [], [], 0
for n, e in entries:
    cur.append((n, e))
    size += len(data(e))
    if size >= total * (len(shards) + 1) / 4 and len(shards) < 3:
        shards.append(cur)
        cur = []
if cur:
    shards.append(cur)
weight_map = {}
for k, part in enumerate(shards):
    fname = "model-%05d-of-%05d.safetensors" % (k + 1, len(shards))
    h, off, blobs = {}, 0, []
    for n, e in part:
        b = data(e)
        h[n] = {"dtype": dtype, "shape": e["shape"], "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
        weight_map[n] = fname
    hj = json.dumps(h).encode()
    hj += b" " * (-len(hj) % 8)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj)
        for b in blobs:
            f.write(b)
with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)



def tensor(e):
    if dtype == "F32":
        return torch.from_numpy(np.frombuffer(data(e), dtype=np.float32).reshape(e["shape"]).copy())
    bits = np.frombuffer(data(e), dtype=np.int16).reshape(e["shape"]).copy()
    return torch.from_numpy(bits).view(torch.bfloat16)


sd = collections.OrderedDict((n, tensor(e)) for n, e in entries)
torch.save(sd, os.path.join(folder("bin"), "pytorch_model.bin"))
