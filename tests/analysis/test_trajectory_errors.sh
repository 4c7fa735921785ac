#!/bin/bash
# tlens trajectory on bad inputs: one line "tlens trajectory: error: ..." on stderr,
# exit status != 0, nothing written. Then what must work: a lens trained on another
# model of the same shape only warns (as the reference), the table without
# --output, --help.
set -uo pipefail
source "$SRC/tests/analysis/common.sh"
S=$FIXTURES/models/stories260k
SL=$FIXTURES/golden/trajectory/stories260k/lens
LL=$FIXTURES/golden/llama/model

# a lens whose d_model differs from the model's
mkdir -p "$WORK/lens_d32"
sed 's/"d_model": 64/"d_model": 32/' "$SL/config.json" > "$WORK/lens_d32/config.json"
cp "$SL/params.pt" "$WORK/lens_d32/"
echo '[1, 337, 403, 132]' > "$WORK/four.json"
echo '[1, 337, 403]' > "$WORK/three.json"
printf '"Once upon a time"\n"Hi"\n' > "$WORK/uneven.jsonl"

expect_error unknown_stat "unknown statistic 'entropi'" --model "$S" --text "Once upon a time" --stats entropy,entropi
expect_error stat_twice "listed twice" --model "$S" --text "Once upon a time" --stats entropy,entropy
expect_error not_one_token "'upon a time' is not one token" --model "$S" --text "Once upon" --targets "▁upon,upon a time,2"
expect_error not_a_token "'t9999' is not one token" --model "$S" --input_ids "$WORK/four.json" --targets "337,403,132,t9999"
expect_error target_count "4 tokens given for a sequence of 3" --model "$S" --input_ids "$WORK/three.json" --targets "1,2,3,4"
expect_error slice_range "out of range for 4 tokens" --model "$S" --input_ids "$WORK/four.json" --slice 2:40
expect_error slice_neg "out of range for 4 tokens" --model "$S" --input_ids "$WORK/four.json" --slice -9:2
expect_error slice_empty "selects no positions" --model "$S" --input_ids "$WORK/four.json" --slice 3:1
expect_error slice_syntax "expected start:stop" --model "$S" --input_ids "$WORK/four.json" --slice 3
expect_error clip "min must be less than max" --model "$S" --input_ids "$WORK/four.json" --clip 2:1
expect_error d_model "d_model" --model "$S" -l "$WORK/lens_d32" --input_ids "$WORK/four.json"
expect_error layers "layer" --model "$S" -l "$FIXTURES/golden/llama/lens" --input_ids "$WORK/four.json"
expect_error other_length "different shapes" --model "$S" --input_ids "$WORK/four.json" --other_input_ids "$WORK/three.json"
expect_error no_other "compares with another input" --model "$S" --input_ids "$WORK/four.json" --stats kl
expect_error no_anti "needs --anti_targets" --model "$S" --input_ids "$WORK/four.json" --stats log_prob_diff
expect_error no_input "exactly one of --text" --model "$S"
expect_error two_inputs "exactly one of --text" --model "$S" --text hi --input_ids "$WORK/four.json"
expect_error uneven_prompts "equal length" --model "$S" --prompts "$WORK/uneven.jsonl"
echo '[1, 512]' > "$WORK/big.json"
expect_error id_range "outside the vocabulary" --model "$S" --input_ids "$WORK/big.json"
expect_error no_tokenizer "needs a tokenizer" --model "$LL" --text "hello"
expect_error no_model "model" --text "hello"
expect_error bad_flag "unknown option" --model "$S" --text hi --nonsense 3

# a lens of another model with the same shape: a warning, and it runs
"$TLENS" trajectory --model "$LL" -l "$FIXTURES/golden/gpt2/lens" --input_ids "$WORK/four.json" \
  --vocab "$FIXTURES/golden/trajectory/llama/vocab.json" --stats entropy > "$WORK/hash.out" 2> "$WORK/hash.err"
if [ $? -ne 0 ] || ! grep -q "hash does not match" "$WORK/hash.err"; then
  echo "FAIL hash mismatch should only warn:"; cat "$WORK/hash.err"; fails=$((fails + 1))
else echo "ok   hash mismatch warns"; fi

# the table on stdout: the layers, the input tokens and the output row's labels
"$TLENS" trajectory --model "$S" -l "$SL" --logit --text "Once upon a time" --stats entropy,forward_kl > "$WORK/table.out" 2>&1
if [ $? -ne 0 ] || ! grep -q "^tuned lens: Entropy (nats)" "$WORK/table.out" || ! grep -q "^logit lens: Forward KL (nats)" "$WORK/table.out" \
   || ! grep -q "^output " "$WORK/table.out" || ! grep -q "▁upon" "$WORK/table.out"; then
  echo "FAIL table:"; cat "$WORK/table.out"; fails=$((fails + 1))
else echo "ok   table"; fi

"$TLENS" trajectory --help > "$WORK/help.out" && grep -q "symmetrised KL" "$WORK/help.out" || { echo "FAIL --help"; fails=$((fails + 1)); }
[ $fails -eq 0 ] && echo "trajectory errors: ok" || { echo "trajectory errors: $fails failed"; exit 1; }
