#!/bin/bash
# tlens trajectory --residual on the gpt2 golden (tuned and logit lens) for every
# component, clean and with attn:1,mlp:0 zeroed (and --compare clean), checked by
# check_residual.py against a numpy GPT-2 forward and the reference's formulas; then
# the one-line errors: an unknown component, resid_mid of a parallel-residual model.
# With the analysis_residual program as $1: its stream identities on a post-norm OPT
# (the opt golden's weights with do_layer_norm_before false and no final norm), whose
# resid_mid is refused (the command itself refuses a model without a final norm).
set -uo pipefail
source "$SRC/tests/analysis/common.sh"
find_python numpy
[ -n "$PY" ] || { echo "no python3 with numpy"; exit 1; }
G=$FIXTURES/golden/gpt2
# the first sequence of the golden forward, as the JSON list tlens reads
(cd "$SRC/tests/analysis" && "$PY" -c "
import json, sys
from check_trajectory import read_safetensors
json.dump(read_safetensors(sys.argv[1])['input_ids'][0].tolist(), open(sys.argv[2], 'w'))
" "$G/forward.safetensors" "$WORK/ids.json") || exit 1

COMMON=(--model "$G/model" -l "$G/lens" --logit --input_ids "$WORK/ids.json" --eos_id 0)
STATS=entropy,forward_kl,cross_entropy,max_probability,rank
run() {
  local name=$1; shift
  "$TLENS" trajectory "${COMMON[@]}" "$@" --output "$WORK/$name" --save_log_probs "$WORK/$name.safetensors" \
    2>"$WORK/$name.log" || { echo "FAIL $name:"; cat "$WORK/$name.log"; fails=$((fails + 1)); }
}
for comp in resid_pre resid_mid resid_post attn_out mlp_out; do
  run "$comp" --residual "$comp" --stats "$STATS"
  run "abl_$comp" --residual "$comp" --stats "$STATS" --ablate attn:1,mlp:0
done
run cmp_resid_post --residual resid_post --stats kl,js,tv --ablate attn:1,mlp:0 --compare clean
grep -q "(attn_out)" "$WORK/attn_out/tuned_entropy.svg" || { echo "FAIL: the SVG title does not name attn_out"; fails=$((fails + 1)); }
[ $fails -eq 0 ] && { (cd "$SRC/tests/analysis" && "$PY" check_residual.py "$G" "$WORK") || fails=$((fails + 1)); }

if [ -n "${1:-}" ]; then
  "$PY" - "$FIXTURES/golden/opt/model" "$WORK/opt_post_norm" <<'PYEOF' || exit 1
import json, os, struct, sys
src, dst = sys.argv[1:3]
os.makedirs(dst)
cfg = json.load(open(f"{src}/config.json"))
cfg["do_layer_norm_before"] = False
json.dump(cfg, open(f"{dst}/config.json", "w"))
raw = open(f"{src}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head, data = json.loads(raw[8:8 + n]), raw[8 + n:]
out, blobs, at = {}, [], 0
for k, v in head.items():
    if k == "__metadata__" or k.startswith("model.decoder.final_layer_norm"):
        continue
    a, b = v["data_offsets"]
    out[k] = dict(v, data_offsets=[at, at + b - a])
    blobs.append(data[a:b]); at += b - a
h = json.dumps(out).encode()
h += b" " * (-len(h) % 8)
open(f"{dst}/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PYEOF
  "$1" "$WORK/opt_post_norm" || fails=$((fails + 1))
fi
expect_error unknown "--residual 'resid_out': expected resid_pre, resid_mid, resid_post, attn_out or mlp_out" \
  "${COMMON[@]}" --residual resid_out
expect_error parallel "resid_mid: this model's blocks are parallel" --model "$FIXTURES/golden/gpt_neox/model" \
  --input_ids "$WORK/ids.json" --eos_id 0 --residual resid_mid
[ $fails -eq 0 ] && echo "trajectory --residual: ok" || { echo "$fails failures"; exit 1; }
