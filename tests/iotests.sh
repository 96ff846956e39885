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
hang=${IOTEST_HANG_SECONDS:-600}
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

# watch_hangs OUT PID: while the check PID (writing to OUT) runs, a test that started more
# than $hang seconds ago and has not ended is killed (its script and the
# QEMU processes that use its scratch directory), so that it fails instead
# of holding up the suite; it is then retried alone like any failure.
# Upstream's export-incoming-iothread once hung here in qcow2's
# cache_clean_timer_del_and_wait() (an iothread race, not the series').
watch_hangs() {
    local out=$1 pid=$2 name start t
    while kill -0 "$pid" 2>/dev/null; do
        sleep 20
        tr '\r' '\n' < "$out" 2>/dev/null |
            awk '$2 == "started" { s[$1] = $3 }
                 $2 == "pass" || $2 == "fail" || $2 == "not" { delete s[$1] }
                 END { for (n in s) print n, s[n] }' |
            while read -r name start; do
                start=${start//[\[\]]/}
                t=$(date -d "$start" +%s 2>/dev/null) || continue
                # a start time "in the future" began before midnight
                [ "$t" -gt "$(date +%s)" ] && t=$((t - 86400))
                if [ $(( $(date +%s) - t )) -gt "$hang" ]; then
                    echo "iotests: $name has run for more than ${hang}s: killed" >> "$log.hangs"
                    pkill -9 -f "scratch/[^ ]*-$name/" || true
                    pkill -9 -f "qemu-iotests/(tests/)?$name( |\$)" || true
                fi
            done
    done
}
run_check() { # OUT args...: the check's output goes to OUT
    local out=$1 pid
    shift
    (cd "$idir" && exec $py ./check -qcow2 --color off "$@") > "$out" 2>&1 &
    pid=$!
    watch_hangs "$out" "$pid" &
    wait "$pid"
}
# retry NAME: runs the test alone until it passes, $retries times at most;
# the log of the last attempt is $log.NAME
retry() {
    local n
    for n in $(seq "$retries"); do
        if run_check "$log.$1" "$1" < /dev/null &&
           grep -q "^Passed all 1 iotests" "$log.$1"; then
            echo "        note: $1 failed in the parallel run, passed alone (attempt $n of $retries; timing)"
            return 0
        fi
    done
    return 1
}

echo "iotests: groups $groups + $(echo $zoned | wc -w) zoned tests, -j $jobs"
rm -f "$log.hangs"
run_check "$log" -j "$jobs" -g "$groups"
# The series' tests that the groups did not run (they belong to quick and
# auto, so normally none)
results=$(tr '\r' '\n' < "$log")
extra=$(for t in $zoned; do
            grep -qE "^$t +(pass|fail|not run)" <<< "$results" || echo "$t"
        done)
if [ -n "$extra" ]; then
    # shellcheck disable=SC2086
    run_check "$log.extra" -j "$jobs" $extra
    cat "$log.extra" >> "$log"
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

if [ -s "$log.hangs" ]; then
    sed 's/^/        note: /' "$log.hangs"
fi
if [ ${#seen[@]} -eq 0 ]; then
    t_fail run "the iotests printed no results: see build/results/iotests.log"
    tail -n 20 "$log"
fi
exit 0
