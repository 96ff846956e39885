#!/usr/bin/env bash
# QEMU's own qcow2 iotests (groups in $IOTEST_GROUPS, default quick,auto) plus
# the series' zoned-qcow2-* tests, run on the patched build and judged against
# tests/iotests-baseline.txt: the tests that fail or are not run on this
# machine *without* the series, each with its reason.
#   - a test that fails and is not listed fails the suite.  A failure in the
#     parallel run is retried alone, up to $IOTEST_RETRIES times (default 2),
#     and passes when a retry passes: some upstream tests have fixed timeouts
#     (15 s for QMP in iotests.py, 10 s in common.qemu, 3 s for a job to
#     pause) that a loaded machine can overrun now and then;
#   - a test that is not run and is not listed fails the suite;
#   - a listed test is reported as skipped, with the list's reason;
#   - tests not meant for qcow2 ("not suitable for this image format") are not
#     counted at all.
# Environment: BUILD_DIR (default build/obj), IOTEST_GROUPS, IOTEST_JOBS (2),
# IOTEST_RETRIES (2).
set -uo pipefail
suite=iotests
. "$(dirname "$0")/lib.sh"
obj=${BUILD_DIR:-$top/build/obj}
groups=${IOTEST_GROUPS:-quick,auto}
jobs=${IOTEST_JOBS:-2}
retries=${IOTEST_RETRIES:-2}
baseline=$top/tests/iotests-baseline.txt
log=$top/build/results/iotests.log
: > "$ZQ_RESULTS"

idir=$obj/tests/qemu-iotests
[ -x "$idir/check" ] || { t_fail build "no $idir/check: build first"; exit 1; }
# Debian's python3 (python3-libnbd and friends live there), not a pyenv one.
py=/usr/bin/python3
[ -x $py ] || py=python3

src=${SRC_DIR:-$top/build/qemu}
zoned=$(cd "$src/tests/qemu-iotests/tests" &&
        ls zoned-qcow2-* 2>/dev/null | grep -v '\.out$')

run_check() { # args...
    (cd "$idir" && $py ./check -qcow2 --color off "$@")
}
# retry NAME: runs the test alone until it passes, $retries times at most;
# the log of the last attempt is $log.NAME
retry() {
    local n
    for n in $(seq "$retries"); do
        if run_check "$1" < /dev/null > "$log.$1" 2>&1 &&
           grep -q "^Passed all 1 iotests" "$log.$1"; then
            echo "        note: $1 failed in the parallel run, passed alone (attempt $n of $retries; timing)"
            return 0
        fi
    done
    return 1
}

echo "iotests: groups $groups + $(echo $zoned | wc -w) zoned tests, -j $jobs"
run_check -j "$jobs" -g "$groups" > "$log" 2>&1
# The series' tests that the groups did not run (they belong to quick and
# auto, so normally none)
results=$(tr '\r' '\n' < "$log")
extra=$(for t in $zoned; do
            grep -qE "^$t +(pass|fail|not run)" <<< "$results" || echo "$t"
        done)
if [ -n "$extra" ]; then
    # shellcheck disable=SC2086
    run_check -j "$jobs" $extra >> "$log" 2>&1
fi

declare -A listed reason
while read -r name status why; do
    case "$name" in ''|'#'*) continue;; esac
    listed[$name]=$status
    reason[$name]=$why
done < "$baseline"

declare -A seen
while read -r name result why; do
    [ -n "${seen[$name]:-}" ] && continue
    seen[$name]=1
    case "$result" in
    pass)
        t_pass "$name"
        [ -n "${listed[$name]:-}" ] &&
            echo "        note: $name is listed in iotests-baseline.txt (${listed[$name]}) but passed"
        ;;
    notrun)
        case "$why" in
        *"not suitable for this image format"*|*"not suitable for this image protocol"*)
            ;;
        *)
            if [ -n "${listed[$name]:-}" ]; then
                t_skip "$name" "${reason[$name]}"
            else
                t_fail "$name" "not run ($why), and not listed in tests/iotests-baseline.txt"
            fi;;
        esac
        ;;
    fail)
        if [ -n "${listed[$name]:-}" ]; then
            t_skip "$name" "fails on the baseline too: ${reason[$name]}"
        elif retry "$name"; then
            t_pass "$name"
        else
            t_fail "$name" "failed in the parallel run and $retries times alone: see build/results/iotests.log.$name"
            sed -n '/^--- /,/^Failures:/p' "$log.$name" | sed -n '1,60s/^/        /p'
        fi
        ;;
    esac
done < <(tr '\r' '\n' < "$log" | sed -nE 's/^([^ ]+) +(pass|fail|not run) +\[[^]]*\]( \[[^]]*\])? +[^ ]+ *(.*)$/\1 \2 \4/p' |
         sed -E 's/ not run / notrun /')

if [ ${#seen[@]} -eq 0 ]; then
    t_fail run "the iotests printed no results: see build/results/iotests.log"
    tail -n 20 "$log"
fi
exit 0
