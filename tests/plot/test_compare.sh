# tlens compare on evaluation runs of synthetic models of 12 and 8 layers (aligned
# by relative depth), of one depth (layer by layer), and a hand-written run with a
# third lens, no unit and no batches: every number of the Markdown (as printed and
# written) and CSV tables is the runs' aggregate_metrics.json, recomputed by
# check_compare.py with Python's json; the chart passes check_svg.py. Errors: no
# run, a folder that is no run, runs in different units. The charts stay in
# $WORK/pages for plot_render.
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}" "${SRC:?}" "${WORK:?}"
rm -rf "$WORK" && mkdir -p "$WORK/pages"
fail() { echo "FAIL: $*" >&2; exit 1; }
# train and eval start MPI, whose plugins leak at exit in frames LeakSanitizer
# cannot name or suppress: leak checks off for them alone (compare keeps them)
ranked() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$TLENS" "$@"; }
CHECK=$SRC/tests/plot
TOK=$FIXTURES/tokenizers/stories260k/tokenizer.json
head -n 60 "$FIXTURES/data/tinystories_valid_head.jsonl" > "$WORK/corpus.jsonl"
evalrun() { # evalrun LAYERS OUT DATA
  "$TLENS" synth --arch gpt2 --layers "$1" --hidden 16 --heads 2 --vocab 512 --seq 64 --seed "$1" \
    --output "$WORK/m$1" >/dev/null
  ranked eval --model.name "$WORK/m$1" --tokenizer "$TOK" --data.name "$3" --max_seq_len 64 --tokens 1024 \
    --cache_dir "$WORK/cache$1" --progress=false --output "$2" >"$2.out" 2>"$2.log" || { cat "$2.log"; fail "eval $1"; }
}
evalrun 12 "$WORK/e12" "$WORK/corpus.jsonl"
evalrun 8 "$WORK/e8" "$WORK/corpus.jsonl"

compare() { # compare OUT RUN...: tlens compare, then the independent check
  local out=$1; shift
  "$TLENS" compare "$@" --output "$out" >"$out.stdout" 2>"$out.log" || { cat "$out.log"; fail "compare $*"; }
  python3 "$CHECK/check_compare.py" "$out" "$out.stdout" "$@" || fail "compare table $*"
  python3 "$CHECK/check_svg.py" --has "KL(model || lens)" --has "entropy" "$out/comparison.svg" || fail "compare chart"
}
# two depths: relative depth; labels with a comma and a bar (quoted in the CSV, escaped in Markdown)
compare "$WORK/c_depth" "twelve, big=$WORK/e12" "eight|small=$WORK/e8"
grep -q "relative depth" "$WORK/c_depth/comparison.svg" || fail "the x axis of different depths"
cp "$WORK/c_depth/comparison.svg" "$WORK/pages/compare_depths.svg"
# one depth, one run: layer by layer, the model's own lines drawn
compare "$WORK/c_one" "$WORK/e12/"
grep -q "model output" "$WORK/c_one/comparison.svg" || fail "the model's own CE in a one-run chart"
cp "$WORK/c_one/comparison.svg" "$WORK/pages/compare_one.svg"

# a run written by hand: three lenses (one not named logit or tuned), no units, no batches
python3 - "$WORK/hand" <<'PY'
import json, os, sys
os.makedirs(sys.argv[1])
L = 8
lens = lambda s: {m: {f"layer_{i}": s * (i + 1) + j for i in range(L)} for j, m in enumerate(("ce", "entropy", "kl"))}
json.dump({"logit": lens(0.5), "tuned": lens(0.25), "affine probe": lens(0.125),
           "baseline": {"ce": {"final": 1.5}, "entropy": {"final": 1.25}}}, open(f"{sys.argv[1]}/aggregate_metrics.json", "w"))
PY
"$TLENS" compare "$WORK/hand" >"$WORK/hand.stdout"
grep -q "units not stated" "$WORK/hand.stdout" || fail "no unit stated"
compare "$WORK/c_hand" "$WORK/hand" "$WORK/e8"   # same depth; the unit of e8 for both
grep -q "hand: affine probe" "$WORK/c_hand/comparison.md" || fail "a third lens"

# errors: one line, the right status
expect() { # expect STATUS TEXT tlens-args...
  local want=$1 text=$2 st=0; shift 2
  "$TLENS" "$@" >"$WORK/err.out" 2>"$WORK/err.log" || st=$?
  [ $st -eq "$want" ] || { cat "$WORK/err.log"; fail "$*: status $st, expected $want"; }
  grep -q -- "$text" "$WORK/err.log" || { cat "$WORK/err.log"; fail "$*: no '$text'"; }
  [ "$(wc -l < "$WORK/err.log")" -eq 1 ] || { cat "$WORK/err.log"; fail "$*: more than one line"; }
}
expect 2 "no run given" compare
expect 2 "unknown" compare --nosuchflag "$WORK/e8"
expect 1 "not a folder" compare "$WORK/none"
expect 1 "aggregate_metrics.json" compare "$WORK/m8"
# the same model on pre-tokenized ids: nats per token, refused beside bits per byte
python3 - "$WORK/ids.safetensors" <<'PY'
import json, struct, sys
n, t = 16, 64
ids = [(i * 7919 + j * 104729) % 512 for i in range(n) for j in range(t)]
head = json.dumps({"input_ids": {"dtype": "I64", "shape": [n, t], "data_offsets": [0, 8 * n * t]}}).encode()
head += b" " * (-len(head) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(head)) + head + struct.pack(f"<{n * t}q", *ids))
PY
ranked eval --model.name "$WORK/m8" --data.name "$WORK/ids.safetensors" --max_seq_len 64 --tokens 1024 \
  --cache_dir "$WORK/cache_ids" --progress=false --output "$WORK/e8ids" >/dev/null 2>"$WORK/e8ids.log" \
  || { cat "$WORK/e8ids.log"; fail "eval on ids"; }
grep -q nats_per_token "$WORK/e8ids/aggregate_metrics.json" || fail "ids in nats per token"
expect 1 "nats_per_token" compare "$WORK/e8" "$WORK/e8ids"
compare "$WORK/c_nats" "$WORK/e8ids"
grep -q "(nats/token)" "$WORK/c_nats/comparison.svg" || fail "the unit nats/token on the chart"
echo ok
