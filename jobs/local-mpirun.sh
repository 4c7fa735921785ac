#!/usr/bin/env bash
# Runs tlens on N MPI ranks on this machine (a workstation, no scheduler).
#
#   jobs/local-mpirun.sh [-n N] [--no-resume] train --model.name DIR --data.name FILE --output OUT ...
#   jobs/local-mpirun.sh -n 4 eval --model.name DIR --data.name FILE -l LENS --output OUT
#
# Options (before the tlens command) and environment:
#   -n N, TLENS_NP=N    ranks (default 2). More ranks than cores adds --oversubscribe.
#   --no-resume, TLENS_RESUME=0
#                       do not start `tlens train` again when it stops with status 3
#   TLENS_BIN           the tlens binary (default: build/tlens next to this script, else tlens on PATH)
#   TLENS_MAX_RESTARTS  at most this many automatic restarts (default 100)
#   TLENS_MPIRUN_ARGS   extra mpirun flags, split on spaces (e.g. "--bind-to core")
#
# `tlens train` stops with status 3 ("checkpointed, not finished") when one of its ranks
# gets SIGUSR1 or SIGTERM; started again with the same --output it resumes from the
# newest checkpoint. This script starts it again in that case, unless the stop was asked
# for here: Ctrl-C, SIGTERM or SIGUSR1 to this script make the ranks checkpoint and then
# the script exits with status 3 (run the same command again to continue).
# mpirun runs in its own session so that Ctrl-C reaches only this script, which turns it
# into a checkpoint request instead of letting mpirun kill the ranks on the spot.
set -uo pipefail
me="local-mpirun.sh"
log() { echo "$me: $*" >&2; }
die() { echo "$me: error: $*" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

np=${TLENS_NP:-2}
resume=${TLENS_RESUME:-1}
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--np) [ $# -ge 2 ] || die "$1 needs a number of ranks"; np=$2; shift 2 ;;
    -n*) np=${1#-n}; shift ;;
    --no-resume) resume=0; shift ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ "$np" =~ ^[1-9][0-9]*$ ]] || die "number of ranks (-n / TLENS_NP): '$np' is not a positive integer"
[ "$resume" = 0 ] || [ "$resume" = 1 ] || die "TLENS_RESUME: '$resume' is not 0 or 1"
max_restarts=${TLENS_MAX_RESTARTS:-100}
[[ "$max_restarts" =~ ^[0-9]+$ ]] || die "TLENS_MAX_RESTARTS: '$max_restarts' is not a non-negative integer"
[ $# -gt 0 ] || die "no tlens command given (e.g. train --model.name DIR ...); see --help"

bin=${TLENS_BIN:-}
if [ -z "$bin" ]; then
  if [ -x "$here/build/tlens" ]; then bin=$here/build/tlens
  else bin=$(command -v tlens 2>/dev/null || true); fi
fi
[ -n "$bin" ] && [ -x "$bin" ] || die "TLENS_BIN: no executable tlens binary found (set TLENS_BIN)"
command -v mpirun >/dev/null || die "mpirun not found (install openmpi-bin)"
command -v setsid >/dev/null || die "setsid not found (util-linux)"

mpi=(mpirun -np "$np")
# Open MPI refuses to run as root without an explicit override.
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
# More ranks than cores: Open MPI needs permission to put several on one core.
[ "$np" -gt "$(nproc)" ] && mpi+=(--oversubscribe)
# shellcheck disable=SC2206
[ -n "${TLENS_MPIRUN_ARGS:-}" ] && mpi+=(${TLENS_MPIRUN_ARGS})
# Without an explicit thread count, share the cores between the ranks.
if [ -z "${OMP_NUM_THREADS:-}" ]; then
  t=$(( $(nproc) / np )); [ "$t" -ge 1 ] || t=1
  export OMP_NUM_THREADS=$t
fi

stop=""
pid=""
ask_checkpoint() {
  stop=$1
  log "got SIG$1: asking the ranks to checkpoint and stop"
  # mpirun passes SIGUSR1 on to every rank; SIGINT/SIGTERM would make it kill them.
  [ -n "$pid" ] && kill -USR1 "$pid" 2>/dev/null
  return 0
}
trap 'ask_checkpoint INT' INT
trap 'ask_checkpoint TERM' TERM
trap 'ask_checkpoint USR1' USR1

restarts=0
while :; do
  log "${mpi[*]} $bin $*"
  setsid "${mpi[@]}" "$bin" "$@" &
  pid=$!
  while :; do
    wait "$pid"
    kill -0 "$pid" 2>/dev/null || break
  done
  wait "$pid"
  status=$?
  pid=""
  [ "$status" = 3 ] || exit "$status"
  if [ -n "$stop" ]; then
    log "checkpointed and stopped; run the same command again to resume"
    exit 3
  fi
  if [ "$resume" = 0 ]; then
    log "stopped with status 3 (checkpointed); not restarting (--no-resume)"
    exit 3
  fi
  if [ "$restarts" -ge "$max_restarts" ]; then
    log "stopped with status 3 after $restarts restarts (TLENS_MAX_RESTARTS); giving up"
    exit 3
  fi
  restarts=$((restarts + 1))
  log "stopped with status 3 (checkpointed); restart $restarts resumes from the checkpoint"
done
