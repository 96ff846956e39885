#!/usr/bin/env bash
# The series' code under AddressSanitizer and UndefinedBehaviorSanitizer
# (make check-asan; in make check): qemu-img and qemu-io built with
# --enable-asan --enable-ubsan (build/obj-asan) run the zoned iotests and a
# depth-32 workload of writes and zone appends across zones.  Any sanitizer
# report fails.  (qemu-system-x86_64, which the iotests use for QMP, comes
# from the normal build.)
set -uo pipefail
suite=asan
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
obj=$top/build/obj
asan=${ASAN_BUILD_DIR:-$top/build/obj-asan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
san='ERROR: AddressSanitizer\|runtime error:\|SUMMARY: UndefinedBehaviorSanitizer'

if ! BUILD_DIR=$asan BUILD_TARGETS="qemu-img qemu-io" \
     EXTRA_CONFIGURE="--enable-asan --enable-ubsan" "$top/scripts/build" \
     > "$top/build/results/asan-build.log" 2>&1; then
    t_fail build "see build/results/asan-build.log"
    tail -n 20 "$top/build/results/asan-build.log" | sed 's/^/        /'
    exit 0
fi
t_pass build

# The zoned iotests with the sanitized tools.  A test that fails without a
# sanitizer report is retried alone, twice at most (as in tests/iotests.sh:
# fixed QMP timeouts of the iotests can expire on a loaded machine).
src=$top/build/qemu/tests/qemu-iotests/tests
tests=$(cd "$src" && ls zoned-qcow2-* | grep -v '\.out$')
log=$top/build/results/asan-iotests.log
check_asan() {
    (cd "$asan/tests/qemu-iotests" &&
     QEMU_PROG=$obj/qemu-system-x86_64 QEMU_NBD_PROG=$obj/qemu-nbd \
     QSD_PROG=$obj/storage-daemon/qemu-storage-daemon \
     /usr/bin/python3 ./check -qcow2 --color off "$@") < /dev/null
}
# shellcheck disable=SC2086
check_asan $tests > "$log" 2>&1
# (grep -q reads a here-string: were tr piped into it, tr could die of
# SIGPIPE under pipefail after grep found the line, and turn the test red)
results=$(tr '\r' '\n' < "$log")
for t in $tests; do
    n=$t
    if grep -q "$san" "$log"; then
        t_fail "iotest-$n" "sanitizer report: see build/results/asan-iotests.log"
        grep -A20 "$san" "$log" | sed -n '1,30s/^/        /p'
    elif grep -qE "^$n +pass" <<< "$results"; then
        t_pass "iotest-$n"
    else
        ok=
        for try in 1 2; do
            check_asan "$n" > "$log.$n" 2>&1
            if grep -q "$san" "$log.$n"; then
                break
            elif grep -q '^Passed all 1 iotests' "$log.$n"; then
                ok=1
                echo "        note: $n failed in the batch, passed alone (attempt $try of 2; timing)"
                break
            fi
        done
        if [ -n "$ok" ]; then
            t_pass "iotest-$n"
        else
            t_fail "iotest-$n" "see build/results/asan-iotests.log and asan-iotests.log.$n"
            grep -A20 "$san" "$log.$n" | sed -n '1,30s/^/        /p'
            sed -n '/^--- /,/^Failures:/p' "$log.$n" | sed -n '1,30s/^/        /p'
        fi
    fi
done

# Depth 32: writes across zone boundaries, then appends, then a full report
work=$top/build/asan-work
rm -rf "$work" && mkdir -p "$work"
img=$work/z.qcow2
out=$work/out
"$asan/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=1M,conventional_zones=1,max_open_zones=4 "$img" 64M
{
    "$asan/qemu-img" bench -w -f qcow2 -d 32 -s 64k -S 64k -o 1M -c 256 "$img" &&
    cmds=()
    for i in $(seq 0 31); do
        cmds+=(-c "aio_write -P $((i + 1)) $((20 * 1048576 + i * 4096)) 4k")
    done
    for z in 30 31 32 33 34 35 36 37; do
        cmds+=(-c "zap -p $((z * 1048576)) 64k" -c "zap -p $((z * 1048576)) 4k")
    done
    "$asan/qemu-io" -f qcow2 "${cmds[@]}" -c aio_flush -c "zrp 0 64" \
        -c "zf 40M 1M" -c "zrs 0 64M" "$img" &&
    "$asan/qemu-img" check "$img"
} > "$out" 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -q "$san" "$out" &&
   [ "$(grep -c '^wrote 4096/4096' "$out")" -eq 32 ] &&
   [ "$(grep -c 'append sector' "$out")" -eq 16 ]; then
    t_pass depth-32-workload
else
    t_fail depth-32-workload "exit $rc"
    grep -A20 "$san" "$out" | sed -n '1,30s/^/        /p'
    tail -n 10 "$out" | sed 's/^/        /'
fi
rm -rf "$work"
exit 0
