#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The soak (not part of the test command): builds with ASan+UBSan, starts the
# MariaDB topology, then runs tests/soak/soak.py: three nodes sharing the
# MySQL backend behind HAProxy, checks at full speed through HAProxy (wrk)
# for --minutes (default 30) while replicas stop and start, replication stops,
# the backend is stopped (SIGSTOP) and shut down, and the leader is killed
# (-9); throttles set through the API must never be lost and no two nodes may
# lead at once. Ends with "RESULT sanitizer=N two_leaders=N throttles_lost=N
# unexpected_exits=N"; exit status 0 only if all are 0.
#
#   scripts/isolated.sh NAME bash scripts/soak.sh [--minutes N] [--build-dir DIR]
#       [--fault-interval S] [--hold S] [--seed N] [--json FILE]
set -uo pipefail
cd "$(dirname "$0")/.."

build_dir=build
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; shift ;;
    -h | --help) sed -n '3,14p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
    esac
done

bash scripts/setup.sh >/dev/null || exit 1
echo "soak: building $build_dir (ASan+UBSan)"
if ! cmake -S . -B "$build_dir" -DSANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null ||
    ! cmake --build "$build_dir" -j"$(nproc)" --target freno >/dev/null; then
    echo "soak: build failed" >&2
    exit 1
fi
bash scripts/topology.sh start >/dev/null || exit 1
trap 'bash scripts/topology.sh stop >/dev/null 2>&1 || true' EXIT
FRENO_BIN="$PWD/$build_dir/freno" python3 tests/soak/soak.py "${args[@]}"
