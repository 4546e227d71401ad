#!/usr/bin/env bash
# Rejects banned functions (in code, not in comments: scripts/strip-comments.py)
# and checks the include direction of the HTTP layer. Exit 1 with one line per
# finding.
set -u
cd "$(dirname "$0")/.."
fail=0
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol|localtime|gmtime|signal|system|alloca)[[:space:]]*\('
while IFS= read -r line; do
    echo "banned function: $line"
    fail=1
done < <(find src tests/unit tests/fuzz -name '*.[ch]' -print0 | xargs -0 python3 scripts/strip-comments.py | grep -E "$banned")
# http/ may include only snapshot/, metrics/, loop/, log/, core/ and its own headers.
while IFS= read -r line; do
    echo "include direction: $line"
    fail=1
done < <(grep -rnE '#include "(config|mysql|probe|inventory|throttler|leader|publish)/' src/http 2>/dev/null)
if [ "$fail" = 0 ]; then
    echo "check-banned: ok"
fi
exit "$fail"
