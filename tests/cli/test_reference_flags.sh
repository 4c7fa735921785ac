# Every flag of the reference's `train` and `eval` (tuned-lens 0.2.0: the Model,
# Data, Optimizer and Distributed groups of tuned_lens/scripts/ingredients.py, the
# Train fields of train_loop.py, the Eval fields of eval_loop.py, and Main's
# --log_level) parses with its documented name and a value of its type. The table
# below is the reference's list: a flag missing from tlens fails the test by name.
source "$(dirname "$0")/../sh_common.sh"
DATA=$FIXTURES/data/tinystories_train_head.jsonl
# flag | value ("" = a switch)    groups: Model, Data, Distributed (shared)
shared=(
  "--model.name|$MODEL" "--precision|float32" "--model.revision|main" "--slow_tokenizer|" "--tokenizer|$MODEL/tokenizer.json"
  "--tokenizer_type|LlamaTokenizer"
  "--data.name|$DATA" "--split|validation" "--text_column|text" "--data.revision|main" "--max_seq_len|64"
  "--dataset_shuffle|" "--dataset_shuffle_seed|7"
  "--fsdp|" "--cpu_offload|" "--nccl_timeout|600" "--per_gpu_batch_size|2" "--dataloader_shuffle|"
)
train_only=(  # Optimizer, Train
  "--weight_decay|0.001" "--lr_scale|1.0" "--momentum|0.9" "--zero|" "--optimizer|sgd" "--warmup_steps|0"
  "--output|$WORK/t" "-o|$WORK/t" "--seed|42" "--lens_name_or_path|" "--bias_only|" "--num_steps|2"
  "--tokens_per_step|256" "--wandb|run1" "--token_shift|0" "--checkpoint_freq|1" "--checkpoint_dir|$WORK/t/ck"
  "--loss|kl" "--log_level|INFO"
)
eval_only=(
  "--output|$WORK/e" "-o|$WORK/e" "--lens_name|" "--logit|" "--seed|42" "--tokens|128" "--token_shift|1"
  "--layer_transfer|" "--record_logit_stats|" "--log_level|WARNING"
)
# each flag alone is known (its --help line or a parse without "unknown option")
check_known() { # command flag
  local cmd=$1 flag=$2 out
  out=$("$TLENS" "$cmd" --help)
  grep -q -- "${flag#--}" <<<"$out" || fail "$cmd: --help does not list $flag"
}
args_of() { # name of an array -> the flags with their values, in $ARGS
  local -n arr=$1
  for e in "${arr[@]}"; do
    local f=${e%%|*} v=${e#*|}
    if [ "$f" = "--lens_name_or_path" ] || [ "$f" = "--lens_name" ]; then continue; fi  # a lens folder comes below
    ARGS+=("$f")
    if [ -n "$v" ]; then ARGS+=("$v"); fi
  done
}
for e in "${shared[@]}" "${train_only[@]}"; do f=${e%%|*}; [ "$f" = -o ] || check_known train "$f"; done
for e in "${shared[@]}" "${eval_only[@]}"; do f=${e%%|*}; [ "$f" = -o ] || check_known eval "$f"; done
# all of them at once, on a real (tiny) run: train, then eval of the lens it wrote
ARGS=(); args_of shared; args_of train_only
"$TLENS" train "${ARGS[@]}" --cache_dir "$WORK/cache" --progress False 2>"$WORK/train.log" \
  || { cat "$WORK/train.log"; fail "train with every reference flag"; }
[ -s "$WORK/t/params.pt" ] || fail "no lens from the all-flags run"
ARGS=(); args_of shared; args_of eval_only
"$TLENS" eval "${ARGS[@]}" --lens_name "$WORK/t" --cache_dir "$WORK/cache" --progress False >"$WORK/eval.out" 2>"$WORK/eval.log" \
  || { cat "$WORK/eval.log"; fail "eval with every reference flag"; }
[ -s "$WORK/e/aggregate_metrics.json" ] || fail "no eval results from the all-flags run"
# boolean spellings: --flag, --noflag, --flag True|False|true|false|1|0, --flag=...
B=(--model.name "$MODEL" --data.name "$DATA" --max_seq_len 64 --tokens_per_step 128 --num_steps 1
   --cache_dir "$WORK/cache" --progress=false --checkpoint_freq 0)
i=0
for spelling in "--bias_only" "--bias_only True" "--bias_only=true" "--bias_only 1" "--nobias_only" \
                "--bias_only False" "--bias_only=0" "--bias_only false"; do
  i=$((i + 1))
  # shellcheck disable=SC2086
  "$TLENS" train "${B[@]}" $spelling --output "$WORK/b$i" 2>"$WORK/b.log" || { cat "$WORK/b.log"; fail "spelling '$spelling'"; }
  python3 - "$WORK/b$i" "$spelling" <<'PY' || fail "spelling '$spelling' had the wrong effect"
import json, sys, glob
import subprocess
out, spelling = sys.argv[1], sys.argv[2]
want = not any(s in spelling for s in ("nobias", "False", "false", "=0"))
# bias_only training leaves every translator weight at zero
import struct, zipfile
z = zipfile.ZipFile(out + "/params.pt")
datas = sorted(n for n in z.namelist() if "/data/" in n)
w = z.read(datas[0])  # 0.weight, d x d floats
nonzero = any(struct.unpack("<%df" % (len(w) // 4), w))
sys.exit(0 if nonzero != want else 1)
PY
done
# a bad value names the flag; --precision int8 says why
rc=0; "$TLENS" train "${B[@]}" --bias_only maybe --output "$WORK/x" 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q "unexpected argument 'maybe'" "$WORK/err" || { cat "$WORK/err"; fail "bad bool value: exit $rc"; }
rc=0; "$TLENS" train "${B[@]}" --precision int8 --output "$WORK/x" 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q "precision int8" "$WORK/err" || { cat "$WORK/err"; fail "int8: exit $rc"; }
rc=0; "$TLENS" eval --model.name "$MODEL" --data.name "$DATA" --log_level loud --output "$WORK/x" 2>"$WORK/err" || rc=$?
[ $rc -eq 2 ] && grep -q "log_level: expected debug, info, warning or error" "$WORK/err" || { cat "$WORK/err"; fail "log_level: exit $rc"; }
echo "ok: every reference flag parses; boolean spellings"
