#!/bin/bash
# tlens generate --greedy against tuned-lens 0.2.0's TunedLens.generate
# (golden/trajectory/<model>/generate.json): the same ids through every layer listed,
# for the llama golden model and stories260k; then sampling is reproducible from its
# seed, EOS sticks, and the model's own output layer equals plain greedy decoding.
set -euo pipefail
source "$SRC/tests/analysis/common.sh"
find_python json
G=$FIXTURES/golden/trajectory
for model in llama stories260k; do
  if [ $model = llama ]; then M=$FIXTURES/golden/llama/model; LENS=$FIXTURES/golden/llama/lens
  else M=$FIXTURES/models/stories260k; LENS=$G/stories260k/lens; fi
  "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); json.dump(d["prompt"], open(sys.argv[2], "w"))' \
    "$G/$model/generate.json" "$WORK/$model.prompt.json"
  N=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_new_tokens"])' "$G/$model/generate.json")
  for key in $("$PY" -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["greedy"]))' "$G/$model/generate.json"); do
    layer=${key#layer_}
    "$TLENS" generate --model "$M" -l "$LENS" --layer "$layer" --input_ids "$WORK/$model.prompt.json" --greedy --reference_cache \
      --max_new_tokens "$N" --output "$WORK/$model.$key.json"
    "$PY" - "$G/$model/generate.json" "$WORK/$model.$key.json" "$key" <<'PYEOF'
import json, sys
want = json.load(open(sys.argv[1]))["greedy"][sys.argv[3]]
have = json.load(open(sys.argv[2]))["sequences"][0]["ids"]
print(f"{sys.argv[2]}: {'equal' if have == want else 'DIFFERENT'} ({len(have)} ids)")
if have != want:
    print("ours  ", have); print("golden", want); sys.exit(1)
PYEOF
  done
done

S=$FIXTURES/models/stories260k
SL=$G/stories260k/lens
# sampling: the same seed gives the same text, another seed (almost surely) another
for seed in 1 1 2; do
  "$TLENS" generate --model "$S" -l "$SL" --layer 3 --text "Once upon a time" --temp 0.8 --seed $seed --max_new_tokens 20 >> "$WORK/samples.jsonl"
done
"$PY" - "$WORK/samples.jsonl" <<'PYEOF'
import json, sys
a, b, c = [json.loads(l)["sequences"][0]["ids"] for l in open(sys.argv[1])]
assert a == b, "the same seed gave different samples"
assert a != c, "seeds 1 and 2 gave the same 20 tokens"
print("sampling: reproducible by seed")
PYEOF
# the model's output layer is plain greedy decoding (models/stories260k/greedy.json from BOS)
echo '[1]' > "$WORK/bos.json"
"$TLENS" generate --model "$S" --layer output --input_ids "$WORK/bos.json" --greedy --max_new_tokens 64 --output "$WORK/out.json"
"$PY" - "$S/greedy.json" "$WORK/out.json" <<'PYEOF'
import json, sys
want = json.load(open(sys.argv[1]))["greedy_ids"]
have = json.load(open(sys.argv[2]))["sequences"][0]["ids"]
want = want if want[0] == 1 else [1] + want
assert have[:len(want)] == want[:len(have)], (have, want)
print("output layer = greedy decoding of the model")
PYEOF
# EOS sticks: with EOS declared as the first generated token, every later one is EOS and generation stops
first=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["sequences"][0]["ids"][1])' "$WORK/out.json")
"$TLENS" generate --model "$S" --layer output --input_ids "$WORK/bos.json" --greedy --max_new_tokens 10 --eos_id "$first" --output "$WORK/eos.json"
"$PY" - "$WORK/eos.json" "$first" <<'PYEOF'
import json, sys
ids = json.load(open(sys.argv[1]))["sequences"][0]["ids"]
assert ids == [1, int(sys.argv[2])], ids
print("EOS: generation stops once every sequence emitted it")
PYEOF
# bad input: one error line, exit != 0
bad() {
  local pat=$1; shift
  if "$TLENS" generate "$@" > "$WORK/bad.out" 2> "$WORK/bad.err"; then echo "FAIL: exit 0 for $*"; exit 1; fi
  [ "$(wc -l < "$WORK/bad.err")" -eq 1 ] && grep -q "^tlens generate: error: .*$pat" "$WORK/bad.err" \
    || { echo "FAIL: $*"; cat "$WORK/bad.err"; exit 1; }
  echo "ok   $(cat "$WORK/bad.err")"
}
bad "streams 0..4" --model "$S" -l "$SL" --layer 9 --input_ids "$WORK/bos.json"
bad "needs a lens" --model "$S" --layer 2 --input_ids "$WORK/bos.json"
bad "must be positive" --model "$S" -l "$SL" --layer 2 --input_ids "$WORK/bos.json" --temp 0
bad "is required" --model "$S" -l "$SL" --input_ids "$WORK/bos.json"
bad "not both" --model "$S" -l "$SL" --logit --layer 1 --input_ids "$WORK/bos.json"
echo "generate goldens: ok"
