#!/bin/bash
# The demo lens on the real stories260k: a lens trained with the demo's settings
# (configs/stories260k-demo.json, one rank, cut to 20 steps of 16 samples to keep the test short; or
# the lens in $TLENS_DEMO_LENS, e.g. demo-out/lens from jobs/demo.sh), then
# `tlens trajectory -l LENS --logit` on a held-out TinyStories story (the validation
# head, not trained on). Read from trajectory.json: at every layer of the last half
# (layers L/2 .. L-1, rounded down: 2, 3 and 4 of 5), the tuned lens's top-1 token
# agrees with the model's own top-1 (the "output" row) at more positions than the
# logit lens's does. A lens that learned anything must win there: the logit lens reads
# intermediate streams with the final layer's unembedding.
set -euo pipefail
source "$SRC/tests/analysis/common.sh"
find_python json
S=$FIXTURES/models/stories260k
LENS=${TLENS_DEMO_LENS:-}
if [ -z "$LENS" ]; then
  LENS=$WORK/lens
  # Open MPI's plugins leak at exit in frames LeakSanitizer cannot name (as in tests/train)
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$TLENS" train --config "$SRC/configs/stories260k-demo.json" --model.name "$S" \
    --data.name "$FIXTURES/data/tinystories_train_head.jsonl.zst" --num_steps 20 --tokens_per_step 4096 --checkpoint_freq 20 \
    --progress=false --output "$LENS" >"$WORK/train.log" 2>&1 || { tail -5 "$WORK/train.log"; exit 1; }
fi
TEXT=$("$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[1])["text"][:300])' \
  "$FIXTURES/data/tinystories_valid_head.jsonl")
"$TLENS" trajectory --model "$S" -l "$LENS" --logit --text "$TEXT" --stats max_probability,forward_kl \
  --output "$WORK/out" 2>"$WORK/traj.log" || { cat "$WORK/traj.log"; exit 1; }
"$PY" - "$WORK/out/trajectory.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
agree = {}
for lens in ("tuned", "logit"):
    v = d[lens]["max_probability"]
    lab, layers = v["label_strings"], v["layer_labels"]
    assert layers[-1] == "output", layers
    assert all(s for row in lab for s in row), "some cells have no label"
    agree[lens] = [sum(a == b for a, b in zip(row, lab[-1])) for row in lab[:-1]]
L, T = len(agree["tuned"]), len(d["tuned"]["max_probability"]["label_strings"][0])
print(f"top-1 agreement with the model's output over {T} positions, layers 0..{L - 1}:")
for lens in agree:
    print(f"  {lens:5s} lens: {agree[lens]}")
kl = {lens: [sum(r) / T for r in d[lens]["forward_kl"]["stats"][:-1]] for lens in agree}
print("  mean KL(output || lens) per layer: tuned " + " ".join(f"{x:.3f}" for x in kl["tuned"]) +
      ", logit " + " ".join(f"{x:.3f}" for x in kl["logit"]))
bad = [l for l in range(L // 2, L) if not agree["tuned"][l] > agree["logit"][l]]
if bad:
    sys.exit(f"FAIL: the tuned lens does not agree with the output more often than the logit lens at layers {bad}")
print(f"the tuned lens agrees more often at every layer {L // 2}..{L - 1}: ok")
PYEOF
