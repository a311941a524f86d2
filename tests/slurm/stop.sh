#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start.sh, by PID file, in reverse start order:
#   slurmd -> slurmctld -> slurmdbd -> MariaDB -> munged (munged only if start.sh started it).
# Idempotent: daemons that do not run are skipped. `--purge` also deletes $SLURM_TEST_DIR and the configs the
# start script wrote to /etc/slurm. Exits non-zero if a daemon survives SIGKILL.
set -uo pipefail

STATE=${SLURM_TEST_DIR:-/tmp/cifarflow-slurm}
MARKER="# written by cifarflow tests/slurm/start.sh"
status=0

# stop NAME PIDFILE: SIGTERM, up to 20 s for a clean exit, then SIGKILL.
stop() {
    local name=$1 pidfile=$2 pid waited=0
    if [[ ! -s $pidfile ]] || ! pid=$(cat "$pidfile") || ! kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: $name not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null && ((waited < 40)); do
        sleep 0.5
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: $name (pid $pid) ignored SIGTERM for 20 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
        sleep 1
        if kill -0 "$pid" 2>/dev/null; then
            echo "stop.sh: ERROR: $name (pid $pid) still running" >&2
            status=1
            return 1
        fi
    fi
    rm -f "$pidfile"
    echo "stop.sh: $name stopped"
}

[[ $(id -u) -eq 0 ]] || { echo "stop.sh: must run as root" >&2; exit 1; }
stop slurmd "$STATE/slurmd.pid"
stop slurmctld "$STATE/slurmctld.pid"
stop slurmdbd "$STATE/slurmdbd.pid"
stop MariaDB "$STATE/mysql-run/mysqld.pid"
if [[ -e $STATE/munged.started ]]; then
    stop munged /run/munge/munged.pid && rm -f "$STATE/munged.started"
else
    echo "stop.sh: munged not started by start.sh; left alone"
fi

if [[ ${1:-} == --purge ]]; then
    rm -rf "$STATE"
    for conf in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf /etc/slurm/gres.conf; do
        [[ -e $conf ]] && grep -qF "$MARKER" "$conf" && rm -f "$conf"
    done
    echo "stop.sh: removed $STATE and the test configs"
fi
exit $status
