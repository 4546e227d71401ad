#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Static checks: formatting (clang-format 14), banned functions and include
# direction, cppcheck. With --tidy, also clang-tidy over every source file
# (about a minute and a half; needs a configured build/ with
# compile_commands.json).
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
files=$(ls src/*.c src/*.h src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c tests/stack/*.c)

echo "lint: clang-format"
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files || fail=1

echo "lint: banned functions and include direction"
bash scripts/check-banned.sh || fail=1

echo "lint: cppcheck"
cppcheck --std=c11 --enable=warning,performance,portability --inline-suppr --error-exitcode=1 -q src || fail=1

if [ "${1:-}" = "--tidy" ]; then
    echo "lint: clang-tidy"
    for f in src/*.c src/*/*.c; do
        # The build may come from gcc, whose -Wno-format-truncation clang does not know.
        # Capture first: with pipefail, a pipeline into grep would take
        # clang-tidy's own failure as the pipeline's and skip the verdict.
        out=$(clang-tidy -p build --quiet --extra-arg=-Wno-unknown-warning-option "$f" 2>/dev/null)
        if grep -E "(error|warning):" <<<"$out"; then
            fail=1
        fi
    done
fi

[ "$fail" = 0 ] && echo "lint: ok"
exit "$fail"
