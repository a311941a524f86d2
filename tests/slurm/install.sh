#!/usr/bin/env bash
# Install what a one-node SLURM test cluster needs (Debian 12): the SLURM daemons and client tools, munge for
# authentication, and slurmdbd + MariaDB for job accounting (the Snakemake plugin reads job states with sacct).
# Idempotent: does nothing when everything is already installed. Needs root and the Debian package mirror.
set -euo pipefail

PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)
[[ $(id -u) -eq 0 ]] || { echo "install.sh: must run as root (apt-get)" >&2; exit 1; }

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install.sh: ${PACKAGES[*]} already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Debian's maintainer scripts try to start services; without systemd/init that fails or hangs, so forbid it:
# start.sh starts every daemon itself.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
fi
trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT

echo "install.sh: installing ${missing[*]}"
timeout 300 apt-get update -qq
timeout 600 apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
for tool in slurmctld slurmd slurmdbd munged mariadbd sacctmgr sbatch sacct sinfo; do
    command -v "$tool" >/dev/null || { echo "install.sh: $tool missing after install" >&2; exit 1; }
done
echo "install.sh: done"
