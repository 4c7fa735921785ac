# Preemption and resume are exact: a run stopped (SIGUSR1, SIGTERM, SIGINT, --stop_after, or
# kill -9 at several points) and started again ends with a params.pt bitwise identical
# to the uninterrupted run's. Also: a corrupt newest checkpoint is skipped for the
# previous one, rotation keeps --checkpoint_keep files, and a checkpoint from another
# configuration is refused unless --force.
source "$(dirname "$0")/common.sh"
ARGS=("${BASE[@]}" --num_steps 12 --checkpoint_freq 2 --threads 2)
"$TLENS" train "${ARGS[@]}" --output "$WORK/full" 2>"$WORK/full.log" || { cat "$WORK/full.log"; fail "full run"; }

# 1. --stop_after: checkpoint and exit 3, then resume
rc=0; "$TLENS" train "${ARGS[@]}" --stop_after 5 --output "$WORK/stop2" 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "--stop_after: exit status $rc, expected 3"
ls "$WORK/stop2/checkpoints" | grep -q step_00000005.h5 || fail "no checkpoint at step 5"
"$TLENS" train "${ARGS[@]}" --output "$WORK/stop2" 2>"$WORK/stop2.log" || { cat "$WORK/stop2.log"; fail "resume"; }
grep -q "resuming from .*step_00000005.h5 at step 5" "$WORK/stop2.log" || fail "did not resume from step 5"
cmp "$WORK/full/params.pt" "$WORK/stop2/params.pt" || fail "resumed lens differs (stop_after)"
ls "$WORK/stop2/checkpoints" | wc -l | grep -qx 2 || fail "rotation: expected 2 checkpoints kept"

# a longer run for the signal and kill -9 tests, so they land mid-run
LONG=("${BASE[@]}" --num_steps 60 --checkpoint_freq 3 --threads 1)
"$TLENS" train "${LONG[@]}" --output "$WORK/full60" 2>"$WORK/full60.log" || { cat "$WORK/full60.log"; fail "full 60-step run"; }

# 2. real signals: USR1 and TERM while training (slowed down with a long run), 2 ranks
for sig in USR1 TERM; do
  out="$WORK/sig$sig"
  ranks 2 train "${LONG[@]}" --output "$out" 2>"$out.log" &
  pid=$!
  # wait for the first step's metrics, then signal the ranks
  for _ in $(seq 1 200); do [ -s "$out/metrics.jsonl" ] && break; sleep 0.05; done
  pkill -"$sig" -f "^$TLENS train.*$out" || true  # the ranks, not mpirun
  rc=0; wait $pid || rc=$?
  if [ "$rc" -eq 0 ]; then
    fail "the run finished before SIG$sig arrived"
  else
    [ "$rc" -eq 3 ] || { cat "$out.log"; fail "SIG$sig: exit $rc, expected 3"; }
    grep -q "stopped at step" "$out.log" || fail "SIG$sig: no stop message"
  fi
  ranks 2 train "${LONG[@]}" --output "$out" 2>>"$out.log" || { cat "$out.log"; fail "resume after SIG$sig"; }
  "$CMP" "$WORK/full60" "$out" 1e-5 >/dev/null || fail "2-rank run resumed after SIG$sig differs from 1 rank beyond 1e-5"
done

# 2b. Ctrl-C (SIGINT) on one rank, once training runs: the same stop, then an exact
#     resume. (A background job starts with SIGINT ignored, which tlens respects:
#     env --default-signal gives it the terminal's default back.)
out="$WORK/sigINT"
env --default-signal=INT "$TLENS" train "${LONG[@]}" --output "$out" 2>"$out.log" &
pid=$!
for _ in $(seq 1 200); do [ -s "$out/metrics.jsonl" ] && break; sleep 0.05; done
kill -INT $pid 2>/dev/null || true
rc=0; wait $pid || rc=$?
[ "$rc" -eq 3 ] || { cat "$out.log"; fail "SIGINT: exit $rc, expected 3 (or the run finished first)"; }
grep -q "interrupted: finishing this step" "$out.log" || fail "SIGINT: no message"
"$TLENS" train "${LONG[@]}" --output "$out" 2>>"$out.log" || { cat "$out.log"; fail "resume after SIGINT"; }
cmp "$WORK/full60/params.pt" "$out/params.pt" || fail "lens resumed after SIGINT differs"

# 3. kill -9 at several points; each resume must end bitwise identical to an
#    uninterrupted run with the same world size (1 rank here)
for kill_after in 0.2 0.7 1.2; do
  out="$WORK/kill$kill_after"
  "$TLENS" train "${LONG[@]}" --output "$out" 2>/dev/null &
  pid=$!
  sleep "$kill_after"
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  "$TLENS" train "${LONG[@]}" --output "$out" 2>"$out.log" || { cat "$out.log"; fail "resume after kill -9 at ${kill_after}s"; }
  cmp "$WORK/full60/params.pt" "$out/params.pt" || fail "lens after kill -9 at ${kill_after}s differs"
  ! ls "$out/checkpoints" | grep -q tmp || fail "a temporary checkpoint was left behind"
done

# 4. a corrupt newest checkpoint is skipped with a warning; the previous one is used
out="$WORK/corrupt"
rc=0; "$TLENS" train "${ARGS[@]}" --stop_after 6 --output "$out" 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "stop_after 6: exit $rc"
newest=$(ls "$out/checkpoints"/step_*.h5 | sort | tail -1)
size=$(stat -c %s "$newest")
truncate -s $((size / 2)) "$newest"
"$TLENS" train "${ARGS[@]}" --output "$out" 2>"$out.log" || { cat "$out.log"; fail "resume past a corrupt checkpoint"; }
grep -q "warning: .*step_00000006.h5" "$out.log" || { cat "$out.log"; fail "no warning about the corrupt checkpoint"; }
grep -q "resuming from .*step_00000004.h5" "$out.log" || fail "did not fall back to step 4"
cmp "$WORK/full/params.pt" "$out/params.pt" || fail "lens after the fallback differs"

# 5. an incompatible configuration is refused unless --force
out="$WORK/compat"
rc=0; "$TLENS" train "${ARGS[@]}" --stop_after 2 --output "$out" 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || fail "stop_after 2: exit $rc"
rc=0; "$TLENS" train "${ARGS[@]}" --lr_scale 0.5 --output "$out" 2>"$out.log" || rc=$?
[ "$rc" -eq 1 ] || fail "changed lr_scale: exit $rc, expected 1"
[ "$(grep -c 'error:' "$out.log")" -eq 1 ] && grep -q "lr_scale" "$out.log" || { cat "$out.log"; fail "expected one error line naming lr_scale"; }
"$TLENS" train "${ARGS[@]}" --lr_scale 0.5 --force --output "$out" 2>"$out.log" || { cat "$out.log"; fail "--force"; }

# 6. elastic: a ZeRO-sharded 2-rank checkpoint resumed on 1 rank (and 1 -> 4)
out="$WORK/elastic"
rc=0; ranks 2 train "${ARGS[@]}" --threads 1 --zero --stop_after 4 --output "$out" 2>"$out.log" || rc=$?
[ "$rc" -eq 3 ] || { cat "$out.log"; fail "zero stop_after: exit $rc"; }
"$TLENS" train "${ARGS[@]}" --output "$out" 2>"$out.log" || { cat "$out.log"; fail "elastic resume 2 -> 1"; }
grep -q "written by 2 ranks, now 1" "$out.log" || fail "elastic resume message"
"$CMP" "$WORK/full" "$out" 1e-5 || fail "elastic 2 -> 1 differs"
out="$WORK/elastic4"
rc=0; "$TLENS" train "${ARGS[@]}" --stop_after 3 --output "$out" 2>/dev/null || rc=$?
ranks 4 train "${ARGS[@]}" --threads 1 --zero --output "$out" 2>"$out.log" || { cat "$out.log"; fail "elastic resume 1 -> 4 (zero)"; }
"$CMP" "$WORK/full" "$out" 1e-5 || fail "elastic 1 -> 4 differs"
echo ok
