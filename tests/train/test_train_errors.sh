# Bad input to train and eval: each is one error line naming the field or file, a
# non-zero exit, and no lens written.
source "$(dirname "$0")/common.sh"
expect_error() { # expect_error "pattern" args...: exit != 0, one line on stderr matching pattern
  local pat=$1; shift
  local rc=0
  "$TLENS" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "expected failure: $*"
  grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err"; fail "expected '$pat' for: $*"; }
  [ "$(grep -c 'error:' "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; fail "expected exactly one error line: $*"; }
  ! grep -qi -e 'segmentation' -e 'sanitizer' -e 'MPI_ABORT' "$WORK/err" || fail "crash: $*"
}
O=(--output "$WORK/o")
expect_error "model.name" train --data.name "$DATA" "${O[@]}"
expect_error "data.name" train --model.name "$MODEL" "${O[@]}"
expect_error "output" train --model.name "$MODEL" --data.name "$DATA"
expect_error "num_steps: expected an integer" train "${BASE[@]}" --num_steps ten "${O[@]}"
expect_error "unknown option '--num_stepz'" train "${BASE[@]}" --num_stepz 3 "${O[@]}"
expect_error "loss: expected kl or ce" train "${BASE[@]}" --loss mse "${O[@]}"
expect_error "optimizer: expected sgd or adam" train "${BASE[@]}" --optimizer lion "${O[@]}"
expect_error "lens_precision: expected fp32 or bf16" train "${BASE[@]}" --lens_precision fp16 "${O[@]}"
expect_error "not a multiple of the sequence length" train "${BASE[@]}" --tokens_per_step 100 "${O[@]}"
expect_error "config.json" train "${BASE[@]}" --model.name "$WORK" "${O[@]}"
expect_error "nope.jsonl" train "${BASE[@]}" --data.name "$WORK/nope.jsonl" "${O[@]}"
# too little data for the requested steps: the reference once wrapped silently
expect_error "num_steps\|samples\|enough" train "${BASE[@]}" --num_steps 100000 "${O[@]}"
printf '{"text": "fine"}\nnot json\n' > "$WORK/bad.jsonl"
expect_error "bad.jsonl:2: not a JSON" train "${BASE[@]}" --data.name "$WORK/bad.jsonl" "${O[@]}"
echo '{"max_seq_len": "long"}' > "$WORK/bad_config.json"
expect_error "bad_config.json" train "${BASE[@]}" --config "$WORK/bad_config.json" "${O[@]}"
expect_error "lens" train "${BASE[@]}" -l "$WORK/no_lens" "${O[@]}"
[ ! -e "$WORK/o/params.pt" ] || fail "a failed run wrote a lens"
# eval
expect_error "nothing to evaluate" eval --model.name "$MODEL" --data.name "$DATA" --nologit "${O[@]}"
expect_error "tokens" eval --model.name "$MODEL" --data.name "$DATA" --max_seq_len 64 --tokens 999999999 "${O[@]}"
expect_error "unknown option" eval --bogus
# the example configs parse (the error is about their placeholder model folder, not a key)
expect_error "models/EleutherAI/pythia-160m-deduped" train --config "$SRC/configs/pythia-160m.json" --output "$WORK/o"
expect_error "models/EleutherAI/pythia-160m-deduped" eval --config "$SRC/configs/eval.json" --output "$WORK/o"
expect_error "model.name" train --config "$SRC/configs/stories260k-demo.json" --output "$WORK/o"
# the demo's configuration (jobs/demo.sh) fits its corpus and starts training
rc=0; "$TLENS" train --config "$SRC/configs/stories260k-demo.json" --model.name "$MODEL" \
  --data.name "$FIXTURES/data/tinystories_train_head.jsonl.zst" --output "$WORK/demo" --stop_after 1 \
  --progress=false 2>"$WORK/demo.log" || rc=$?
[ "$rc" -eq 3 ] || { cat "$WORK/demo.log"; fail "the demo configuration does not train on its corpus (exit $rc)"; }
# --help works for both
"$TLENS" train --help | grep -q -- "--checkpoint_freq" || fail "train --help"
"$TLENS" eval --help | grep -q -- "--layer_transfer" || fail "eval --help"
echo ok
