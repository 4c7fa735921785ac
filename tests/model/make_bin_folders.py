"""Model folders with pytorch_model.bin weights, written by PyTorch itself, from
a safetensors model folder (read here with numpy, independently of tlens).

usage: make_bin_folders.py SRC_MODEL_DIR OUT_DIR [rounded]
(rounded: only st_bf16/ and st_f16/)

OUT_DIR/
  bin/         pytorch_model.bin: torch.save of the state dict (fp32)
  bin2/        the same in 2 shards + pytorch_model.bin.index.json, as save_pretrained shards
  bin_bf16/    pytorch_model.bin with bf16 storages
  st_bf16/     model.safetensors (F32) holding the bf16-rounded weights (torch's rounding)
  bin_f16/     pytorch_model.bin with fp16 storages
  st_f16/      model.safetensors (F32) holding the fp16-rounded weights
  both/        model.safetensors (the real weights) and a pytorch_model.bin of zeros:
               safetensors must win
  legacy/      pytorch_model.bin in torch's legacy (non-zip) format
  evil_global/ pytorch_model.bin whose data.pkl calls os.system (GLOBAL)
  evil_stack/  pytorch_model.bin whose data.pkl calls builtins.eval (STACK_GLOBAL)
  evil_torch/   hand-built pickle asking for torch.nn.Module (a class, not a storage)
"""
import collections
import json
import os
import shutil
import struct
import sys
import zipfile

import numpy as np
import torch

src, out = sys.argv[1], sys.argv[2]
only_rounded = sys.argv[3:] == ["rounded"]

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + hlen])
    base = 8 + hlen
    tensors = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, en = e["data_offsets"]
        if e["dtype"] == "BF16":
            u16 = np.frombuffer(raw[base + b : base + en], dtype=np.uint16).astype(np.uint32) << 16
            arr = u16.view(np.float32).reshape(e["shape"])
        else:
            arr = np.frombuffer(raw[base + b : base + en], dtype=ST_DTYPES[e["dtype"]]).reshape(e["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().astype(np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def folder(name):
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(src, "config.json"), d)
    return d


sd = read_safetensors(os.path.join(src, "model.safetensors"))

for tag, dt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
    low = collections.OrderedDict((n, t.to(dt)) for n, t in sd.items())
    write_safetensors(os.path.join(folder("st_" + tag), "model.safetensors"),
                      collections.OrderedDict((n, t.to(torch.float32)) for n, t in low.items()))
    if not only_rounded:
        torch.save(low, os.path.join(folder("bin_" + tag), "pytorch_model.bin"))
if only_rounded:
    sys.exit(0)

torch.save(sd, os.path.join(folder("bin"), "pytorch_model.bin"))

# two shards as save_pretrained writes them: consecutive tensors, a weight_map index
d = folder("bin2")
names = list(sd)
half = len(names) // 2
weight_map, total = {}, 0
for k, part in enumerate([names[:half], names[half:]]):
    fname = "pytorch_model-%05d-of-00002.bin" % (k + 1)
    torch.save(collections.OrderedDict((n, sd[n]) for n in part), os.path.join(d, fname))
    for n in part:
        weight_map[n] = fname
        total += sd[n].numel() * 4
with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

d = folder("both")
shutil.copy(os.path.join(src, "model.safetensors"), d)
torch.save(collections.OrderedDict((n, torch.zeros_like(t)) for n, t in sd.items()), os.path.join(d, "pytorch_model.bin"))

torch.save(sd, os.path.join(folder("legacy"), "pytorch_model.bin"), _use_new_zipfile_serialization=False)


def evil(name, pickle_bytes):
    d = folder(name)
    with zipfile.ZipFile(os.path.join(d, "pytorch_model.bin"), "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")


def binunicode(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


pwned = os.path.join(out, "pwned")
# os.system("touch <out>/pwned"): what pickle.load would run
evil("evil_global", b"\x80\x02cos\nsystem\nq\x00" + binunicode("touch " + pwned) + b"\x85R.")
# the same through STACK_GLOBAL (protocol 4), builtins.eval
evil("evil_stack", b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93" + binunicode("open('%s', 'w')" % pwned) + b"\x85R.")
# a torch global that is neither a rebuild function nor a storage class
evil("evil_torch", b"\x80\x02ctorch.nn\nModule\n)R.")
