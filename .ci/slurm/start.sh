#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian's slurm-wlm + munge, run as root, no
# systemd) with FAKE_GPUS fake GPUs, for the CI's cluster test. Recipe and pitfalls:
# shared/reference/local-slurm-cluster.md.
#   FAKE_GPUS=2 .ci/slurm/start.sh     # state, logs and PIDs under $SLURM_TEST_DIR
#   export SLURM_CONF=$SLURM_TEST_DIR/slurm.conf
#   .ci/slurm/stop.sh
# Each fake GPU is a gres backed by a distinct character device, so slurmd sets
# CUDA_VISIBLE_DEVICES in a job exactly as on a real GPU node (`Flags=CountOnly` does not work for
# gpu in Slurm 22.05). /etc/slurm/{slurm,gres}.conf become links to the generated files: the
# Snakemake job step strips SLURM_CONF before its inner srun, which then reads the default path.
set -euo pipefail

D=${SLURM_TEST_DIR:-/tmp/ssibench-slurm}
FAKE_GPUS=${FAKE_GPUS:-2}
DEVS=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
if (( FAKE_GPUS < 0 || FAKE_GPUS > ${#DEVS[@]} )); then
    echo "start.sh: FAKE_GPUS=$FAKE_GPUS, must be 0..${#DEVS[@]} (one character device each)" >&2
    exit 2
fi
for tool in slurmctld slurmd munged sinfo; do
    if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
        echo "start.sh: $tool not found; install it: apt-get install slurm-wlm munge" >&2
        exit 2
    fi
done
if [[ -e $D/slurmctld.bgpid ]] && kill -0 "$(cat "$D/slurmctld.bgpid")" 2>/dev/null; then
    echo "start.sh: a cluster from $D is already running (stop it with .ci/slurm/stop.sh)" >&2
    exit 2
fi

NODE=$(hostname -s)
# The node's real topology (CPUs, boards, sockets, cores, threads) and 95 % of its memory: a node
# that declares more than slurmd detects is marked invalid and never runs a job.
SLURMD_C=$(/usr/sbin/slurmd -C | head -n 1)
HW=$(sed -E 's/^NodeName=[^ ]+ //; s/RealMemory=[0-9]+//' <<<"$SLURMD_C")
MEM=$(( $(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$SLURMD_C") * 95 / 100 ))

rm -rf "$D/state" "$D/spool" "$D/log"
mkdir -p "$D"/{state,spool,log,munge}
chown munge:munge "$D/munge"
chmod 755 "$D/munge"   # munged refuses a socket folder without o+x
[[ -f $D/munge/munge.key ]] || dd if=/dev/urandom bs=1 count=1024 of="$D/munge/munge.key" status=none
chown munge:munge "$D/munge/munge.key"
chmod 400 "$D/munge/munge.key"

GRES=""
(( FAKE_GPUS > 0 )) && GRES="Gres=gpu:fake:$FAKE_GPUS"
# No slurmdbd: status comes from squeue, so finished jobs must stay visible (MinJobAge) for longer
# than three status-check intervals of the Snakemake plugin.
cat > "$D/slurm.conf" <<CONF
ClusterName=testcluster
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket.2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=600
GresTypes=gpu
NodeName=${NODE} NodeAddr=127.0.0.1 ${HW} RealMemory=${MEM} ${GRES} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
: > "$D/gres.conf"
for (( i = 0; i < FAKE_GPUS; i++ )); do
    echo "NodeName=${NODE} Name=gpu Type=fake File=${DEVS[$i]}" >> "$D/gres.conf"
done
mkdir -p /etc/slurm
ln -sfn "$D/slurm.conf" /etc/slurm/slurm.conf
ln -sfn "$D/gres.conf" /etc/slurm/gres.conf
export SLURM_CONF=$D/slurm.conf

runuser -u munge -- /usr/sbin/munged -F --socket="$D/munge/munge.socket.2" \
    --key-file="$D/munge/munge.key" --log-file="$D/log/munged.log" \
    --pid-file="$D/munge/munged.pid" --seed-file="$D/munge/munged.seed" >/dev/null 2>&1 &
for _ in $(seq 50); do [[ -S $D/munge/munge.socket.2 && -s $D/munge/munged.pid ]] && break; sleep 0.1; done
cat "$D/munge/munged.pid" > "$D/munged.bgpid"
/usr/sbin/slurmctld -D -f "$SLURM_CONF" > "$D/log/slurmctld.stdout" 2>&1 &
echo $! > "$D/slurmctld.bgpid"
/usr/sbin/slurmd -D -f "$SLURM_CONF" > "$D/log/slurmd.stdout" 2>&1 &
echo $! > "$D/slurmd.bgpid"

for _ in $(seq 150); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 0.2; done
if ! sinfo -h -o %T | grep -qx idle; then
    echo "start.sh: the node did not become idle" >&2
    tail -n 20 "$D"/log/*.log >&2
    exit 1
fi
sinfo -N -o "%N cpus=%c mem=%m gres=%G %T"
