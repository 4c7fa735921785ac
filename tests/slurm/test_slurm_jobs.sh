#!/usr/bin/env bash
# jobs/train.sbatch on a real single-node Slurm cluster (started here, stopped on exit):
#  (a) a 2-rank training job (srun --mpi=pmix) runs to the end: the reference run;
#  (b) the same job requeued from outside (`scontrol requeue`) mid-run checkpoints, is
#      requeued, restarts and resumes: its final params.pt is bitwise identical to (a)'s;
#  (c) the same job preempted for real by a job in the higher-priority partition that
#      needs every CPU: USR1 at the start of the grace period, checkpoint, self-requeue,
#      restart after the preemptor, resume, and again params.pt identical to (a)'s.
# The uninterrupted run is the reference: resuming must not change a single bit.
# Needs root and apt (slurm-up.sh installs Slurm); elsewhere it fails, or is skipped
# (exit 77) when TLENS_SKIP_SLURM=1.
set -euo pipefail
for v in TLENS FIXTURES SRC WORK; do
  [ -n "${!v:-}" ] || { echo "FAIL: environment variable $v is not set"; exit 1; }
done
# Open MPI's plugins leak at exit in frames LeakSanitizer cannot name or suppress;
# address and undefined-behaviour checks stay on in sanitizer builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
t_start=$(date +%s)
say() { echo "[$(( $(date +%s) - t_start ))s] $*"; }
fail() { echo "FAIL: $*"; exit 1; }

if [ "$(id -u)" != 0 ]; then
  [ "${TLENS_SKIP_SLURM:-0}" = 1 ] && { echo "SKIP: the Slurm tests need root"; exit 77; }
  fail "the Slurm tests need root to start slurmctld/slurmd/munged (set TLENS_SKIP_SLURM=1 to skip them)"
fi

rm -rf "$WORK"
mkdir -p "$WORK"
# Short path under /tmp: Slurm and munge put Unix sockets there (108-byte path limit).
BASE=/tmp/tlens-slurm-$$
cleanup() {
  bash "$SRC/tests/slurm/slurm-down.sh" "$BASE" || true
  if [ -d "$BASE/log" ]; then mkdir -p "$WORK/slurm-logs"; cp -r "$BASE/log/." "$WORK/slurm-logs/" || true; fi
  rm -rf "$BASE"
}
trap cleanup EXIT

rc=0
bash "$SRC/tests/slurm/slurm-up.sh" "$BASE" || rc=$?
if [ $rc = 77 ]; then
  [ "${TLENS_SKIP_SLURM:-0}" = 1 ] && { echo "SKIP: no local Slurm cluster (see above)"; exit 77; }
  fail "cannot start a local Slurm cluster (see above; set TLENS_SKIP_SLURM=1 to skip the Slurm tests)"
fi
[ $rc = 0 ] || fail "slurm-up.sh failed (logs in $WORK/slurm-logs)"
export SLURM_CONF=$BASE/etc/slurm.conf
say "slurm up"

ncpu=$(nproc)
MODEL=$FIXTURES/models/stories260k
DATA=$FIXTURES/data/tinystories_train_head.jsonl
# Long enough (~15 s here) that an interruption after the first checkpoint lands
# well before the end; the data holds 8122 samples of 128 tokens, 16 per step.
# A sanitizer build steps ~8x slower: fewer steps keep the same margin in less time.
if ldd "$TLENS" 2>/dev/null | grep -q libasan; then STEPS=${TLENS_SLURM_STEPS:-60}
else STEPS=${TLENS_SLURM_STEPS:-250}; fi
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] && [ "$STEPS" -le 500 ] || fail "TLENS_SLURM_STEPS: '$STEPS' is not an integer in 1..500"
ARGS="--max_seq_len 128 --tokens_per_step 2048 --per_gpu_batch_size 4 --checkpoint_freq 10 --seed 42"
[ -d "$MODEL" ] && [ -f "$DATA" ] || fail "fixtures missing: $MODEL, $DATA"

# submit NAME [sbatch options...]: a 2-rank training run writing to $WORK/NAME. One token
# cache for every run (flags after the script go to tlens as they are): tokenizing the
# corpus is not what is tested here.
submit() {
  local name=$1; shift
  TLENS_BIN=$TLENS TLENS_MODEL=$MODEL TLENS_DATA=$DATA TLENS_OUTPUT=$WORK/$name \
  TLENS_STEPS=$STEPS TLENS_ARGS=$ARGS TLENS_LAUNCH=srun OMP_NUM_THREADS=1 \
    sbatch --parsable -J "tlens-$name" -n 2 -o "$WORK/$name.out" "$@" "$SRC/jobs/train.sbatch" \
    --cache_dir "$WORK/cache"
}
field() { scontrol -o show job "$1" 2>/dev/null | grep -oP "(^| )$2=\K\S+" || true; }
# wait_state JOB REGEX SECONDS
wait_state() {
  local _
  for _ in $(seq 1 $(( $3 * 2 ))); do
    [[ "$(field "$1" JobState)" =~ ^($2)$ ]] && return 0
    sleep 0.5
  done
  return 1
}
# A checkpoint is complete once it has its final name, step_<8 digits>.h5 (it is written
# as *.tmp and renamed).
has_checkpoint() {
  [ -d "$1/checkpoints" ] && [ -n "$(find "$1/checkpoints" -maxdepth 1 -name 'step_*.h5' -print -quit)" ]
}
# wait_mid_run NAME JOB: until the run has a complete checkpoint but is not finished.
wait_mid_run() {
  local _
  for _ in $(seq 1 240); do
    [ -e "$WORK/$1/params.pt" ] && fail "$1: the run finished before it could be interrupted (raise TLENS_SLURM_STEPS)"
    has_checkpoint "$WORK/$1" && return 0
    [[ "$(field "$2" JobState)" =~ ^(RUNNING|PENDING|CONFIGURING)$ ]] || { cat "$WORK/$1.out"; fail "$1: job $2 ended before its first checkpoint"; }
    sleep 0.25
  done
  cat "$WORK/$1.out"; fail "$1: no checkpoint after 60 s"
}
# finished NAME JOB RESTARTS: the job completed with that many restarts, wrote the lens.
finished() {
  local state
  wait_state "$2" 'COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE' 240 || true
  state=$(field "$2" JobState)
  [ "$state" = COMPLETED ] || { cat "$WORK/$1.out"; fail "$1: job $2 is $state, expected COMPLETED"; }
  [ "$(field "$2" Restarts)" = "$3" ] || { cat "$WORK/$1.out"; fail "$1: job $2 restarted $(field "$2" Restarts) times, expected $3"; }
  [ -s "$WORK/$1/params.pt" ] && [ -s "$WORK/$1/config.json" ] || { cat "$WORK/$1.out"; fail "$1: no params.pt/config.json"; }
}
# resumed NAME: the log shows the checkpoint-and-requeue path and a resumed second start.
resumed() {
  local out=$WORK/$1.out
  grep -q 'start (restart 0)' "$out" && grep -q 'start (restart 1)' "$out" \
    || { cat "$out"; fail "$1: the log does not show a first start and one restart"; }
  grep -q 'checkpointed (status 3)' "$out" || { cat "$out"; fail "$1: tlens did not report 'checkpointed, not finished' (status 3)"; }
  local at
  at=$(grep -oP 'resuming from \S+ at step \K[0-9]+' "$out" | tail -1)
  [ -n "$at" ] && [ "$at" -gt 0 ] && [ "$at" -lt "$STEPS" ] \
    || { cat "$out"; fail "$1: the restarted run did not resume from a mid-run checkpoint"; }
  say "$1: resumed at step $at of $STEPS"
  cmp "$WORK/ref/params.pt" "$WORK/$1/params.pt" || fail "$1: params.pt differs from the uninterrupted run's"
  cmp "$WORK/ref/config.json" "$WORK/$1/config.json" || fail "$1: config.json differs from the uninterrupted run's"
}

# (a) the reference: uninterrupted.
J=$(submit ref)
say "(a) job $J: uninterrupted 2-rank run"
finished ref "$J" 0
grep -q 'tlens train finished' "$WORK/ref.out" || { cat "$WORK/ref.out"; fail "ref: no 'finished' line"; }
say "(a) ok"

# (b) requeued from outside mid-run: Slurm sends SIGTERM to every process of the job,
# tlens checkpoints and exits 3, Slurm restarts the job ~15 s later and it resumes.
J=$(submit requeue)
wait_state "$J" RUNNING 60 || fail "requeue: job $J did not start"
wait_mid_run requeue "$J"
say "(b) job $J has a checkpoint; scontrol requeue"
scontrol requeue "$J"
finished requeue "$J" 1
grep -q 'got SIGTERM' "$WORK/requeue.out" || { cat "$WORK/requeue.out"; fail "requeue: the batch shell did not see SIGTERM"; }
resumed requeue
say "(b) ok"

# (c) real preemption: a job in the `high` partition asking for every CPU. The low job
# gets SIGUSR1 (its --signal) at the start of GraceTime, checkpoints and requeues itself.
J=$(submit preempt -p debug --signal=B:USR1@30)
wait_state "$J" RUNNING 60 || fail "preempt: job $J did not start"
wait_mid_run preempt "$J"
H=$(sbatch --parsable -J tlens-high -p high -n "$ncpu" -o "$WORK/high.out" --wrap 'sleep 1')
say "(c) job $J has a checkpoint; job $H in partition high preempts it"
wait_state "$H" COMPLETED 120 || fail "preempt: the high-priority job $H did not complete ($(field "$H" JobState))"
finished preempt "$J" 1
grep -q 'got SIGUSR1' "$WORK/preempt.out" || { cat "$WORK/preempt.out"; fail "preempt: the batch shell did not get SIGUSR1 at preemption"; }
grep -q 'requeued job' "$WORK/preempt.out" || { cat "$WORK/preempt.out"; fail "preempt: the job did not requeue itself"; }
resumed preempt
say "(c) ok"
echo "PASS: slurm train jobs (reference, requeue, preemption) in $(( $(date +%s) - t_start )) s"
