# --dataset_shuffle: documents are chunked in the order of a seeded Fisher-Yates
# permutation driven by SplitMix64 (documented in --help; HF datasets' order is not
# reproduced). The reference here is Python: it draws the same permutation, writes
# the documents in that order, and the token cache of that file (unshuffled) must
# hold exactly the ids of the shuffled cache of the original. Also: eval's progress
# reaches a pipe as plain lines, and its metrics files state their units.
source "$(dirname "$0")/../sh_common.sh"
SRC=$FIXTURES/data/tinystories_valid_head.jsonl
python3 - "$SRC" "$WORK/permuted.jsonl" 7 <<'PY'
import sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
M = (1 << 64) - 1
docs = [l for l in open(src, encoding="utf-8") if l.strip()]
x = seed
def splitmix():
    global x
    x = (x + 0x9e3779b97f4a7c15) & M
    z = x
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
perm = list(range(len(docs)))
for i in range(len(docs) - 1, 0, -1):
    r = i + 1
    limit = M - (M % r)      # UINT64_MAX - UINT64_MAX % range
    while True:
        v = splitmix()
        if v < limit: break
    j = v % r
    perm[i], perm[j] = perm[j], perm[i]
with open(dst, "w", encoding="utf-8") as f:
    for k in perm: f.write(docs[k] if docs[k].endswith("\n") else docs[k] + "\n")
PY
E=(--model.name "$MODEL" --max_seq_len 64 --tokens 640)
"$TLENS" eval "${E[@]}" --data.name "$SRC" --dataset_shuffle --dataset_shuffle_seed 7 --output "$WORK/a" \
  --cache_dir "$WORK/ca" 2>"$WORK/a.log" >/dev/null || { cat "$WORK/a.log"; fail "eval --dataset_shuffle"; }
"$TLENS" eval "${E[@]}" --data.name "$WORK/permuted.jsonl" --output "$WORK/b" --cache_dir "$WORK/cb" \
  2>"$WORK/b.log" >/dev/null || { cat "$WORK/b.log"; fail "eval of the permuted file"; }
"$TLENS" eval "${E[@]}" --data.name "$SRC" --output "$WORK/c" --cache_dir "$WORK/cc" 2>/dev/null >/dev/null \
  || fail "eval unshuffled"
a=$(ls "$WORK"/ca/*.tltok) b=$(ls "$WORK"/cb/*.tltok) c=$(ls "$WORK"/cc/*.tltok)
cmp <(tail -c +257 "$a") <(tail -c +257 "$b") || fail "the shuffled chunks differ from the chunks of the permuted file"
! cmp -s <(tail -c +257 "$a") <(tail -c +257 "$c") || fail "--dataset_shuffle changed nothing"
# a different seed is a different cache
"$TLENS" eval "${E[@]}" --data.name "$SRC" --dataset_shuffle --dataset_shuffle_seed 8 --output "$WORK/d" \
  --cache_dir "$WORK/ca" 2>/dev/null >/dev/null || fail "eval seed 8"
[ "$(ls "$WORK"/ca/*.tltok | wc -l)" -eq 2 ] || fail "seeds 7 and 8 should make two caches"
# progress on a pipe: plain lines at 10% steps; units in the metrics files
grep -q "eval batch 5/10 (50%)" "$WORK/a.log" || { cat "$WORK/a.log"; fail "no plain progress line on a pipe"; }
python3 - "$WORK/a" <<'PY'
import json, math, sys
d = sys.argv[1]
agg = json.load(open(d + "/aggregate_metrics.json"))
assert agg["units"] == "bits_per_byte", agg.get("units")
for b in json.load(open(d + "/batches.jsonl")):
    assert b["units"] == "bits_per_byte"
    for v in b["logit"]["kl"].values(): assert math.isfinite(v)
PY
echo "ok: dataset shuffle, progress lines, units"
