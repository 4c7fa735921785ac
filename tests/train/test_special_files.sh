# A named pipe or a device given where a file is expected (model weights, config,
# corpus, tokenizer, lens, checkpoint) is "not a regular file", exit 1, at once:
# never a hang (every read from outside opens through tl_open_regular).
source "$(dirname "$0")/common.sh"
mkfifo "$WORK/pipe"
ln -s "$WORK/pipe" "$WORK/pipe.jsonl"
# a model folder whose files are a pipe and a device
mkdir -p "$WORK/model_pipe" "$WORK/model_dev"
cp "$MODEL/config.json" "$MODEL/tokenizer.json" "$WORK/model_pipe/"
ln -s "$WORK/pipe" "$WORK/model_pipe/model.safetensors"
cp "$MODEL/model.safetensors" "$MODEL/tokenizer.json" "$WORK/model_dev/"
ln -s /dev/zero "$WORK/model_dev/config.json"
# a lens folder whose params.pt is a device
mkdir -p "$WORK/lens_dev"
ln -s /dev/zero "$WORK/lens_dev/params.pt"
echo '{"base_model_name_or_path": "x", "d_model": 64, "num_hidden_layers": 5, "bias": true}' > "$WORK/lens_dev/config.json"
expect_special() { # expect_special what args...
  local what=$1; shift
  local rc=0
  timeout 60 "$TLENS" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -ne 124 ] || fail "$what: hung"
  [ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "$what: exit $rc, expected 1"; }
  grep -q "not a regular file" "$WORK/err" || { cat "$WORK/err"; fail "$what: no 'not a regular file'"; }
  [ "$(grep -c 'error:' "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; fail "$what: expected one error line"; }
}
T=(--max_seq_len 64 --tokens_per_step 512 --num_steps 1 --cache_dir "$WORK/cache" --progress=false)
expect_special "corpus pipe" train --model.name "$MODEL" --data.name "$WORK/pipe.jsonl" --output "$WORK/o" "${T[@]}"
expect_special "corpus device" train --model.name "$MODEL" --data.name /dev/zero --output "$WORK/o" "${T[@]}"
expect_special "tokenizer pipe" train --model.name "$MODEL" --data.name "$DATA" --tokenizer "$WORK/pipe" --output "$WORK/o" "${T[@]}"
expect_special "weights pipe" info --model "$WORK/model_pipe"
expect_special "config device" info --model "$WORK/model_dev"
expect_special "lens device" eval --model.name "$MODEL" --data.name "$DATA" -l "$WORK/lens_dev" --output "$WORK/o" \
  --max_seq_len 64 --tokens 64 --cache_dir "$WORK/cache"
expect_special "checkpoint pipe" export --checkpoint "$WORK/pipe" --output "$WORK/o"
expect_special "tokenize input device" tokenize --model "$MODEL" --input /dev/zero
[ ! -e "$WORK/o/params.pt" ] || fail "a lens was written"
echo "ok: pipes and devices are refused"
