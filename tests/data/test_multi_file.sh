# --data.name with several files, globs or a folder (with --split) reads them in order
# as one corpus: its chunks are exactly those of the single concatenated file (the
# reference: `cat` of the parts, tokenized unsplit), in .jsonl and .jsonl.zst alike.
source "$(dirname "$0")/../sh_common.sh"
SRC=$FIXTURES/data/tinystories_valid_head.jsonl
# three parts (the last compressed), and a folder in the HF dataset layout
head -n 300 "$SRC" > "$WORK/p1.jsonl"
sed -n '301,550p' "$SRC" > "$WORK/p2.jsonl"
sed -n '551,$p' "$SRC" > "$WORK/p3.jsonl"
cat "$WORK/p1.jsonl" "$WORK/p2.jsonl" "$WORK/p3.jsonl" > "$WORK/whole.jsonl"
zstd -q -f "$WORK/p3.jsonl" -o "$WORK/p3.jsonl.zst"
mkdir -p "$WORK/ds/data" "$WORK/ds/other"
cp "$WORK/p1.jsonl" "$WORK/ds/data/validation-00000-of-00002.jsonl"
cp "$WORK/p2.jsonl" "$WORK/ds/data/validation-00001-of-00002.jsonl"
cp "$WORK/p3.jsonl" "$WORK/ds/data/train-00000-of-00001.jsonl"
E=(--model.name "$MODEL" --max_seq_len 64 --tokens 640 --progress=false)
payload() { tail -c +257 "$(ls "$1"/*.tltok)"; }
run() { # name args...: eval into $WORK/<name>, cache in $WORK/c_<name>
  local n=$1; shift
  "$TLENS" eval "${E[@]}" "$@" --output "$WORK/$n" --cache_dir "$WORK/c_$n" >/dev/null 2>"$WORK/$n.log" \
    || { cat "$WORK/$n.log"; fail "eval $n"; }
}
run whole --data.name "$WORK/whole.jsonl"
run parts --data.name "$WORK/p1.jsonl" "$WORK/p2.jsonl" "$WORK/p3.jsonl.zst"
cmp <(payload "$WORK/c_whole") <(payload "$WORK/c_parts") || fail "three files differ from their concatenation"
grep -q "corpus: 3 files" "$WORK/parts.log" || { cat "$WORK/parts.log"; fail "no note of the 3 files"; }
run glob --data.name "$WORK/p[12].jsonl" "$WORK/p3.jsonl"
cmp <(payload "$WORK/c_whole") <(payload "$WORK/c_glob") || fail "glob + file differ from the concatenation"
# the folder's validation split is p1 + p2; the same two files given by name agree
run split --data.name "$WORK/ds" --split validation
run two --data.name "$WORK/p1.jsonl" "$WORK/p2.jsonl"
cmp <(payload "$WORK/c_two") <(payload "$WORK/c_split") || fail "the validation split differs from its two files"
# the same in a --config file, as a JSON list
printf '{"data.name": ["%s", "%s", "%s"]}\n' "$WORK/p1.jsonl" "$WORK/p2.jsonl" "$WORK/p3.jsonl.zst" > "$WORK/cfg.json"
run cfg --config "$WORK/cfg.json"
cmp <(payload "$WORK/c_whole") <(payload "$WORK/c_cfg") || fail "the --config list differs"
# errors: a glob or folder with no corpus, one line naming it
rc=0; "$TLENS" eval "${E[@]}" --data.name "$WORK/nothing*.jsonl" --output "$WORK/x" 2>"$WORK/err" >/dev/null || rc=$?
[ $rc -eq 1 ] && grep -q "nothing\*.jsonl: no corpus file there" "$WORK/err" || { cat "$WORK/err"; fail "empty glob: exit $rc"; }
rc=0; "$TLENS" eval "${E[@]}" --data.name "$WORK/ds/other" --output "$WORK/x" 2>"$WORK/err" >/dev/null || rc=$?
[ $rc -eq 1 ] && grep -q "other: no corpus file there" "$WORK/err" || { cat "$WORK/err"; fail "empty folder: exit $rc"; }
echo "ok: several corpus files read as one"
