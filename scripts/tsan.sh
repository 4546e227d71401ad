#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ThreadSanitizer job (STYLE §9), separate from the default test command
# because it needs its own build: builds build-tsan/ with -DSANITIZE=thread,
# runs the unit tests and the integration suite against that binary (any
# "WARNING: ThreadSanitizer" in a daemon's log fails its test), and ends with
# "N passed, N failed". Pass -k PATTERN to run a subset of integration tests.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null || exit 1
cmake -S . -B build-tsan -DSANITIZE=thread >/dev/null && cmake --build build-tsan -j2 >/dev/null || {
    echo "tsan: build failed"
    echo "0 passed, 1 failed"
    exit 1
}
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:halt_on_error=0:report_signal_unsafe=0:second_deadlock_stack=1"
bash scripts/topology.sh start >/dev/null || exit 1
trap 'bash scripts/topology.sh stop >/dev/null 2>&1 || true' EXIT
unit=$(FRENO_TEST_MYSQL_PORT=13306 FRENO_TEST_MYSQL_USER=freno_test FRENO_TEST_MYSQL_PASSWORD=freno_test \
    ctest --test-dir build-tsan 2>&1 | tee /dev/stderr | grep -E "tests passed, [0-9]+ tests? failed out of")
ufail=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$unit")
utotal=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$unit")
res=$(FRENO_BIN="$PWD/build-tsan/freno" python3 tests/integration/run.py "$@" 2>&1 | tee /dev/stderr | grep -E "^RESULT")
ipass=$(sed -E 's/^RESULT passed=([0-9]+).*/\1/' <<<"$res")
ifail=$(sed -E 's/^RESULT passed=[0-9]+ failed=([0-9]+).*/\1/' <<<"$res")
passed=$(( ${utotal:-0} - ${ufail:-0} + ${ipass:-0} ))
failed=$(( ${ufail:-1} + ${ifail:-1} ))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
