#!/bin/bash
# tlens trajectory against tuned-lens 0.2.0's PredictionTrajectory (the goldens in
# golden/trajectory/<model>/): every statistic, label and hover string, for the
# tuned and the logit lens, on the llama golden model (synthetic token strings) and
# the real stories260k (its tokenizer), with each variant the goldens list.
# Then a numpy re-implementation of the reference formulas checks the same
# numbers from the log-probabilities tlens saves (--save_log_probs).
set -euo pipefail
source "$SRC/tests/analysis/common.sh"
find_python numpy
[ -n "$PY" ] || { echo "no python3 with numpy"; exit 1; }
G=$FIXTURES/golden/trajectory

for model in llama stories260k; do
  if [ $model = llama ]; then
    VOCAB=$G/llama/vocab.json
    MODEL=(--model "$FIXTURES/golden/llama/model" --vocab "$VOCAB")
    LENS=$FIXTURES/golden/llama/lens
  else
    VOCAB=$FIXTURES/models/stories260k/tokenizer.json
    MODEL=(--model "$FIXTURES/models/stories260k")
    LENS=$G/stories260k/lens
  fi
  W=$WORK/$model
  mkdir -p "$W"
  # the inputs of the goldens, as the files tlens reads
  "$PY" - "$G/$model/inputs.json" "$W" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1])); w = sys.argv[2]
json.dump(d["input_ids"], open(f"{w}/ids.json", "w"))
json.dump(d["other_input_ids"], open(f"{w}/other.json", "w"))
with open(f"{w}/batch.jsonl", "w") as f:
    for p in d["batch_input_ids"]:
        f.write(json.dumps(p) + "\n")
open(f"{w}/targets", "w").write(",".join(map(str, d["targets"])))
open(f"{w}/anti", "w").write(",".join(map(str, d["anti_targets"])))
a = d
open(f"{w}/args", "w").write(f'{a["slice"][0]}:{a["slice"][1]} {a["stride"]} {a["clip"][0]:g}:{a["clip"][1]:g} {a["topk"]} {a["min_prob_delta"]} {a["eos_token_id"]}\n')
PYEOF
  read -r SLICE STRIDE CLIP TOPK MPD EOS < "$W/args"
  COMMON=("${MODEL[@]}" -l "$LENS" --logit --topk "$TOPK" --eos_id "$EOS")
  ONE=(--input_ids "$W/ids.json" --targets "$(cat "$W/targets")")
  run() {
    local name=$1; shift
    "$TLENS" trajectory "${COMMON[@]}" "$@" --output "$W/$name" --save_log_probs "$W/$name.safetensors" \
      2>"$W/$name.log" || { cat "$W/$name.log"; exit 1; }
  }
  run base "${ONE[@]}" --anti_targets "$(cat "$W/anti")" --other_input_ids "$W/other.json" --min_prob_delta "$MPD"
  run show_ranks "${ONE[@]}" --stats rank --show_ranks
  run delta "${ONE[@]}" --anti_targets "$(cat "$W/anti")" --stats log_prob_diff --delta
  run slice "${ONE[@]}" --stats entropy --slice "$SLICE"
  run stride "${ONE[@]}" --stats forward_kl --stride "$STRIDE"
  run clip "${ONE[@]}" --stats forward_kl --clip "$CLIP"
  run mask_input "${ONE[@]}" --stats entropy --mask_input
  run batch --prompts "$W/batch.jsonl" --stats entropy,cross_entropy
  "$PY" "$SRC/tests/analysis/check_trajectory.py" "$G/$model/trajectory.json" "$W" "$VOCAB"
done

# the second reference: numpy on the log-probabilities of the base runs
for model in llama stories260k; do
  if [ $model = llama ]; then VOCAB=$G/llama/vocab.json; else VOCAB=$FIXTURES/models/stories260k/tokenizer.json; fi
  (cd "$SRC/tests/analysis" && "$PY" check_numpy.py "$WORK/$model/base.safetensors" "$WORK/$model/base/trajectory.json" \
     "$G/$model/inputs.json" "$VOCAB")
done
echo "trajectory goldens: ok"
