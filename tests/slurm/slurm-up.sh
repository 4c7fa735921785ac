#!/usr/bin/env bash
# Starts a private single-node Slurm cluster (munged + slurmctld + slurmd) for the job tests.
#   bash tests/slurm/slurm-up.sh BASE      then: export SLURM_CONF=BASE/etc/slurm.conf
# Everything lives under BASE: config, logs, pidfiles, spool, and a munged of our own with
# its own key and socket, so a system munge/Slurm (if any) is neither used nor disturbed.
# Installs slurm-wlm, munge and libpmix-dev with apt-get when they are missing.
# Needs root (Slurm daemons, apt). Exit status: 0 up, 77 cannot run here (not root, or no
# apt to install what is missing), 1 anything else went wrong.
set -euo pipefail
BASE=${1:?usage: slurm-up.sh BASE}
say() { echo "slurm-up: $*" >&2; }
unavailable() { say "$*"; exit 77; }

[ "$(id -u)" = 0 ] || unavailable "must run as root (it starts slurmctld, slurmd and munged)"

# --- packages. The Debian postinsts create the munge/slurm users and start no daemon.
need=()
for p in slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge libpmix-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || unavailable "packages ${need[*]} are missing and apt-get is not available"
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || unavailable "apt-get update failed (no network to the Debian mirror?)"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || unavailable "apt-get install ${need[*]} failed"
fi
for c in munged mungekey slurmctld slurmd sinfo sbatch srun scontrol; do
  command -v "$c" >/dev/null || { say "$c not found after installing"; exit 1; }
done

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if alive "$BASE/munge/munged.pid" && alive "$BASE/run/slurmctld.pid" && alive "$BASE/run/slurmd.pid"; then
  say "already up: SLURM_CONF=$BASE/etc/slurm.conf"
  exit 0
fi

# --- names and ports. slurmd finds its node by the short host name, which must resolve.
host=$(hostname -s)
getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
ncpu=$(nproc)
# Pick two free TCP ports so that another Slurm on this host (default 6817/6818) is no
# obstacle. /proc/net/tcp{,6} lists listening sockets (state 0A) with hex ports.
listening() { cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4=="0A"{split($2,a,":"); print a[2]}'; }
free_port() {
  local p used; used=$(listening)
  for p in $(seq "$1" $(( $1 + 200 ))); do
    grep -qx "$(printf '%04X' "$p")" <<<"$used" || { echo "$p"; return 0; }
  done
  return 1
}
ctld_port=$(free_port 16817); slurmd_port=$(free_port $(( ctld_port + 1 )))

mkdir -p "$BASE"/{etc,log,run,spool/ctld,spool/d,munge}
chmod 0755 "$BASE"

# --- munge: a private key and socket. munged refuses to run as root when its files are
# not its own, so it runs as the munge user with everything under BASE/munge owned by it.
M=$BASE/munge
chown munge:munge "$M"; chmod 0755 "$M"   # munged wants its socket directory searchable by all
[ -s "$M/munge.key" ] || runuser -u munge -- mungekey --create --keyfile="$M/munge.key"
if ! alive "$M/munged.pid"; then
  runuser -u munge -- munged --key-file="$M/munge.key" --socket="$M/munge.socket" \
    --pid-file="$M/munged.pid" --log-file="$M/munged.log" --seed-file="$M/munged.seed"
fi
ok=0
for _ in $(seq 1 50); do
  if munge -S "$M/munge.socket" -n </dev/null | unmunge -S "$M/munge.socket" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ $ok = 1 ] || { say "munged did not answer on $M/munge.socket"; tail -5 "$M/munged.log" >&2 || true; exit 1; }

# --- slurm.conf. Choices that matter for the tests:
#  cred_expire=10 + sched/bf interval 5: a requeued job restarts after ~15 s, not ~150 s.
#  preempt/partition_prio: a job in `high` requeues jobs in `debug` after GraceTime, and
#  preempt_send_user_signal sends them their --signal at the start of the grace period.
#  KillWait: seconds between SIGTERM and SIGKILL, the time a job has to checkpoint.
#  proctrack/linuxproc + task/none: no cgroups or systemd needed.
grace=${TLENS_SLURM_GRACE:-5}
cat > "$BASE/etc/slurm.conf" <<CONF
ClusterName=tlensci
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
AuthInfo=socket=${M}/munge.socket,cred_expire=10
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
SlurmctldPidFile=${BASE}/run/slurmctld.pid
SlurmdPidFile=${BASE}/run/slurmd.pid
StateSaveLocation=${BASE}/spool/ctld
SlurmdSpoolDir=${BASE}/spool/d
SlurmctldLogFile=${BASE}/log/slurmctld.log
SlurmdLogFile=${BASE}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
InactiveLimit=0
KillWait=10
MinJobAge=600
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${ncpu} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=${grace}
PartitionName=high Nodes=${host} MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
export SLURM_CONF=$BASE/etc/slurm.conf

# Both daemons fork into the background and write their pidfiles.
alive "$BASE/run/slurmctld.pid" || slurmctld
alive "$BASE/run/slurmd.pid" || slurmd
for _ in $(seq 1 60); do
  [ "$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1)" = idle ] && break
  sleep 0.5
done
if [ "$(sinfo -h -n "$host" -o %T 2>/dev/null | head -1)" != idle ]; then
  say "node $host did not become idle within 30 s"; tail -n 20 "$BASE"/log/*.log >&2 || true; exit 1
fi
say "up: SLURM_CONF=$SLURM_CONF (ports $ctld_port/$slurmd_port, $ncpu CPUs, GraceTime $grace s)"
