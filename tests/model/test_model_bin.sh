#!/bin/bash
# pytorch_model.bin weights written by PyTorch (Debian's python3-torch) from the
# stories260k fixture: single file, 2 shards + index, bf16 and fp16 storages give the
# hidden states of the safetensors folder (bit for bit); safetensors win when both are
# present; pickles asking for any other global, and the legacy format, are refused in
# one line; a multi-shard load shows a plain progress line in a pipe; held precision
# (model_precision) against torch-rounded weights. Skipped (77) without torch.
source "$(dirname "$0")/../sh_common.sh"
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIP: $PY with torch and numpy is not available"
  exit 77
fi
FWD=$MODEL/forward.safetensors
"$PY" "$SRC/tests/model/make_bin_folders.py" "$MODEL" "$WORK"

hidden() { "$TLENS" hidden --model "$1" --input "$FWD" --output "$2"; }
hidden "$MODEL" "$WORK/ref.safetensors" 2>"$WORK/ref.err" || fail "hidden on the safetensors folder: $(cat "$WORK/ref.err")"

# every hidden state and the logits, bit for bit (numpy reads both files)
same() {
  "$PY" - "$1" "$2" <<'EOF' || fail "$3: hidden states differ from the safetensors folder's"
import json, struct, sys
import numpy as np
def read(p):
    raw = open(p, "rb").read(); (n,) = struct.unpack("<Q", raw[:8]); h = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]], dtype=np.float32)
            for k, e in h.items() if k != "__metadata__" and e["dtype"] == "F32"}
a, b = read(sys.argv[1]), read(sys.argv[2])
assert set(a) == set(b) and len(a) > 2, (sorted(a), sorted(b))
bad = [k for k in a if a[k].tobytes() != b[k].tobytes()]
sys.exit("differ: %s" % bad if bad else 0)
EOF
  echo "ok   $3"
}
for d in bin bin2 both; do
  hidden "$WORK/$d" "$WORK/$d.safetensors" 2>"$WORK/$d.err" || fail "$d: $(cat "$WORK/$d.err")"
  same "$WORK/ref.safetensors" "$WORK/$d.safetensors" "$d"
done
# 16-bit storages: the same as the safetensors copy of torch's rounded weights
for tag in bf16 f16; do
  hidden "$WORK/st_$tag" "$WORK/st_$tag.safetensors" 2>/dev/null || fail "st_$tag"
  hidden "$WORK/bin_$tag" "$WORK/bin_$tag.safetensors" 2>"$WORK/bin_$tag.err" || fail "bin_$tag: $(cat "$WORK/bin_$tag.err")"
  same "$WORK/st_$tag.safetensors" "$WORK/bin_$tag.safetensors" "bin_$tag"
done

# two shards in a pipe: a plain progress line, the last at 100%, no bar
grep -qE "^tlens: loading weights [0-9]+/[0-9]+ \(100%\)" "$WORK/bin2.err" || fail "no plain loading line: $(cat "$WORK/bin2.err")"
if grep -q $'\r' "$WORK/bin2.err"; then fail "a bar went to a pipe"; fi
echo "ok   progress: $(tail -n 1 "$WORK/bin2.err")"

# refused pickles: exit 1, one line naming the file and the global, nothing run
refused() {
  local d=$1 pat=$2
  "$TLENS" hidden --model "$WORK/$d" --input "$FWD" --output "$WORK/$d.safetensors" >/dev/null 2>"$WORK/$d.err"
  local rc=$?
  [ "$rc" -eq 1 ] || fail "$d: exit $rc, expected 1"
  [ "$(wc -l <"$WORK/$d.err")" -eq 1 ] || fail "$d: not one line: $(cat "$WORK/$d.err")"
  grep -qE -- "$pat" "$WORK/$d.err" || fail "$d: /$pat/ not in: $(cat "$WORK/$d.err")"
  [ ! -e "$WORK/$d.safetensors" ] || fail "$d: an output was written"
  echo "ok   $d: $(cat "$WORK/$d.err")"
}
set +e
refused evil_global "$WORK/evil_global/pytorch_model.bin: data.pkl offset [0-9]+: global 'os.system' is not allowed"
refused evil_stack "$WORK/evil_stack/pytorch_model.bin: data.pkl offset [0-9]+: global 'builtins.eval' is not allowed"
refused evil_torch "$WORK/evil_torch/pytorch_model.bin: data.pkl offset [0-9]+: global 'torch.nn.Module' is not allowed"
refused legacy "$WORK/legacy/pytorch_model.bin: the legacy torch.save format \(torch < 1.6, not a zip archive\) is not supported"
set -e
[ ! -e "$WORK/pwned" ] || fail "a refused pickle ran code"

# held precision: the fixture (tied) and an untied synthetic llama (its input
# embedding is read from the file unless it must be rounded)
"$TESTBIN/model_precision" "$MODEL" "$WORK/st_bf16" "$WORK/st_f16" "$FWD" "$WORK/bin_bf16"
"$TLENS" synth --arch llama --layers 2 --hidden 64 --heads 4 --kv_heads 2 --vocab 512 --seed 3 --output "$WORK/untied" >/dev/null
"$PY" "$SRC/tests/model/make_bin_folders.py" "$WORK/untied" "$WORK/untied_r" rounded
"$TESTBIN/model_precision" "$WORK/untied" "$WORK/untied_r/st_bf16" "$WORK/untied_r/st_f16" "$FWD"
# the same through the command line: the fp32 fixture held in bf16/fp16 computes what
# the folder of torch-rounded weights computes; info says what it holds; bad values refused
for tag in bf16 f16; do
  p=$([ $tag = bf16 ] && echo bfloat16 || echo float16)
  "$TLENS" hidden --model "$MODEL" --precision $p --input "$FWD" --output "$WORK/held_$tag.safetensors" 2>/dev/null \
    || fail "hidden --precision $p"
  same "$WORK/st_$tag.safetensors" "$WORK/held_$tag.safetensors" "hidden --precision $p"
  "$TLENS" info --model "$MODEL" --precision $p 2>/dev/null | grep -q "^held_as: *${tag^^}" || fail "info --precision $p"
done
"$TLENS" info --model "$MODEL" 2>/dev/null | grep -q "^held_as: *F32" || fail "info holds an fp32 checkpoint in fp32 by default"
rc=0; "$TLENS" hidden --model "$MODEL" --precision int4 --input "$FWD" --output "$WORK/bad.safetensors" 2>"$WORK/bad.err" || rc=$?
[ $rc = 2 ] && grep -q -- "--precision" "$WORK/bad.err" && [ ! -e "$WORK/bad.safetensors" ] \
  || fail "--precision int4: exit $rc, $(cat "$WORK/bad.err")"
echo "all ok"
