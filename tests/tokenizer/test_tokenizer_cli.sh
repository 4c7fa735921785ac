#!/bin/bash
# tlens tokenize: ids and text against HF goldens; error paths exit non-zero with one line.
set -u
fail=0
check() { if [ "$2" != "$3" ]; then echo "FAIL $1: got [$2] want [$3]"; fail=1; fi; }
mkdir -p "$WORK"
TOK="$FIXTURES/tokenizers"

# HF: GPT-2 "Hello world!" -> [15496, 995, 0]; stories260k adds BOS 1 (golden_hard_shared.jsonl)
check gpt2 "$("$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --text 'Hello world!')" "[15496, 995, 0]"
check stories "$("$TLENS" tokenize --model "$FIXTURES/models/stories260k" --text 'Hello world!')" \
  "[1, 346, 306, 414, 263, 304, 341, 443]"
check stories_ns "$("$TLENS" tokenize --model "$FIXTURES/models/stories260k" --text 'Hello world!' --no_special)" \
  "[346, 306, 414, 263, 304, 341, 443]"
check neox_decode "$("$TLENS" tokenize --tokenizer "$TOK/neox-20b/tokenizer.json" --decode --text '[0, 40084, 0, 1156]')" \
  "<|endoftext|>inside<|endoftext|>text"
# a whole golden document through --input and back through --decode (stdin)
python3 - "$TOK/gpt2/golden_pile_text.jsonl" "$WORK" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).readline())
open(sys.argv[2] + "/doc.txt", "w").write(d["text"])
open(sys.argv[2] + "/doc.ids", "w").write("[" + ", ".join(map(str, d["ids"])) + "]\n")
open(sys.argv[2] + "/doc.dec", "w").write(d["decoded"] + "\n")
PY
"$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --input "$WORK/doc.txt" > "$WORK/out.ids" || fail=1
cmp -s "$WORK/out.ids" "$WORK/doc.ids" || { echo "FAIL pile ids differ"; fail=1; }
"$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --decode --input - < "$WORK/doc.ids" > "$WORK/out.dec" || fail=1
cmp -s "$WORK/out.dec" "$WORK/doc.dec" || { echo "FAIL pile decode differs"; fail=1; }

# errors: non-zero exit, one line naming the problem
expect_err() { # name, pattern, command...
  local name=$1 pat=$2; shift 2
  local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
  if [ $rc -eq 0 ] || [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] || ! grep -q -- "$pat" <<<"$err"; then
    echo "FAIL $name: rc=$rc err=[$err]"; fail=1
  fi
}
printf '{"model": ' > "$WORK/broken.json"
expect_err notjson "broken.json: not valid JSON" "$TLENS" tokenize --tokenizer "$WORK/broken.json" --text hi
expect_err nomodel "tokenizer.json" "$TLENS" tokenize --model "$WORK" --text hi
expect_err both "exactly one" "$TLENS" tokenize --model a --tokenizer b --text hi
expect_err notext "exactly one" "$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json"
expect_err badids "expected a JSON list" "$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --decode --text 'hello'
expect_err range "id 99999" "$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --decode --text '[1, 99999]'
printf 'a\xff' > "$WORK/bad.txt"
expect_err utf8 "bad.txt: .*UTF-8" "$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --input "$WORK/bad.txt"
expect_err flag "unknown" "$TLENS" tokenize --tokenizer "$TOK/gpt2/tokenizer.json" --text hi --bogus
"$TLENS" tokenize --help | grep -q "usage: tlens tokenize" || { echo "FAIL help"; fail=1; }
exit $fail
