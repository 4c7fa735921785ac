#!/bin/bash
# tlens trajectory --ablate on the real stories260k: bad ablation flags are one line
# "tlens trajectory: error: ..." with exit != 0 and nothing written; swap with the
# input itself against the clean run gives kl = js = tv = 0 exactly in every cell; a
# zeroed layer leaves the streams below it as they were (kl 0) and changes the output.
set -uo pipefail
source "$SRC/tests/analysis/common.sh"
S=$FIXTURES/models/stories260k
X="Once upon a time"
echo '[1, 337, 403]' > "$WORK/three.json"

expect_error layer_range "layer 9 is out of range \[0, 5)" --model "$S" --text "$X" --ablate attn:9
expect_error kind "unknown sub-layer 'ffn'" --model "$S" --text "$X" --ablate attn:1,ffn:2
expect_error no_layer "expected a layer number" --model "$S" --text "$X" --ablate mlp:
expect_error not_number "'x' is not a layer number" --model "$S" --text "$X" --ablate mlp:x
expect_error empty_range "the range 3-1 is empty" --model "$S" --text "$X" --ablate mlp:3-1
expect_error empty_item "empty item" --model "$S" --text "$X" --ablate attn:1,,mlp:2
expect_error no_colon "expected attn:LAYERS or mlp:LAYERS" --model "$S" --text "$X" --ablate attn
expect_error how "expected zero, mean or swap" --model "$S" --text "$X" --ablate attn:1 --ablation half
expect_error swap_source "needs --swap_text or --swap_input_ids" --model "$S" --text "$X" --ablate attn:1 --ablation swap
expect_error swap_extra "source of --ablation swap only" --model "$S" --text "$X" --ablate attn:1 --swap_text "$X"
expect_error swap_shape "swap needs the same positions" --model "$S" --text "$X" --ablate attn:1 --ablation swap --swap_input_ids "$WORK/three.json"
expect_error no_ablate "needs --ablate" --model "$S" --text "$X" --compare clean
expect_error compare "expected clean" --model "$S" --text "$X" --ablate attn:1 --compare dirty
expect_error compare_other "drop --other_text" --model "$S" --text "$X" --ablate attn:1 --compare clean --other_text "$X"

# check_json FILE PYTHON-CONDITION MESSAGE: the condition over t = the logit lens's views
check_json() {
  python3 - "$1" "$2" <<'PY' || { echo "FAIL $3"; fails=$((fails + 1)); return; }
import json, sys
t = json.load(open(sys.argv[1]))["logit"]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
  echo "ok   $3"
}
run() { "$TLENS" trajectory --model "$S" --text "$X" --logit --output "$WORK/$1" "${@:2}" > /dev/null 2>"$WORK/$1.err" || { echo "FAIL $1:"; cat "$WORK/$1.err"; fails=$((fails + 1)); }; }

run swap --ablate attn:0-4,mlp:0-4 --ablation swap --swap_text "$X" --compare clean
check_json "$WORK/swap/trajectory.json" \
  'all(v == 0 for k in ("kl", "js", "tv") for row in t[k]["stats"] for v in row)' "swap with itself: kl = js = tv = 0"
for how in zero mean; do
  run $how --ablate attn:2,mlp:2 --ablation $how --compare clean --stats kl
  check_json "$WORK/$how/trajectory.json" \
    'all(v == 0 for row in t["kl"]["stats"][:3] for v in row) and min(t["kl"]["stats"][-1]) > 0' \
    "$how layer 2: streams 0-2 unchanged, the output changed"
done

[ $fails -eq 0 ] && echo "all ablation CLI checks passed"
exit $((fails > 0))
