# Acceptance on a real pretrained model: a lens trained by `tlens train` on stories260k
# with TinyStories text (reference defaults but for the size of the run) has a lower
# KL than the logit lens at every layer in `tlens eval` on held-out text, and the eval
# writes the reference's files and the chart. 2 ranks, with checkpoints.
source "$(dirname "$0")/common.sh"
VALID=$FIXTURES/data/tinystories_valid_head.jsonl.zst
ranks 2 train --model.name "$MODEL" --data.name "$FIXTURES/data/tinystories_train_head.jsonl.zst" \
  --max_seq_len 256 --tokens_per_step 4096 --num_steps 60 --checkpoint_freq 20 \
  --cache_dir "$WORK/cache" --progress=false --output "$WORK/lens" 2>"$WORK/train.log" \
  || { cat "$WORK/train.log"; fail "train"; }
for f in config.json params.pt metrics.jsonl; do [ -s "$WORK/lens/$f" ] || fail "missing $f"; done
[ "$(wc -l < "$WORK/lens/metrics.jsonl")" -eq 60 ] || fail "metrics.jsonl should have 60 lines"
"$TLENS" eval --model.name "$MODEL" --data.name "$VALID" -l "$WORK/lens" --max_seq_len 256 --tokens 16384 \
  --record_logit_stats --layer_transfer --cache_dir "$WORK/cache" --progress=false --output "$WORK/eval" \
  >"$WORK/eval.out" 2>"$WORK/eval.log" || { cat "$WORK/eval.log"; fail "eval"; }
cat "$WORK/eval.out"
for f in aggregate_metrics.json batches.jsonl logit_stats.json metrics.svg; do [ -s "$WORK/eval/$f" ] || fail "missing $f"; done
# independent check of the numbers' structure and the claim, in Python's json module
python3 - "$WORK/eval" <<'PY' || fail "eval metrics check"
import json, math, sys
d = sys.argv[1]
agg = json.load(open(f"{d}/aggregate_metrics.json"))
L = 5
for lens in ("logit", "tuned"):
    for m in ("ce", "entropy", "kl"):
        assert sorted(agg[lens][m]) == [f"layer_{i}" for i in range(L)], (lens, m)
    assert set(agg[lens]["layer_transfer"]) == {"ce", "kl"}
for i in range(L):
    t, l = agg["tuned"]["kl"][f"layer_{i}"], agg["logit"]["kl"][f"layer_{i}"]
    assert t < l, f"layer {i}: tuned kl {t} >= logit kl {l}"
assert set(agg["baseline"]) == {"ce", "entropy"}
batches = json.load(open(f"{d}/batches.jsonl"))
assert len(batches) == 16384 // 256, len(batches)
# the aggregate is the mean of the batches
for i in range(L):
    mean = sum(b["tuned"]["kl"][f"layer_{i}"] for b in batches) / len(batches)
    assert math.isclose(mean, agg["tuned"]["kl"][f"layer_{i}"], rel_tol=1e-9), i
# a translator on its own stream agrees with the main metrics; kl of a lens with itself is 0
for i in range(L):
    assert math.isclose(agg["tuned"]["layer_transfer"]["ce"][f"layer_{i}"][f"layer_{i}"],
                        agg["tuned"]["ce"][f"layer_{i}"], rel_tol=1e-6)
    assert abs(agg["tuned"]["layer_transfer"]["kl"][f"layer_{i}"][f"layer_{i}"]) < 1e-5
stats = json.load(open(f"{d}/logit_stats.json"))
p = stats["baseline"]["logit_stats"]["final"]
assert len(p) == 512 and abs(sum(p) - 1) < 1e-3
print("tuned kl per layer:", [round(agg["tuned"]["kl"][f"layer_{i}"], 4) for i in range(L)])
print("logit kl per layer:", [round(agg["logit"]["kl"][f"layer_{i}"], 4) for i in range(L)])
PY
grep -q "<svg" "$WORK/eval/metrics.svg" && grep -q "tuned lens" "$WORK/eval/metrics.svg" || fail "chart"
# the layer-transfer heatmap: its cells are the file's matrix, a page a reader can use
python3 "$SRC/tests/plot/check_heatmap.py" "$WORK/eval/aggregate_metrics.json" "$WORK/eval/layer_transfer.svg" \
  && python3 "$SRC/tests/plot/check_svg.py" --has "KL(own lens || lens of layer i) (bits/byte)" \
       "$WORK/eval/layer_transfer.svg" || fail "layer_transfer.svg"
# a rerun into the folder without those options leaves none of their files behind
"$TLENS" eval --model.name "$MODEL" --data.name "$VALID" -l "$WORK/lens" --max_seq_len 256 --tokens 4096 \
  --cache_dir "$WORK/cache" --progress=false --output "$WORK/eval" >/dev/null 2>"$WORK/eval2.log" \
  || { cat "$WORK/eval2.log"; fail "eval rerun"; }
[ -s "$WORK/eval/aggregate_metrics.json" ] || fail "rerun: no aggregate_metrics.json"
for f in layer_transfer.svg logit_stats.json; do [ ! -e "$WORK/eval/$f" ] || fail "rerun left the earlier $f"; done
echo ok
