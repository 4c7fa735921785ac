#!/usr/bin/env bash
# The job scripts' own logic, without a Slurm cluster:
#  - jobs/local-mpirun.sh restarts `tlens train` after status 3 until it finishes
#    (--stop_after makes each run stop as if preempted), honours --no-resume and
#    TLENS_MAX_RESTARTS, and every resumed lens is bitwise identical to an uninterrupted one;
#  - jobs/train.sbatch run as a plain script (SLURM_NTASKS=2, mpirun launch) forwards a
#    SIGUSR1 it gets to the ranks, which checkpoint and exit 3; run again it resumes;
#  - jobs/eval.sbatch evaluates the lens;
#  - bad settings (paths, numbers, launcher) give one error line and status 2, and a
#    failing tlens is reported, not retried.
set -euo pipefail
for v in TLENS FIXTURES SRC WORK; do
  [ -n "${!v:-}" ] || { echo "FAIL: environment variable $v is not set"; exit 1; }
done
# Open MPI's plugins leak at exit in frames LeakSanitizer cannot name or suppress;
# address and undefined-behaviour checks stay on in sanitizer builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null || fail "mpirun not found"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
unset SLURM_JOB_ID SLURM_NTASKS SLURM_RESTART_COUNT SLURM_CPUS_PER_TASK TLENS_ARGS TLENS_STEPS \
      TLENS_OUTPUT TLENS_MODEL TLENS_DATA TLENS_LENS TLENS_LAUNCH TLENS_NP TLENS_RESUME TLENS_MAX_RESTARTS || true
export TLENS_BIN=$TLENS OMP_NUM_THREADS=1
MODEL=$FIXTURES/models/stories260k
DATA=$FIXTURES/data/tinystories_train_head.jsonl
VALID=$FIXTURES/data/tinystories_valid_head.jsonl
# 16 steps of 1024 tokens: a few seconds on 2 ranks; a checkpoint every 2 steps; one
# token cache for all runs (tokenizing the corpus takes longer than training here).
train_args=(--model.name "$MODEL" --data.name "$DATA" --num_steps 16 --max_seq_len 128
            --tokens_per_step 1024 --per_gpu_batch_size 4 --checkpoint_freq 2 --seed 42
            --cache_dir "$WORK/cache")
LM=$SRC/jobs/local-mpirun.sh

# expect_error STATUS PATTERN LOG command...: fails unless the command exits with STATUS
# and its stderr is a single line matching PATTERN.
expect_error() {
  local want=$1 pat=$2 log=$3 rc=0; shift 3
  "$@" >"$log.out" 2>"$log.err" || rc=$?
  [ "$rc" = "$want" ] || { cat "$log.out" "$log.err"; fail "$log: status $rc, expected $want"; }
  [ "$(wc -l <"$log.err")" = 1 ] && grep -qE "$pat" "$log.err" \
    || { cat "$log.err"; fail "$log: expected one error line matching '$pat'"; }
}

# --- reference: uninterrupted, 2 ranks.
bash "$LM" -n 2 train "${train_args[@]}" --output ref >ref.log 2>&1 || { cat ref.log; fail "reference run failed"; }
[ -s ref/params.pt ] && [ -s ref/config.json ] || fail "reference run wrote no lens"
grep -q 'restart' ref.log && { cat ref.log; fail "reference run was restarted"; }

# --- local-mpirun.sh restarts after status 3: stops at steps 6 and 12, finishes at 16.
bash "$LM" -n 2 train "${train_args[@]}" --output loop --stop_after 6 >loop.log 2>&1 \
  || { cat loop.log; fail "local-mpirun.sh with restarts failed"; }
[ "$(grep -c 'stopped with status 3 (checkpointed); restart' loop.log)" = 2 ] \
  || { cat loop.log; fail "expected exactly 2 automatic restarts"; }
grep -q 'resuming from .* at step 6 ' loop.log && grep -q 'resuming from .* at step 12 ' loop.log \
  || { cat loop.log; fail "restarts did not resume at steps 6 and 12"; }
cmp ref/params.pt loop/params.pt || fail "lens after 2 restarts differs from the uninterrupted one"
cmp ref/config.json loop/config.json || fail "config.json after restarts differs"

# --- --no-resume and TLENS_MAX_RESTARTS stop with status 3; a later plain run finishes.
rc=0; bash "$LM" -n 2 --no-resume train "${train_args[@]}" --output nr --stop_after 6 >nr.log 2>&1 || rc=$?
[ $rc = 3 ] && [ ! -e nr/params.pt ] && grep -q 'not restarting (--no-resume)' nr.log \
  || { cat nr.log; fail "--no-resume: status $rc, expected 3 and no lens"; }
rc=0; TLENS_MAX_RESTARTS=1 bash "$LM" -n 2 train "${train_args[@]}" --output nr --stop_after 3 >nr2.log 2>&1 || rc=$?
[ $rc = 3 ] && [ ! -e nr/params.pt ] && grep -q 'after 1 restarts (TLENS_MAX_RESTARTS)' nr2.log \
  && grep -q 'resuming from .* at step 9 ' nr2.log \
  || { cat nr2.log; fail "TLENS_MAX_RESTARTS=1: status $rc, expected 3 after resuming at step 9"; }
bash "$LM" -n 2 train "${train_args[@]}" --output nr >nr3.log 2>&1 || { cat nr3.log; fail "resuming run failed"; }
grep -q 'resuming from .* at step 12 ' nr3.log || { cat nr3.log; fail "third run did not resume at step 12"; }
cmp ref/params.pt nr/params.pt || fail "lens resumed across invocations differs from the uninterrupted one"

# --- train.sbatch as a plain script: SIGUSR1 to the batch shell reaches the ranks.
SLURM_NTASKS=2 TLENS_LAUNCH=mpirun TLENS_OUTPUT=$WORK/sig \
  bash "$SRC/jobs/train.sbatch" "${train_args[@]}" >sig.log 2>&1 &
spid=$!
for _ in $(seq 1 200); do
  [ -n "$(find sig/checkpoints -name 'step_*.h5' 2>/dev/null | head -1)" ] && break
  kill -0 "$spid" 2>/dev/null || break
  sleep 0.05
done
[ -e sig/params.pt ] && fail "train.sbatch finished before it could be signalled"
kill -USR1 "$spid"
rc=0; wait "$spid" || rc=$?
[ $rc = 3 ] && grep -q 'got SIGUSR1' sig.log && grep -q 'checkpointed (status 3)' sig.log \
  && grep -q 'not running under Slurm' sig.log && [ ! -e sig/params.pt ] \
  || { cat sig.log; fail "train.sbatch + SIGUSR1: status $rc, expected 3 after a checkpoint"; }
SLURM_NTASKS=2 TLENS_LAUNCH=mpirun TLENS_OUTPUT=$WORK/sig \
  bash "$SRC/jobs/train.sbatch" "${train_args[@]}" >sig2.log 2>&1 || { cat sig2.log; fail "train.sbatch resume failed"; }
grep -q 'resuming from' sig2.log && grep -q 'tlens train finished' sig2.log || { cat sig2.log; fail "train.sbatch did not resume"; }
cmp ref/params.pt sig/params.pt || fail "lens after a forwarded SIGUSR1 differs from the uninterrupted one"

# --- eval.sbatch as a plain script, 2 ranks through mpirun.
SLURM_NTASKS=2 TLENS_LAUNCH=mpirun TLENS_MODEL=$MODEL TLENS_DATA=$VALID TLENS_LENS=$WORK/ref \
  TLENS_OUTPUT=$WORK/eval TLENS_ARGS="--tokens 2048 --max_seq_len 128" \
  bash "$SRC/jobs/eval.sbatch" >eval.log 2>&1 || { cat eval.log; fail "eval.sbatch failed"; }
grep -q 'tlens eval finished' eval.log && [ -s eval/aggregate_metrics.json ] || { cat eval.log; fail "eval.sbatch wrote no metrics"; }

# --- bad settings: one line, status 2, nothing launched.
T=$SRC/jobs/train.sbatch E=$SRC/jobs/eval.sbatch
expect_error 2 "TLENS_BIN: '/nonexistent/tlens'" e1 env TLENS_BIN=/nonexistent/tlens TLENS_OUTPUT=x bash "$T"
expect_error 2 "TLENS_MODEL: '/nonexistent' is not a directory" e2 env TLENS_MODEL=/nonexistent TLENS_OUTPUT=x bash "$T"
expect_error 2 "TLENS_DATA: '/nonexistent.jsonl' is not a file" e3 env TLENS_DATA=/nonexistent.jsonl TLENS_OUTPUT=x bash "$T"
expect_error 2 "TLENS_STEPS: '10x' is not a positive integer" e4 env TLENS_STEPS=10x TLENS_OUTPUT=x bash "$T"
expect_error 2 "TLENS_LAUNCH: 'qsub' is not one of" e5 env TLENS_LAUNCH=qsub TLENS_OUTPUT=x bash "$T"
expect_error 2 "no output directory" e6 bash "$T" --model.name "$MODEL"
expect_error 2 "TLENS_MAX_RESTARTS: '-1'" e7 env TLENS_MAX_RESTARTS=-1 TLENS_OUTPUT=x bash "$T"
expect_error 2 "TLENS_LENS: '/nonexistent' is not a directory" e8 env TLENS_LENS=/nonexistent bash "$E"
expect_error 2 "number of ranks .*'0' is not a positive integer" e9 bash "$LM" -n 0 train
expect_error 2 "no tlens command given" e10 bash "$LM" -n 2
expect_error 2 "TLENS_RESUME: 'yes' is not 0 or 1" e11 env TLENS_RESUME=yes bash "$LM" train
expect_error 2 "TLENS_BIN: no executable" e12 env TLENS_BIN=/nonexistent bash "$LM" train
# A tlens error (here: a bad flag value) is passed on and not retried.
rc=0; SLURM_NTASKS=2 TLENS_LAUNCH=mpirun TLENS_OUTPUT=$WORK/bad \
  bash "$T" "${train_args[@]}" --num_steps 0 >bad.log 2>&1 || rc=$?
[ $rc = 2 ] && grep -q 'failed with status 2; not requeueing' bad.log && grep -q 'tlens train: error: .*num_steps' bad.log \
  || { cat bad.log; fail "tlens usage error: status $rc, expected 2 and no retry"; }
rc=0; bash "$LM" -n 2 train "${train_args[@]}" --output bad --num_steps 0 >bad2.log 2>&1 || rc=$?
[ $rc = 2 ] && [ "$(grep -c 'local-mpirun.sh: mpirun' bad2.log)" = 1 ] \
  || { cat bad2.log; fail "local-mpirun.sh: a tlens usage error gave status $rc (expected 2, one attempt)"; }
echo "PASS: job scripts"
