#!/usr/bin/env bash
# Start a real one-node SLURM cluster with job accounting on this machine, for tests (no systemd needed):
#   munged -> MariaDB -> slurmdbd -> register cluster/account/users -> slurmctld -> slurmd -> wait for `idle`.
# State (database, spool dirs, logs, PID files) lives in $SLURM_TEST_DIR (default /tmp/cifarflow-slurm); the
# configs must live in /etc/slurm (the Snakemake jobstep plugin clears SLURM_CONF before its inner srun).
# Idempotent: daemons that already run are left alone. Every wait is bounded. Stop with tests/slurm/stop.sh.
# The node offers one stand-in GPU (gres/gpu backed by /dev/null: Slurm drops GPUs without a device file) so
# that the profile's GPU requests are really scheduled and accounted; SLURM_TEST_GPUS=0 leaves it out.
#
# Environment: SLURM_TEST_DIR, SLURM_TEST_CLUSTER (cifarflow), SLURM_TEST_PARTITION (debug),
#              SLURM_TEST_ACCOUNT (cifarflow), SLURM_TEST_DB_PORT (13306), SLURM_TEST_GPUS (1).
set -euo pipefail

STATE=${SLURM_TEST_DIR:-/tmp/cifarflow-slurm}
CLUSTER=${SLURM_TEST_CLUSTER:-cifarflow}
PARTITION=${SLURM_TEST_PARTITION:-debug}
ACCOUNT=${SLURM_TEST_ACCOUNT:-cifarflow}
DB_PORT=${SLURM_TEST_DB_PORT:-13306}
GPUS=${SLURM_TEST_GPUS:-1}   # 0 or 1
MARKER="# written by cifarflow tests/slurm/start.sh"
SLURM_CONF=/etc/slurm/slurm.conf
SLURMDBD_CONF=/etc/slurm/slurmdbd.conf

say() { echo "start.sh: $*"; }
die() {
    echo "start.sh: ERROR: $*" >&2
    for log in "$STATE"/log/*.log "$STATE"/log/*.err; do
        [[ -s $log ]] && { echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; }
    done
    exit 1
}
# wait_for SECONDS WHAT COMMAND...: retry COMMAND every 0.5 s until it succeeds or SECONDS pass.
wait_for() {
    local seconds=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what: not ready after ${seconds} s"
        sleep 0.5
    done
}
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in munged mariadb-install-db mariadbd mariadb mariadb-admin slurmdbd slurmctld slurmd sacctmgr sinfo scontrol; do
    command -v "$tool" >/dev/null || die "$tool not found: run tests/slurm/install.sh first"
done
for conf in "$SLURM_CONF" "$SLURMDBD_CONF"; do
    if [[ -e $conf ]] && ! grep -qF "$MARKER" "$conf"; then
        die "$conf exists and was not written by this script; not overwriting a real cluster's config"
    fi
done

HOST=$(hostname -s)
mkdir -p "$STATE"/{log,slurmctld,slurmd,mysql-run}
chmod 755 "$STATE"

# ---- configs ---------------------------------------------------------------------------------------------
# The node line comes from the hardware slurmd sees; RealMemory a little lower so the node is never "invalid".
node_line=$(timeout 30 slurmd -C | head -n 1) || die "slurmd -C failed"
cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
[[ -n $cpus && -n $memory ]] || die "cannot parse 'slurmd -C': $node_line"
node_line=$(sed -e "s/^NodeName=[^ ]*/NodeName=$HOST/" -e "s/RealMemory=[0-9]*/RealMemory=$((memory * 9 / 10))/" <<<"$node_line")
gres_lines=""
if ((GPUS > 0)); then
    node_line+=" Gres=gpu:1"
    gres_lines="GresTypes=gpu
AccountingStorageTRES=gres/gpu"
    cat >/etc/slurm/gres.conf <<EOF
$MARKER
# A stand-in GPU: lets the scheduler allocate and account GPU requests. There is no GPU behind it; Slurm
# ignores GPUs without a device file, and with TaskPlugin=task/none nothing is constrained to /dev/null.
NodeName=$HOST Name=gpu File=/dev/null
EOF
elif [[ -e /etc/slurm/gres.conf ]] && grep -qF "$MARKER" /etc/slurm/gres.conf; then
    rm -f /etc/slurm/gres.conf
fi

mkdir -p /etc/slurm
cat >"$SLURM_CONF" <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
MailProg=/bin/true
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# No cgroups in a container: track processes through /proc, no task containment.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageEnforce=associations
# Keep the job comment (the plugin writes rule_<rule>_wildcards_<...> there) so sacct shows which job ran what.
AccountingStoreFlags=job_comment
$gres_lines
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

if [[ ! -s $STATE/db.pass ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$STATE/db.pass")
fi
DB_PASS=$(cat "$STATE/db.pass")
(umask 077 && cat >"$SLURMDBD_CONF" <<EOF
$MARKER
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
)
chown root:root "$SLURMDBD_CONF" && chmod 600 "$SLURMDBD_CONF"

# ---- munged (as the munge user, with its folders owned by it) ----------------------------------------------
munge_ok() { timeout 10 munge -n </dev/null | timeout 10 unmunge >/dev/null; }
if munge_ok 2>/dev/null; then
    say "munged already running"
else
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        (command -v mungekey >/dev/null && mungekey --create --keyfile=/etc/munge/munge.key) ||
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    rm -f /run/munge/munged.pid
    timeout 30 runuser -u munge -- munged --force || die "munged did not start (see /var/log/munge/munged.log)"
    wait_for 20 munged munge_ok
    touch "$STATE/munged.started"   # stop.sh stops munged only if this script started it
    say "munged started"
fi

# ---- MariaDB: data in $STATE/mysql, owned by mysql, listening on 127.0.0.1 only ----------------------------
MYSQL_SOCKET=$STATE/mysql-run/mysqld.sock
mysql_ok() { timeout 10 mariadb-admin --no-defaults --socket="$MYSQL_SOCKET" -u root ping; }
if alive "$STATE/mysql-run/mysqld.pid" && mysql_ok >/dev/null 2>&1; then
    say "MariaDB already running"
else
    if [[ ! -d $STATE/mysql/mysql ]]; then
        rm -rf "$STATE/mysql"
        timeout 120 mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" \
            --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 ||
            die "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
    fi
    chown -R mysql:mysql "$STATE/mysql" "$STATE/mysql-run"
    setsid mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" --socket="$MYSQL_SOCKET" \
        --pid-file="$STATE/mysql-run/mysqld.pid" --bind-address=127.0.0.1 --port="$DB_PORT" --skip-name-resolve \
        --innodb-buffer-pool-size=64M --log-error="$STATE/log/mariadb.err" </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB mysql_ok
    say "MariaDB started (127.0.0.1:$DB_PORT)"
fi
timeout 30 mariadb --no-defaults --socket="$MYSQL_SOCKET" -u root -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "cannot create the slurm database user"

# ---- slurmdbd, then the cluster, account and users it accounts for -----------------------------------------
if alive "$STATE/slurmdbd.pid"; then
    say "slurmdbd already running"
else
    timeout 60 slurmdbd || die "slurmdbd did not start"
    say "slurmdbd started"
fi
wait_for 60 slurmdbd timeout 10 sacctmgr -n list cluster
if [[ -z $(timeout 30 sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
    timeout 30 sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
fi
if [[ -z $(timeout 30 sacctmgr -n -P list account "$ACCOUNT" format=account) ]]; then
    timeout 30 sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description="cifarflow tests" Organization=cifarflow \
        >/dev/null || die "sacctmgr add account $ACCOUNT failed"
fi
for user in root "$(id -un)" ${SUDO_USER:-}; do
    if [[ -z $(timeout 30 sacctmgr -n -P list association cluster="$CLUSTER" account="$ACCOUNT" user="$user" format=user) ]]; then
        timeout 30 sacctmgr -i add user "$user" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" >/dev/null ||
            die "sacctmgr add user $user failed"
    fi
done
say "accounting: cluster $CLUSTER, account $ACCOUNT"

# ---- slurmctld, slurmd ----------------------------------------------------------------------------------
if alive "$STATE/slurmctld.pid"; then
    say "slurmctld already running (re-reading the config)"
    timeout 30 scontrol reconfigure >/dev/null 2>&1 || true
else
    timeout 60 slurmctld || die "slurmctld did not start"
    say "slurmctld started"
fi
wait_for 30 slurmctld timeout 10 scontrol ping
if alive "$STATE/slurmd.pid"; then
    say "slurmd already running"
else
    timeout 60 slurmd || die "slurmd did not start"
    say "slurmd started"
fi

node_state() { timeout 10 sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n 1; }
node_idle() {
    local state
    state=$(node_state)
    case $state in
        idle | mix | alloc) return 0 ;;
        down* | drain* | drng*) timeout 10 scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    return 1
}
wait_for 60 "node $HOST (state: $(node_state || true))" node_idle
say "cluster up: $(timeout 10 sinfo -h -o '%P %a %D %t %N')"
