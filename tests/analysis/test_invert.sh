#!/bin/bash
# tlens invert against tuned-lens 0.2.0's Unembed.invert (golden/trajectory/<model>/
# invert.safetensors, L-BFGS, max_iter 200, tol 1e-4): our KL is within 1e-3 of the
# reference's; the reported KL is the KL of the written preimage, recomputed with
# numpy from the model's W_U; the prior term and SGD behave as documented; and,
# where PyTorch is installed, the first 20 function evaluations equal those of
# torch.optim.LBFGS run on the same objective (the same algorithm step by step,
# until fp32 noise makes the paths part).
set -euo pipefail
source "$SRC/tests/analysis/common.sh"
find_python numpy
[ -n "$PY" ] || { echo "no python3 with numpy"; exit 1; }
G=$FIXTURES/golden/trajectory
for model in llama stories260k; do
  if [ $model = llama ]; then M=$FIXTURES/golden/llama/model; else M=$FIXTURES/models/stories260k; fi
  INV=$G/$model/invert.safetensors
  TLENS_INVERT_TRACE=1 "$TLENS" invert --model "$M" --logits "$INV" --max_iter 200 --tol 1e-4 \
    --output "$WORK/$model.safetensors" 2> "$WORK/$model.trace"
  "$TLENS" invert --model "$M" --logits "$INV" --max_iter 200 --tol 1e-4 --prior_weight 0.01 --output "$WORK/$model.prior.safetensors"
  "$TLENS" invert --model "$M" --logits "$INV" --max_iter 50 --sgd --step_size 1e-3 --output "$WORK/$model.sgd.safetensors"
  "$PY" "$SRC/tests/analysis/check_invert.py" "$M" "$INV" "$WORK/$model" "$WORK/$model.trace"
done
# bad input: one error line, exit != 0
"$PY" -c 'import json,struct,sys
h=json.dumps({"target_logits":{"dtype":"F32","shape":[2,10],"data_offsets":[0,80]}}).encode()
open(sys.argv[1],"wb").write(struct.pack("<Q",len(h))+h+bytes(80))' "$WORK/v10.safetensors"
bad() {
  local pat=$1; shift
  if "$TLENS" invert "$@" > "$WORK/bad.out" 2> "$WORK/bad.err"; then echo "FAIL: exit 0 for $*"; exit 1; fi
  [ "$(wc -l < "$WORK/bad.err")" -eq 1 ] && grep -q "^tlens invert: error: .*$pat" "$WORK/bad.err" \
    || { echo "FAIL: $*"; cat "$WORK/bad.err"; exit 1; }
  echo "ok   $(cat "$WORK/bad.err")"
}
S=$FIXTURES/models/stories260k
bad "must be \[..., 512\]" --model "$S" --logits "$WORK/v10.safetensors"
bad "is required" --model "$S"
bad "no tensor 'nope'" --model "$S" --logits "$G/llama/invert.safetensors" --logits_name nope
echo "invert: ok"
