#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# THE test command: installs what is missing, builds with ASan+UBSan into
# build/, runs the unit tests (ctest), starts the MariaDB topology, runs the
# integration suite against build/freno, runs the ThreadSanitizer job on a
# representative subset (scripts/tsan.sh --subset, its own build-tsan/),
# builds, lints, installs and runs the Debian package (scripts/package.sh
# --install), stops the topology, and ends with one line "N passed, N
# failed" (unit test executables + integration tests, both builds, and the
# package as one more).
# Exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build
JOBS=$(nproc 2>/dev/null || echo 2)
unit_pass=0
unit_fail=0
it_pass=0
it_fail=0
other_fail=0 # a step that failed before it could count anything

finish() {
    local passed=$((unit_pass + it_pass)) failed=$((unit_fail + it_fail + other_fail))
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

step() {
    echo "==> $*"
}

step "setup"
if ! bash scripts/setup.sh; then
    echo "test: setup failed" >&2
    other_fail=$((other_fail + 1))
    finish
fi

step "build ($BUILD_DIR, -DSANITIZE=address,undefined)"
if ! cmake -S . -B "$BUILD_DIR" -DSANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null ||
    ! cmake --build "$BUILD_DIR" -j"$JOBS"; then
    echo "test: build failed" >&2
    other_fail=$((other_fail + 1))
    finish
fi

step "static checks (format, banned functions, cppcheck, clang-tidy)"
if bash scripts/lint.sh --tidy; then
    unit_pass=$((unit_pass + 1))
else
    echo "test: static checks failed" >&2
    other_fail=$((other_fail + 1))
fi

step "topology"
trap 'bash scripts/topology.sh stop >/dev/null 2>&1 || true' EXIT
if ! bash scripts/topology.sh start; then
    echo "test: topology did not start; wiping it and trying once more" >&2
    bash scripts/topology.sh stop --wipe || true
    if ! bash scripts/topology.sh start; then
        echo "test: topology failed to start" >&2
        other_fail=$((other_fail + 1))
        finish
    fi
fi

step "unit tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest_log="$BUILD_DIR/ctest.log"
# The client library's tests also run real queries against the topology.
FRENO_TEST_MYSQL_PORT=13306 FRENO_TEST_MYSQL_USER=freno_test FRENO_TEST_MYSQL_PASSWORD=freno_test \
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" 2>&1 | tee "$ctest_log"
ctest_rc=${PIPESTATUS[0]}
summary=$(grep -E "tests passed, [0-9]+ tests? failed out of [0-9]+" "$ctest_log" | tail -n 1)
if [ -n "$summary" ]; then
    unit_fail=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
    unit_total=$(sed -E 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$summary")
    unit_pass=$((unit_pass + unit_total - unit_fail))
elif grep -q "No tests were found" "$ctest_log"; then
    echo "test: no unit tests registered"
elif [ "$ctest_rc" -ne 0 ]; then
    echo "test: ctest failed without a summary" >&2
    other_fail=$((other_fail + 1))
fi

step "integration tests"
it_log="$BUILD_DIR/integration.log"
FRENO_BIN="$PWD/$BUILD_DIR/freno" python3 tests/integration/run.py 2>&1 | tee "$it_log"
result=$(grep -E "^RESULT passed=[0-9]+ failed=[0-9]+" "$it_log" | tail -n 1)
if [ -n "$result" ]; then
    it_pass=$(sed -E 's/^RESULT passed=([0-9]+).*/\1/' <<<"$result")
    it_fail=$(sed -E 's/^RESULT passed=[0-9]+ failed=([0-9]+).*/\1/' <<<"$result")
else
    echo "test: the integration runner ended without a result" >&2
    other_fail=$((other_fail + 1))
fi

step "ThreadSanitizer (build-tsan: unit tests and a representative integration subset)"
# scripts/tsan.sh --subset; its own build, the topology above. A TSan report
# fails the test it came from. The list and why it is enough: scripts/tsan.sh.
tsan_log="$BUILD_DIR/tsan.log"
bash scripts/tsan.sh --subset 2>&1 | tee "$tsan_log"
tsan_result=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$tsan_log" | tail -n 1)
if [ -n "$tsan_result" ]; then
    tsan_pass=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$tsan_result")
    tsan_fail=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed$/\1/' <<<"$tsan_result")
    it_pass=$((it_pass + tsan_pass))
    it_fail=$((it_fail + tsan_fail))
else
    echo "test: the ThreadSanitizer job ended without a result" >&2
    other_fail=$((other_fail + 1))
fi

step "Debian package (scripts/package.sh --install: build, lintian, install, run as a service user)"
# About a minute. It installs the package on this machine (a throwaway one:
# the test machine and CI); package-check.sh binds port 8087, free inside
# scripts/isolated.sh's namespace.
if bash scripts/package.sh --install 2>&1 | tee "$BUILD_DIR/package.log" | grep -E "^(package|package-check):|^  [EW]:"; then
    unit_pass=$((unit_pass + 1))
else
    echo "test: the Debian package failed (log: $BUILD_DIR/package.log)" >&2
    unit_fail=$((unit_fail + 1))
fi

step "stopping the topology"
bash scripts/topology.sh stop || true
trap - EXIT
finish
