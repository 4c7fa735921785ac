# A checkpoint is not trusted because its checksums match: numbers that cannot be
# right (a step past --num_steps or 2^63, steps that disagree, Inf in a translator or
# the optimizer state) and missing translators are one error line, exit 1, for resume
# and for export; nothing is exported. The untouched checkpoint still resumes.
source "$(dirname "$0")/common.sh"
TAMPER=$TESTBIN/ckpt_tamper
args=("${BASE[@]}" --num_steps 6 --checkpoint_freq 2 --threads 1)
good="$WORK/good"
rc=0; "$TLENS" train "${args[@]}" --stop_after 2 --output "$good" 2>"$WORK/log" || rc=$?
[ "$rc" -eq 3 ] || { cat "$WORK/log"; fail "stop_after: exit $rc"; }
ck="$good/checkpoints/step_00000002.h5"
[ -f "$ck" ] || fail "no checkpoint at step 2"
expect_refused() { # expect_refused PATTERN ITEM tamper-args...: resume and export both refuse
  local pat=$1; shift
  local case_dir="$WORK/case"
  rm -rf "$case_dir"; cp -r "$good" "$case_dir"
  "$TAMPER" "$case_dir/checkpoints/step_00000002.h5" "$@" || fail "tamper $*"
  local rc=0
  timeout 120 "$TLENS" train "${args[@]}" --output "$case_dir" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "resume after '$*': exit $rc, expected 1"; }
  grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err"; fail "resume after '$*': expected '$pat'"; }
  [ "$(grep -c 'error:' "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; fail "one error line expected"; }
  [ ! -e "$case_dir/params.pt" ] || fail "a lens was written after '$*'"
}
expect_refused "schedule/step 9223372036854775808 is beyond" schedule/step u64 0x8000000000000000
expect_refused "schedule/step 18446744073709551615 is beyond" schedule/step u64 0xffffffffffffffff
expect_refused "optim/step 1 differs from schedule/step 2" optim/step u64 1
expect_refused "schedule/step 4 differs from the file's step 2" schedule/step u64 4
expect_refused "lens holds a non-finite value" lens/1/weight f32 3 inf
expect_refused "optim/momentum_buffer holds a non-finite value" optim/momentum_buffer f32 0 nan
expect_refused "out of range" data/position u64 999999999
# export: a missing translator, or a non-finite one
expect_export_refused() { # PATTERN tamper-args...
  local pat=$1; shift
  cp "$ck" "$WORK/x.h5"
  "$TAMPER" "$WORK/x.h5" "$@" || fail "tamper $*"
  local rc=0
  "$TLENS" export --checkpoint "$WORK/x.h5" --output "$WORK/exp" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "export after '$*': exit $rc, expected 1"; }
  grep -q -- "$pat" "$WORK/err" || { cat "$WORK/err"; fail "export after '$*': expected '$pat'"; }
  [ ! -e "$WORK/exp/params.pt" ] || fail "export wrote a lens after '$*'"
}
expect_export_refused "lens/2/weight" lens/2/weight delete
expect_export_refused "lens/4/bias" lens/4/bias delete
expect_export_refused "non-finite" lens/0/bias f32 1 -inf
# the untouched checkpoint resumes and finishes
"$TLENS" train "${args[@]}" --output "$good" 2>"$WORK/log" || { cat "$WORK/log"; fail "clean resume"; }
"$TLENS" export --checkpoint "$good/checkpoints" --output "$WORK/exp" >/dev/null 2>&1 || fail "clean export"
"$CMP" "$good" "$WORK/exp" || fail "the exported lens differs from the run's own"
# a step whose gradient is not finite stops the run before its update: the error names
# the step, the last checkpoint (step 2) stays, nothing is exported, and the run resumed
# without the fault ends with the uninterrupted run's lens
nanrun="$WORK/nan"
rc=0; TLENS_FAULT=nan_grad:3 "$TLENS" train "${args[@]}" --output "$nanrun" 2>"$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "nan_grad: exit $rc, expected 1"; }
grep -q "step 3: the gradient norm is not finite" "$WORK/err" || { cat "$WORK/err"; fail "nan_grad: message"; }
[ ! -e "$nanrun/params.pt" ] || fail "a lens was exported after a non-finite step"
ls "$nanrun/checkpoints" | grep -qx step_00000002.h5 || fail "the step-2 checkpoint is gone"
! ls "$nanrun/checkpoints" | grep -q step_00000003 || fail "a checkpoint of the failed step was written"
"$TLENS" train "${args[@]}" --output "$nanrun" 2>"$WORK/log" || { cat "$WORK/log"; fail "resume after nan_grad"; }
"$CMP" "$good" "$nanrun" || fail "the lens resumed after a non-finite step differs from the uninterrupted run's"
echo "ok: tampered checkpoints refused; a non-finite step stops before its update"
