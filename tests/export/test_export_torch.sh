#!/bin/bash
# Loads params.pt files written by tlens with PyTorch itself:
# torch.load(path, weights_only=True) must accept them, keys and shapes must be the
# state dict of a 3-layer d=7 lens, and every value must equal what was written
# (fp16/bf16 files: torch's own rounding of the fp32 values).
# Skips (77) without python3+torch unless TLENS_REQUIRE_TORCH=1, which makes it fail.
set -u
# the first of $PYTHON, python3 on PATH and the system's python3 that has torch
PY=
for cand in "${PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$cand" ] && "$cand" -c "import torch, numpy" >/dev/null 2>&1; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
  if [ "${TLENS_REQUIRE_TORCH:-0}" = 1 ]; then
    echo "FAIL: TLENS_REQUIRE_TORCH=1 but no python3 can import torch" >&2
    exit 1
  fi
  echo "SKIP: no python3 with torch"
  exit 77
fi
set -e
mkdir -p "$WORK"
rm -rf "$WORK"/*
"$TESTBIN/export_torch_writer" "$WORK"
"$PY" - "$WORK" <<'PYEOF'
import collections, json, sys
import numpy as np
import torch

d = sys.argv[1]
L, D = 3, 7
ref = torch.from_numpy(np.fromfile(f"{d}/values.f32", dtype=np.float32).copy())
assert ref.numel() == L * (D * D + D)
names = [f"{i}.{k}" for i in range(L) for k in ("weight", "bias")]
def check(path, dtype):
    sd = torch.load(path, weights_only=True)
    assert isinstance(sd, collections.OrderedDict), type(sd)
    assert list(sd.keys()) == names, list(sd.keys())
    off = 0
    for n in names:
        t = sd[n]
        shape = (D, D) if n.endswith("weight") else (D,)
        assert t.dtype == dtype and tuple(t.shape) == shape and t.is_contiguous(), (path, n, t.dtype, t.shape)
        want = ref[off:off + t.numel()].reshape(shape).to(dtype)
        off += t.numel()
        # bit-exact, -0.0 included
        assert torch.equal(t.view(torch.int16 if dtype != torch.float32 else torch.int32),
                           want.view(torch.int16 if dtype != torch.float32 else torch.int32)), (path, n)
    print("ok", path)
check(f"{d}/f32.pt", torch.float32)
check(f"{d}/f32_zip64.pt", torch.float32)
check(f"{d}/f16.pt", torch.float16)
check(f"{d}/bf16.pt", torch.bfloat16)
check(f"{d}/lens/params.pt", torch.float32)
cfg = json.load(open(f"{d}/lens/config.json"))
assert cfg == {"base_model_name_or_path": "tiny/model", "d_model": D, "num_hidden_layers": L, "bias": True,
               "base_model_revision": None, "unembed_hash": "0123abcd", "lens_type": "linear_tuned_lens"}, cfg
# the reference's own config loader: dataclass fields in this order
assert list(cfg) == ["base_model_name_or_path", "d_model", "num_hidden_layers", "bias",
                     "base_model_revision", "unembed_hash", "lens_type"]
PYEOF
echo "export_torch: ok"
