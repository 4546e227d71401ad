#!/bin/sh
# SPDX-License-Identifier: MIT
# Checks man/freno.8: man(1) renders it without a single warning, and every
# flag that `freno --help` lists is in it. (The configuration keys section is
# checked against the keys table by the unit test test_man.)
#   scripts/check-man.sh [path/to/freno]
set -u
cd "$(dirname "$0")/.."
bin=${1:-build/freno}
page=man/freno.8
fail=0

warnings=$(MANWIDTH=80 man --warnings -l "./$page" 2>&1 >/dev/null)
if [ -n "$warnings" ]; then
    echo "check-man: man --warnings $page:"
    echo "$warnings"
    fail=1
fi

flags=$("$bin" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
[ -n "$flags" ] || { echo "check-man: $bin --help lists no flag"; exit 1; }
for f in $flags; do
    roff=$(printf '%s' "$f" | sed 's/-/\\\\-/g')
    if ! grep -q -- "$roff" "$page"; then
        echo "check-man: $page does not document $f"
        fail=1
    fi
done

[ "$fail" = 0 ] && echo "check-man: ok ($(echo "$flags" | wc -l) flags)"
exit "$fail"
