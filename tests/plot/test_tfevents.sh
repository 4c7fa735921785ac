# TensorBoard event files read back by an independent reader (check_tfevents.py:
# the TFRecord framing with every CRC checked in Python, the Events parsed by
# Google's protobuf runtime from a .proto of the test): a file of known scalars
# written by test_tfevents, and the events of `tlens train` against its
# metrics.jsonl: --wandb NAME on text (bits per byte) stopped and resumed (two
# files, read in name order), --tensorboard DIR on pre-tokenized ids (nats per
# token). Skipped (77) without Python's protobuf or protoc
# (Debian: python3-protobuf, protobuf-compiler).
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}" "${TESTBIN:?}" "${SRC:?}" "${WORK:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
# train and eval start MPI, whose plugins leak at exit in frames LeakSanitizer
# cannot name or suppress: leak checks off for them alone (compare keeps them)
ranked() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" "$TLENS" "$@"; }
rm -rf "$WORK" && mkdir -p "$WORK"
PY=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c "import google.protobuf" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no Python with google.protobuf (Debian python3-protobuf)"; exit 77; }
command -v protoc >/dev/null || { echo "SKIP: no protoc (Debian protobuf-compiler)"; exit 77; }
WORK="$WORK" "$TESTBIN/test_tfevents" 2>"$WORK/test.log" || { cat "$WORK/test.log"; exit 1; }
"$PY" "$SRC/tests/plot/check_tfevents.py" "$WORK/proto" "$WORK/api" --expect "$WORK/api.expected.json"

CHECK="$PY $SRC/tests/plot/check_tfevents.py $WORK/proto"
BASE=(--model.name "$FIXTURES/models/stories260k" --max_seq_len 64 --tokens_per_step 256 --num_steps 6
      --checkpoint_freq 3 --cache_dir "$WORK/cache" --progress=false)
TEXT=(--data.name "$FIXTURES/data/tinystories_train_head.jsonl" --wandb "run 1/a" --output "$WORK/bpb")
st=0
ranked train "${BASE[@]}" "${TEXT[@]}" --stop_after 3 2>"$WORK/bpb.log" || st=$?
[ $st -eq 3 ] || { cat "$WORK/bpb.log"; fail "stop_after: status $st"; }
ranked train "${BASE[@]}" "${TEXT[@]}" 2>>"$WORK/bpb.log" || { cat "$WORK/bpb.log"; fail "train"; }
! grep -q "TensorBoard" "$WORK/bpb.log" || { cat "$WORK/bpb.log"; fail "a warning about the events"; }
[ "$(ls "$WORK/bpb/tensorboard/run 1_a" | grep -c '^events.out.tfevents.')" -eq 2 ] || fail "two event files expected"
grep -q loss_bpb "$WORK/bpb/metrics.jsonl" || fail "the text run should know bytes"
$CHECK "$WORK/bpb/tensorboard/run 1_a" --metrics "$WORK/bpb/metrics.jsonl"

# pre-tokenized ids without byte counts: losses in nats per token
"$PY" - "$WORK/ids.safetensors" <<'PY'
import json, struct, sys
n, t = 32, 64
ids = [(i * 7919 + j * 104729) % 512 for i in range(n) for j in range(t)]
head = json.dumps({"input_ids": {"dtype": "I64", "shape": [n, t], "data_offsets": [0, 8 * n * t]}}).encode()
head += b" " * (-len(head) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(head)) + head + struct.pack(f"<{n * t}q", *ids))
PY
ranked train "${BASE[@]}" --data.name "$WORK/ids.safetensors" --tensorboard "$WORK/tb" --output "$WORK/nats" \
  2>"$WORK/nats.log" || { cat "$WORK/nats.log"; fail "train on ids"; }
! grep -q loss_bpb "$WORK/nats/metrics.jsonl" || fail "the ids run should not know bytes"
[ ! -e "$WORK/nats/tensorboard" ] || fail "--tensorboard DIR writes nothing under the output"
$CHECK "$WORK/tb" --metrics "$WORK/nats/metrics.jsonl"
echo ok
