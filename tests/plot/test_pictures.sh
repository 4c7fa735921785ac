# The pictures of a 48-layer synthetic run, as a reader would look at them: the
# training curves (train.svg, drawn at each checkpoint) and tlens eval's
# metrics.svg (logit and tuned lens). Each page passes check_svg.py
# (parses, labelled axes with units, a legend, no overlapping texts, readable at
# 800 px), and the eval chart's points and error bars are the run's numbers
# (check_eval_chart.py). The pages stay in $WORK/pages for plot_render.
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
echo ok
