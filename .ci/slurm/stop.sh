#!/usr/bin/env bash
# Stop the cluster of start.sh: cancel the jobs still in it (a killed Snakemake leaves them
# behind, and their job steps would outlive slurmd), then stop slurmd, slurmctld and munged by the
# PIDs start.sh recorded, and remove its /etc/slurm links. Safe to call twice or after a failed
# start.
set -uo pipefail

D=${SLURM_TEST_DIR:-/tmp/ssibench-slurm}
WAIT_STEPS=100   # x 0.1 s per daemon (and for the cancelled jobs) before giving up on it
export SLURM_CONF=$D/slurm.conf

if [[ -s $D/slurmctld.bgpid ]] && kill -0 "$(cat "$D/slurmctld.bgpid")" 2>/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [[ -n ${jobs// /} ]]; then
        echo "stop.sh: cancelling jobs $jobs" >&2
        # shellcheck disable=SC2086
        scancel $jobs
        for _ in $(seq "$WAIT_STEPS"); do
            [[ -z $(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
fi

for name in slurmd slurmctld munged; do
    pidfile="$D/$name.bgpid"
    [[ -s $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq "$WAIT_STEPS"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop.sh: $name (PID $pid) ignored SIGTERM; sending SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
done
for link in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    [[ -L $link && $(readlink "$link") == "$D"/* ]] && rm -f "$link"
done
exit 0
