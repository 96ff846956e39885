#!/usr/bin/env bash
# QEMU's scripts/checkpatch.pl on every patch of the series: no errors; a patch
# with warnings must justify them in a note for reviewers below the "---"
# line (git notes --ref=checkpatch; scripts/pq exports them there).
set -uo pipefail
suite=checkpatch
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
src=${SRC_DIR:-$top/build/qemu}
cp=$src/scripts/checkpatch.pl
[ -f "$cp" ] || { t_fail setup "no $cp: run scripts/pq import"; exit 0; }
n=0
while read -r p; do
    case "$p" in ''|'#'*) continue;; esac
    n=$((n + 1))
    out=$(cd "$src" && perl "$cp" "$top/patches/$p" 2>&1)
    rc=$?
    errors=$(printf '%s\n' "$out" | grep -c '^ERROR:')
    warnings=$(printf '%s\n' "$out" | grep -c '^WARNING:')
    if [ "$rc" -ne 0 ] || [ "$errors" -gt 0 ]; then
        t_fail "$p" "$errors errors"
        printf '%s\n' "$out" | sed -n '1,40s/^/        /p'
    elif [ "$warnings" -gt 0 ] &&
         ! grep -q '^    checkpatch:' <<< "$(sed -n '/^---$/,/^diff --git /p' "$top/patches/$p")"; then
        t_fail "$p" "$warnings warnings, not justified in a note below the --- line"
        printf '%s\n' "$out" | grep -A3 '^WARNING:' | sed -n '1,40s/^/        /p'
    else
        t_pass "$p"
    fi
done < "$top/patches/series"
[ "$n" -gt 0 ] || t_skip series "patches/series is empty"
exit 0
