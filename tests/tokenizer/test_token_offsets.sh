# tlens tokenize --tokens: token strings and byte offsets into the UTF-8 text.
# 1. Worked by hand on the stories260k tokenizer (SentencePiece-style BPE, "▁"
#    prepended and put for spaces, byte fallback): multi-byte characters, byte
#    tokens spanning their whole character, the BOS token at [0, 0).
# 2. Against Hugging Face tokenizers itself (the Rust library through its npm
#    package, tests/tokenizer/npm_offsets.js, character offsets turned into bytes)
#    on every text of tests/tokenizer/offsets_texts.json and the flags corpus
#    (added tokens with lstrip, rstrip, single_word, normalized), for stories260k,
#    GPT-2, GPT-NeoX (ByteLevel trim_offsets) and the flags tokenizer. This part is
#    skipped with a note when node or the package is not found (set NODE_PATH to
#    the node_modules folder of `npm install tokenizers@0.23.2`).
# 3. The table format, and the usage errors of the flags.
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}" "${SRC:?}" "${WORK:?}"
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }
TK=$FIXTURES/tokenizers
"$TLENS" tokenize --tokenizer "$TK/stories260k/tokenizer.json" --text "héllo wörld ✓ 日本" --tokens > "$WORK/hand.json"
python3 - "$WORK/hand.json" <<'PY' || fail "hand-worked offsets"
import json, sys
got = json.load(open(sys.argv[1]))
text = "héllo wörld ✓ 日本".encode()
# bytes: h 0 | é 1-2 | l 3 | l 4 | o 5 | ' ' 6 | w 7 | ö 8-9 | r 10 | l 11 | d 12 | ' ' 13 |
#        ✓ 14-16 | ' ' 17 | 日 18-20 | 本 21-23. The prepended "▁" stands for the first
# character (h), a "▁" put for a space for that space; ö, ✓, 日, 本 are not in the
# vocabulary: one <0xNN> token per byte, each spanning the whole character.
want = [("<s>", 0, 0), ("▁h", 0, 1), ("é", 1, 3), ("ll", 3, 5), ("o", 5, 6), ("▁w", 6, 8),
        ("<0xC3>", 8, 10), ("<0xB6>", 8, 10), ("r", 10, 11), ("ld", 11, 13), ("▁", 13, 14),
        ("<0xE2>", 14, 17), ("<0x9C>", 14, 17), ("<0x93>", 14, 17), ("▁", 17, 18),
        ("<0xE6>", 18, 21), ("<0x97>", 18, 21), ("<0xA5>", 18, 21),
        ("<0xE6>", 21, 24), ("<0x9C>", 21, 24), ("<0xAC>", 21, 24)]
assert [(t, a, b) for t, (a, b) in zip(got["tokens"], got["offsets"])] == want, got
assert len(got["ids"]) == len(want)
# the byte tokens' ids are 3 + the byte (<0x00> follows <unk>, <s>, </s>)
for t, i in zip(got["tokens"], got["ids"]):
    if t.startswith("<0x"):
        assert i == 3 + int(t[3:5], 16), (t, i)
assert text[18:21].decode() == "日"
PY
# the ids are those of the plain encoder
"$TLENS" tokenize --tokenizer "$TK/stories260k/tokenizer.json" --text "héllo wörld ✓ 日本" > "$WORK/ids.json"
python3 -c "import json,sys; assert json.load(open(sys.argv[1]))['ids'] == json.load(open(sys.argv[2]))" \
  "$WORK/hand.json" "$WORK/ids.json" || fail "--tokens ids differ from the plain ids"

# 2. against HF tokenizers (npm)
if command -v node >/dev/null && node -e "require('tokenizers')" 2>/dev/null; then
  python3 -c "import json,sys; json.dump([json.loads(l)['text'] for l in open(sys.argv[1]) if l.strip()], open(sys.argv[2], 'w'))" \
    "$SRC/tests/data/tokenizer_flags_text.jsonl" "$WORK/flags_texts.json"
  for job in "stories260k:$TK/stories260k/tokenizer.json:$SRC/tests/tokenizer/offsets_texts.json" \
             "gpt2:$TK/gpt2/tokenizer.json:$SRC/tests/tokenizer/offsets_texts.json" \
             "neox-20b:$TK/neox-20b/tokenizer.json:$SRC/tests/tokenizer/offsets_texts.json" \
             "flags:$SRC/tests/data/tokenizer_flags/tokenizer.json:$WORK/flags_texts.json"; do
    IFS=: read -r name tok texts <<<"$job"
    node "$SRC/tests/tokenizer/npm_offsets.js" "$tok" "$texts" > "$WORK/npm_$name.jsonl" || fail "npm on $name"
    python3 - "$TLENS" "$tok" "$texts" "$WORK/npm_$name.jsonl" "$name" <<'PY' || fail "offsets of $name differ from HF tokenizers"
import json, subprocess, sys
tlens, tok, texts, npm, name = sys.argv[1:]
texts = json.load(open(texts))
want = [json.loads(l) for l in open(npm)]
assert len(want) == len(texts)
bad = 0
for text, w in zip(texts, want):
    got = json.loads(subprocess.run([tlens, "tokenize", "--tokenizer", tok, "--text", text, "--tokens", "--format", "json"],
                                    capture_output=True, text=True, check=True).stdout)
    for k in ("ids", "tokens", "offsets"):
        if got[k] != w[k]:
            bad += 1
            print(f"{name} {text!r} {k}:\n  tlens {got[k]}\n  HF    {w[k]}")
print(f"{name}: {len(texts)} texts, {bad} differences from HF tokenizers")
sys.exit(1 if bad else 0)
PY
  done
else
  echo "note: node or its tokenizers package not found (NODE_PATH): the comparison with HF tokenizers is skipped"
fi

# 3. the table, and usage errors
"$TLENS" tokenize --tokenizer "$TK/stories260k/tokenizer.json" --text "héllo" --tokens --format table > "$WORK/table.txt"
head -1 "$WORK/table.txt" | grep -q "index.*id.*start.*end.*token.*text" || fail "table header"
grep -q '^ *2 *485 *1 *3  "é" *"é"$' "$WORK/table.txt" || { cat "$WORK/table.txt"; fail "table row"; }
for bad in "--tokens --decode" "--format xml --tokens" "--format json"; do
  st=0; "$TLENS" tokenize --tokenizer "$TK/stories260k/tokenizer.json" --text "[1]" $bad 2>"$WORK/err" >/dev/null || st=$?
  [ $st -eq 2 ] && [ "$(wc -l < "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; fail "$bad: status $st"; }
done
echo ok
