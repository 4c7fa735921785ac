# Chaos: a 2-rank training run is killed with SIGKILL at 20 seeded pseudo-random
# moments (a seeded number of logged steps plus a seeded delay, so the schedule does
# not depend on the machine's speed) and started again after each; some land half-way through a
# checkpoint write (TLENS_FAULT=ckpt_kill:S kills rank 0 inside the writer). The
# final params.pt is bitwise identical to the uninterrupted run's. Label: chaos.
source "$(dirname "$0")/common.sh"
RANDOM=20261203 # the seed of the kill schedule
ARGS=("${BASE[@]}" --num_steps 600 --checkpoint_freq 4 --checkpoint_keep 2 --threads 1)
last_step() { # the last step the run logged (0 before any)
  local l; l=$(grep -o '"step": [0-9]*' "$out/metrics.jsonl" 2>/dev/null | tail -1 | grep -o '[0-9]*$' || true)
  echo "${l:-0}"
}
killall2() { # SIGKILL to every process of the attempt's session (the launcher and the ranks,
  # which Open MPI puts in process groups of their own), then wait until none is left
  pkill -9 -s "$PID" 2>/dev/null || true
  for _ in $(seq 100); do pgrep -s "$PID" >/dev/null || break; sleep 0.05; done
  ! pgrep -s "$PID" >/dev/null || fail "processes of attempt $PID survived SIGKILL"
}
run2() { # run2 OUT [env...]: starts one 2-rank attempt in its own process group (PID)
  local out=$1; shift
  setsid env TLENS_FAULT= "$@" "$MPIEXEC" -np 2 --oversubscribe -x OMP_NUM_THREADS=1 -x TLENS_FAULT \
    "$TLENS" train "${ARGS[@]}" --output "$out" >>"$WORK/chaos.log" 2>&1 &
  PID=$!
}
# the reference: uninterrupted
"$MPIEXEC" -np 2 --oversubscribe -x OMP_NUM_THREADS=1 "$TLENS" train "${ARGS[@]}" --output "$WORK/ref" \
  2>"$WORK/ref.log" || { cat "$WORK/ref.log"; fail "uninterrupted run"; }
out="$WORK/chaos"
kills=0 inwrite=0 attempts=0
while [ ! -s "$out/params.pt" ]; do
  attempts=$((attempts + 1))
  [ $attempts -le 60 ] || { tail -30 "$WORK/chaos.log"; fail "no finish after $attempts attempts"; }
  if [ $kills -lt 20 ] && [ $((kills % 4)) -eq 3 ]; then
    # inside a checkpoint write: the next even step from where the run stands
    last=$(ls "$out/checkpoints" 2>/dev/null | sed -n 's/^step_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
    s=$(( ${last:-0} + 4 ))
    run2 "$out" TLENS_FAULT=ckpt_kill:$s
    rc=0; wait "$PID" || rc=$?
    killall2
    [ $rc -ne 0 ] || fail "the run with ckpt_kill:$s was not killed"
    [ -e "$out/checkpoints/step_$(printf %08d $s).h5" ] && fail "the checkpoint of step $s was completed"
    kills=$((kills + 1)) inwrite=$((inwrite + 1))
    echo "kill $kills: inside the checkpoint write of step $s" >>"$WORK/schedule"
  elif [ $kills -lt 20 ]; then
    # a moment tied to the run's progress, not to the clock (machines differ 10x): once
    # the run has logged a seeded number of further steps, a seeded delay, then SIGKILL
    at=$(last_step)
    ahead=$(( RANDOM % 5 + 1 )) delay=$(( RANDOM % 50 ))
    run2 "$out"
    for _ in $(seq 2000); do
      [ "$(last_step)" -ge $((at + ahead)) ] && break
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.01
    done
    sleep "$(printf '0.%03d' "$delay")"
    killall2
    wait "$PID" 2>/dev/null || true
    kills=$((kills + 1))
    echo "kill $kills: SIGKILL to every rank ${delay} ms after step $((at + ahead))" >>"$WORK/schedule"
  else
    run2 "$out"
    wait "$PID" || { tail -30 "$WORK/chaos.log"; fail "the final resume failed"; }
  fi
done
cat "$WORK/schedule"
[ $kills -eq 20 ] || fail "only $kills kills before the run finished"
[ $inwrite -ge 3 ] || fail "only $inwrite kills inside a checkpoint write"
! ls "$out/checkpoints" | grep -q tmp || fail "a temporary checkpoint survived: $(ls "$out/checkpoints")"
cmp "$WORK/ref/params.pt" "$out/params.pt" || fail "after $kills kills the lens differs from the uninterrupted run's"
echo "ok: $kills kills ($inwrite inside a checkpoint write), $attempts attempts, params.pt bitwise equal"
