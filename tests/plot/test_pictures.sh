# The pictures of a 48-layer synthetic run, as a reader would look at them: the
# training curves (train.svg, drawn at each checkpoint) and tlens eval's
# metrics.svg (logit and tuned lens). Each page passes check_svg.py
# (parses, labelled axes with units, a legend, no overlapping texts, readable at
# 800 px), and the eval chart's points and error bars are the run's numbers
# (check_eval_chart.py). Several lenses in one eval (-l A -l NAME=B) give each
# lens exactly (bitwise) the numbers of its own eval and one legend entry each.
# The pages stay in $WORK/pages for plot_render.
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}" "${SRC:?}" "${WORK:?}"
rm -rf "$WORK" && mkdir -p "$WORK/pages"
fail() { echo "FAIL: $*" >&2; exit 1; }
# train and eval start MPI, whose plugins leak at exit in frames LeakSanitizer
# cannot name or suppress: leak checks off for them alone (compare keeps them)
ranked() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$TLENS" "$@"; }
CHECK=$SRC/tests/plot
TOK=$FIXTURES/tokenizers/stories260k/tokenizer.json
head -n 150 "$FIXTURES/data/tinystories_valid_head.jsonl" > "$WORK/corpus.jsonl"
"$TLENS" synth --arch llama --layers 48 --hidden 16 --heads 2 --vocab 512 --seq 64 --seed 1 --output "$WORK/m48" >/dev/null
COMMON=(--model.name "$WORK/m48" --tokenizer "$TOK" --data.name "$WORK/corpus.jsonl" --max_seq_len 64
        --cache_dir "$WORK/cache" --progress=false)
# train.svg is drawn at each checkpoint: after a stop at step 4, then at the end
TRAIN=("${COMMON[@]}" --tokens_per_step 256 --num_steps 12 --checkpoint_freq 4 --output "$WORK/train48")
st=0
ranked train "${TRAIN[@]}" --stop_after 4 2>"$WORK/train.log" || st=$?
[ $st -eq 3 ] || { cat "$WORK/train.log"; fail "train --stop_after 4: status $st"; }
grep -q "steps 1 to 4<" "$WORK/train48/train.svg" || fail "train.svg after the stop at step 4"
ranked train "${TRAIN[@]}" 2>>"$WORK/train.log" || { cat "$WORK/train.log"; fail "train"; }
grep -q "steps 1 to 12<" "$WORK/train48/train.svg" || fail "train.svg at the end"
! grep -q "not drawn" "$WORK/train.log" || fail "a warning about train.svg"
cp "$WORK/train48/train.svg" "$WORK/pages/train48.svg"
python3 "$CHECK/check_svg.py" --has "training loss per layer (bits/byte)" --has "learning rate" \
  --has "gradient norm" --has "mean over layers" "$WORK/pages/train48.svg" || fail "train chart page"
ranked eval "${COMMON[@]}" -l "$WORK/train48" --tokens 2048 --output "$WORK/eval48" \
  >"$WORK/eval.out" 2>"$WORK/eval.log" || { cat "$WORK/eval.log"; fail "eval"; }
cp "$WORK/eval48/metrics.svg" "$WORK/pages/eval48.svg"
python3 "$CHECK/check_svg.py" --has "logit lens" --has "tuned lens" --has "model output" --has "standard errors" \
  "$WORK/pages/eval48.svg" || fail "eval chart page"
python3 "$CHECK/check_eval_chart.py" "$WORK/eval48" || fail "eval chart numbers"
# a second lens of the same model, and an eval of both beside the logit lens
ranked train "${COMMON[@]}" --tokens_per_step 256 --num_steps 3 --seed 5 --checkpoint_freq 0 --output "$WORK/other48" \
  2>>"$WORK/train.log" || { cat "$WORK/train.log"; fail "train of the second lens"; }
ranked eval "${COMMON[@]}" -l "$WORK/other48" --tokens 2048 --output "$WORK/evalB" >/dev/null 2>>"$WORK/eval.log" \
  || { cat "$WORK/eval.log"; fail "eval -l B"; }
ranked eval "${COMMON[@]}" -l "$WORK/train48" -l "second=$WORK/other48" --tokens 2048 --output "$WORK/evalAB" \
  >"$WORK/evalAB.out" 2>>"$WORK/eval.log" || { cat "$WORK/eval.log"; fail "eval -l A -l second=B"; }
grep -q "train48.kl" "$WORK/evalAB.out" && grep -q "second.kl" "$WORK/evalAB.out" || fail "table of two lenses"
cp "$WORK/evalAB/metrics.svg" "$WORK/pages/eval48_two_lenses.svg"
python3 "$CHECK/check_svg.py" --has "logit lens" --has "train48" --has "second" "$WORK/pages/eval48_two_lenses.svg" \
  || fail "two-lens chart page"
python3 "$CHECK/check_eval_chart.py" "$WORK/evalAB" || fail "two-lens chart numbers"
python3 - "$WORK" <<'PY' || fail "two lenses against their own evals"
import json, sys
import xml.etree.ElementTree as ET
w = sys.argv[1]
load = lambda d, f: json.load(open(f"{w}/{d}/{f}"))
for f in ("aggregate_metrics.json", "batches.jsonl"):
    ab, a, b = load("evalAB", f), load("eval48", f), load("evalB", f)
    rows = (ab, a, b) if f == "batches.jsonl" else ([ab], [a], [b])
    assert len(rows[0]) == len(rows[1]) == len(rows[2]), f
    for x, y, z in zip(*rows):
        assert sorted(x) == ["baseline", "logit", "second", "train48", "units"], sorted(x)
        # json.load gives the same float only for the same bits (17 digits written)
        assert x["train48"] == y["tuned"] and x["second"] == z["tuned"], f
        assert x["logit"] == y["logit"] == z["logit"] and x["baseline"] == y["baseline"] == z["baseline"], f
        assert x["units"] == y["units"], f
legend = [t.text for t in ET.parse(f"{w}/evalAB/metrics.svg").getroot().iter("{http://www.w3.org/2000/svg}text")
          if t.get("class") == "legend"]
assert sorted(legend) == ["logit lens", "second", "train48"], legend
PY
# two lenses given the same name, or a name the files use, are usage errors
st=0; "$TLENS" eval "${COMMON[@]}" -l "$WORK/train48" -l "$WORK/other48/../train48" --output "$WORK/bad" 2>"$WORK/err" || st=$?
[ $st -eq 2 ] && grep -q "both named 'train48'" "$WORK/err" || { cat "$WORK/err"; fail "duplicate lens names: status $st"; }
st=0; "$TLENS" eval "${COMMON[@]}" -l "logit=$WORK/train48" -l "$WORK/other48" --output "$WORK/bad" 2>"$WORK/err" || st=$?
[ $st -eq 2 ] && grep -q "name 'logit' is taken" "$WORK/err" || { cat "$WORK/err"; fail "reserved lens name: status $st"; }
[ ! -e "$WORK/bad" ] || fail "a refused eval left its output folder"
echo ok
