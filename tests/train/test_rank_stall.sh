# A rank that stops responding (TLENS_FAULT=stall:3 stalls the last of 2 ranks before
# step 3) must not keep the other waiting for ever: within --nccl_timeout the waiting
# rank prints one error line naming the collective and the timeout and the job ends
# with a non-zero status, not a hang. The checkpoint of step 2 stays and resumes.
source "$(dirname "$0")/common.sh"
out="$WORK/o"
args=("${BASE[@]}" --num_steps 4 --checkpoint_freq 2 --threads 1 --output "$out")
t0=$(date +%s)
rc=0
TLENS_FAULT=stall:3 timeout 120 "$MPIEXEC" -np 2 --oversubscribe -x OMP_NUM_THREADS=1 -x TLENS_FAULT \
  "$TLENS" train "${args[@]}" --nccl_timeout 3 2>"$WORK/err" || rc=$?
t=$(( $(date +%s) - t0 ))
[ "$rc" -ne 124 ] || { cat "$WORK/err"; fail "the job hung past the timeout"; }
[ "$rc" -ne 0 ] || { cat "$WORK/err"; fail "a stalled rank ended in success"; }
grep -q "^tlens train\|^tlens: error: .* did not complete within 3 s (--nccl_timeout)" "$WORK/err" || true
grep -q "did not complete within 3 s (--nccl_timeout): another rank has died or stopped" "$WORK/err" \
  || { cat "$WORK/err"; fail "no timeout message"; }
[ "$t" -lt 60 ] || fail "took $t s to notice a stalled rank with a 3 s timeout"
[ ! -e "$out/params.pt" ] || fail "a lens was exported"
ls "$out/checkpoints" | grep -qx step_00000002.h5 || fail "the step-2 checkpoint is gone"
"$MPIEXEC" -np 2 --oversubscribe -x OMP_NUM_THREADS=1 "$TLENS" train "${args[@]}" 2>"$WORK/log" \
  || { cat "$WORK/log"; fail "resume after the stall"; }
[ -s "$out/params.pt" ] || fail "no lens after the resume"
echo "ok: a stalled rank ends the job within the timeout ($t s)"
