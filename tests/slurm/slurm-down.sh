#!/usr/bin/env bash
# Stops the cluster started by slurm-up.sh: cancels its jobs, then stops slurmd, slurmctld
# and munged by the PIDs in BASE's pidfiles (never by process name, so nothing else on
# the host is touched).
#   bash tests/slurm/slurm-down.sh BASE
set -u
BASE=${1:?usage: slurm-down.sh BASE}
export SLURM_CONF=$BASE/etc/slurm.conf
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Running jobs' slurmstepd outlive slurmd, so cancel them first and give them KillWait.
if alive "$BASE/run/slurmctld.pid"; then
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086  # one job id per word
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
fi

stop() {
  local pf=$1 pid
  alive "$pf" || return 0
  pid=$(cat "$pf")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "slurm-down: pid $pid ($pf) still alive after 10 s, sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
stop "$BASE/run/slurmd.pid"
stop "$BASE/run/slurmctld.pid"
stop "$BASE/munge/munged.pid"
exit 0
