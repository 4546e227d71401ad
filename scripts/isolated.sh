#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command in a private network namespace with its own loopback and its
# own topology directory, so two test suites (fixed ports 13306-13399,
# 18100-18399) can run on one machine at once. Root only; no network inside,
# so install packages (scripts/setup.sh) before.
#
#   scripts/isolated.sh NAME COMMAND [ARG]...
#   e.g. scripts/isolated.sh wt1 bash scripts/test.sh
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 NAME COMMAND [ARG]..." >&2
    exit 2
fi
name=$1
shift
case $name in
*[!A-Za-z0-9_-]* | "") echo "isolated: NAME must be letters, digits, - or _" >&2; exit 2 ;;
esac

ns="freno-$name"
if ! ip netns list | grep -qw "$ns"; then
    ip netns add "$ns"
fi
ip netns exec "$ns" ip link set lo up
export FRENO_TOPOLOGY_DIR=${FRENO_TOPOLOGY_DIR_ISOLATED:-/tmp/freno-topology-$name}
export BENCH_DIR=/tmp/freno-bench-$name
exec ip netns exec "$ns" "$@"
