# tlens hidden takes its ids three ways, all giving the same file byte for byte:
# a safetensors input_ids [1, T] (written here by Python's struct and json, the
# safetensors layout by hand), the JSON of `tlens tokenize --tokens` (and its plain
# list), and --text tokenized by hidden itself. A batch of two rows from a list of
# lists; bad JSON is one line naming the file, status 1; two sources a usage error.
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}" "${WORK:?}"
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
M=$FIXTURES/models/stories260k
TEXT="Once upon a time, a little cat saw a bird."
"$TLENS" tokenize --model "$M" --text "$TEXT" --tokens --format json > "$WORK/tokens.json"
"$TLENS" tokenize --model "$M" --text "$TEXT" > "$WORK/ids.json"
python3 - "$WORK/tokens.json" "$WORK/in.safetensors" "$WORK/rows.json" <<'PY'
import json, struct, sys
ids = json.load(open(sys.argv[1]))["ids"]
body = struct.pack(f"<{len(ids)}q", *ids)
head = json.dumps({"input_ids": {"dtype": "I64", "shape": [1, len(ids)], "data_offsets": [0, len(body)]}}).encode()
head += b" " * (-len(head) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(head)) + head + body)
json.dump([ids, ids], open(sys.argv[3], "w"))
PY
"$TLENS" hidden --model "$M" --input "$WORK/in.safetensors" --output "$WORK/a.safetensors"
"$TLENS" hidden --model "$M" --input_ids "$WORK/tokens.json" --output "$WORK/b.safetensors"
"$TLENS" hidden --model "$M" --input_ids "$WORK/ids.json" --output "$WORK/c.safetensors"
"$TLENS" hidden --model "$M" --text "$TEXT" --output "$WORK/d.safetensors"
for f in b c d; do cmp -s "$WORK/a.safetensors" "$WORK/$f.safetensors" || fail "$f.safetensors differs from --input's"; done
"$TLENS" hidden --model "$M" --input_ids "$WORK/rows.json" --output "$WORK/rows.safetensors"
python3 - "$WORK/rows.safetensors" "$WORK/tokens.json" <<'PY' || fail "two rows"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", data[:8])
h = json.loads(data[8:8 + n])
assert h["logits"]["shape"][:2] == [2, len(json.load(open(sys.argv[2]))["ids"])], h["logits"]
PY
echo '{"ids": [1, "x"]}' > "$WORK/bad.json"
st=0; "$TLENS" hidden --model "$M" --input_ids "$WORK/bad.json" --output "$WORK/e.safetensors" 2>"$WORK/err" || st=$?
[ $st -eq 1 ] && grep -q "bad.json: ids\[0\]\[1\]: expected a non-negative integer" "$WORK/err" \
  && [ "$(wc -l < "$WORK/err")" -eq 1 ] && [ ! -e "$WORK/e.safetensors" ] || { cat "$WORK/err"; fail "bad ids: status $st"; }
echo '[[1, 2], [3]]' > "$WORK/ragged.json"
st=0; "$TLENS" hidden --model "$M" --input_ids "$WORK/ragged.json" --output "$WORK/e.safetensors" 2>"$WORK/err" || st=$?
[ $st -eq 1 ] && grep -q "row 1: expected a list of 2 ids" "$WORK/err" || { cat "$WORK/err"; fail "ragged: status $st"; }
st=0; "$TLENS" hidden --model "$M" --text x --input_ids "$WORK/ids.json" --output "$WORK/e.safetensors" 2>"$WORK/err" || st=$?
[ $st -eq 2 ] && grep -q "exactly one of --input, --input_ids or --text" "$WORK/err" || { cat "$WORK/err"; fail "two sources: status $st"; }
echo ok
