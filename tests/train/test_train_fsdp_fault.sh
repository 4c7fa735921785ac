# A failed FSDP all-gather (injected with TLENS_FAULT on every rank, as MPI reports a
# failed collective to every rank taking part) stops a 2-rank --fsdp run: each rank
# prints one error line naming the gather, mpirun exits 1 (not a signal), nothing hangs,
# no lens is written; the same command without the fault then trains to the end.
source "$(dirname "$0")/common.sh"
out="$WORK/o"
args=("${BASE[@]}" --num_steps 4 --checkpoint_freq 2 --threads 1 --fsdp --output "$out")
rc=0
# layer 1's gather fails in every forward: the very first step stops
TLENS_FAULT=fsdp_gather:1 timeout 120 "$MPIEXEC" -np 2 --oversubscribe -x OMP_NUM_THREADS=1 -x TLENS_FAULT \
  "$TLENS" train "${args[@]}" 2>"$WORK/err" || rc=$?
[ "$rc" -ne 124 ] || { cat "$WORK/err"; fail "the run hung after a failed gather"; }
[ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "exit status $rc, expected 1"; }
! grep -qi -e 'signal' -e 'segmentation' -e 'sanitizer' -e 'MPI_ABORT' -e 'core dumped' "$WORK/err" \
  || { cat "$WORK/err"; fail "a rank crashed"; }
grep -q '^tlens train: error: .*all-gather of layer 1 failed' "$WORK/err" || { cat "$WORK/err"; fail "no error line from rank 0"; }
grep -q '^tlens\[1\] train: error: .*all-gather of layer 1 failed' "$WORK/err" || { cat "$WORK/err"; fail "no error line from rank 1"; }
[ "$(grep -c 'error:' "$WORK/err")" -eq 2 ] || { cat "$WORK/err"; fail "expected one error line per rank"; }
[ ! -e "$out/params.pt" ] || fail "a failed run wrote a lens"
# without the fault the same command trains to the end
"$MPIEXEC" -np 2 --oversubscribe -x OMP_NUM_THREADS=1 "$TLENS" train "${args[@]}" 2>"$WORK/err2" \
  || { cat "$WORK/err2"; fail "the run without the fault failed"; }
[ -s "$out/params.pt" ] || fail "no lens after the clean run"
echo "ok: a failed all-gather is an error line on every rank, exit 1"
