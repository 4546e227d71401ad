#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The ThreadSanitizer job. It needs its own build: builds
# build-tsan/ with -DSANITIZE=thread, runs the unit tests and integration
# tests against that binary, and ends with "N passed, N failed" (unit test
# executables + integration tests). A ThreadSanitizer report fails the test
# that caused it: a unit test exits non-zero, and the integration harness
# fails a test whose daemon logged "WARNING: ThreadSanitizer".
#
#   tsan.sh            the unit tests and the whole integration suite
#   tsan.sh --subset   the unit tests and the representative subset below
#                      (what scripts/test.sh runs)
#   tsan.sh -k PATTERN the unit tests and the integration tests matching
#
# Uses the running topology if there is one, else starts it and stops it at
# the end. TSAN_EXTRA adds options (e.g. TSAN_EXTRA=print_suppressions=1).
set -uo pipefail
cd "$(dirname "$0")/.."

# The subset crosses every thread boundary of the daemon at least once:
# HTTP pool threads and the loop (snapshot publication, the command queue
# with a stalled backend, per-thread check event rings, metrics), the
# memcache publisher thread, libuv's thread pool (raft disk I/O and snapshot
# install, getaddrinfo), libcurl (inventory fetches and HTTP checks), the
# backend election and failover, shutdown on SIGTERM, and hostile input on
# the wire. Left out: tests that run those same paths again over longer
# waits (inventory refresh cycles, backend row reloads, raft partitions, SQL
# compatibility) and the hostile-load suite, whose latency bounds are set
# for the ASan build. The dashboard's tests cross the history's mutex (the
# loop writes, HTTP threads copy).
SUBSET=(
    -k test_core.
    -k test_hostile_wire.
    -k test_backend_ha.test_backend_schema_and_one_leader
    -k test_backend_ha.test_backend_kill9_failover_through_haproxy
    -k test_backend_ha.test_backend_sigterm_releases_leadership
    -k test_backend_ha.test_backend_stalled_and_down
    -k test_raft.test_raft_single_node_leads_at_once_and_keeps_state
    -k test_raft.test_raft_three_nodes_failover
    -k test_raft.test_raft_late_node_catches_up_from_snapshot
    -k test_inventory.test_initial_inventories
    -k test_inventory.test_http_check_404_leaves_host_out
    -k test_inventory.test_memcache_values_expiry_and_deletion
    -k test_reload.test_reload_clusters_under_check_load
    -k test_dashboard.test_history_fills_at_one_point_a_second
    -k test_dashboard.test_page_in_chromium
    -k test_security.test_sec_tls_rotation_on_sighup
    -k test_security.test_sec_named_tokens_audit_lines
)

filters=()
if [ "${1:-}" = "--subset" ]; then
    shift
    filters=("${SUBSET[@]}")
fi
filters+=("$@")

BUILD_DIR=build-tsan
fail() {
    echo "tsan: $*"
    echo "0 passed, 1 failed"
    exit 1
}

bash scripts/setup.sh >/dev/null || fail "setup failed"
echo "tsan: building $BUILD_DIR (-DSANITIZE=thread)"
cmake -S . -B "$BUILD_DIR" -DSANITIZE=thread -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build "$BUILD_DIR" -j"$(nproc 2>/dev/null || echo 2)" >/dev/null || fail "build failed"
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp:halt_on_error=0:second_deadlock_stack=1${TSAN_EXTRA:+:$TSAN_EXTRA}"

if ! bash scripts/topology.sh status >/dev/null 2>&1; then
    bash scripts/topology.sh start >/dev/null || fail "the topology did not start"
    trap 'bash scripts/topology.sh stop >/dev/null 2>&1 || true' EXIT
fi

unit_log="$BUILD_DIR/ctest.log"
echo "tsan: unit tests"
FRENO_TEST_MYSQL_PORT=13306 FRENO_TEST_MYSQL_USER=freno_test FRENO_TEST_MYSQL_PASSWORD=freno_test \
    ctest --test-dir "$BUILD_DIR" --output-on-failure 2>&1 | tee "$unit_log"
summary=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$unit_log" | tail -n 1)
upass=0
ufail=1
if [ -n "$summary" ]; then
    ufail=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
    utotal=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
    upass=$((utotal - ufail))
fi

it_log="$BUILD_DIR/integration.log"
echo "tsan: integration tests ${filters[*]:-(all)}"
FRENO_BIN="$PWD/$BUILD_DIR/freno" python3 tests/integration/run.py "${filters[@]}" 2>&1 | tee "$it_log"
res=$(grep -E "^RESULT passed=[0-9]+ failed=[0-9]+" "$it_log" | tail -n 1)
ipass=0
ifail=1
if [ -n "$res" ]; then
    ipass=$(sed -E 's/^RESULT passed=([0-9]+).*/\1/' <<<"$res")
    ifail=$(sed -E 's/^RESULT passed=[0-9]+ failed=([0-9]+).*/\1/' <<<"$res")
fi
passed=$((upass + ipass))
failed=$((ufail + ifail))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
