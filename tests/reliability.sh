#!/usr/bin/env bash
# Reliability (make check-reliability; short form in make check, long form
# with RELIABILITY_KILLS / RELIABILITY_SECONDS / FUZZ_IMAGES, see make soak):
#   power loss (tests/powerloss/powerloss.py, POWERLOSS_SECONDS for soak);
#   zone oracle (tests/oracle/zone-fuzz.py against zonemodel.py,
#   ZONE_FUZZ_SEQUENCES / ZONE_FUZZ_SECONDS);
#   crash test: qemu-io killed with SIGKILL at random moments during mixed
#   zone I/O on three geometries; after each kill the image must open, pass
#   qemu-img check, and hold every flushed write below consistent write
#   pointers (tests/crash/crash-test.py);
#   hostile images: mutated zoned extensions, write pointer tables and qcow2
#   headers through qemu-img info/check and qemu-io built with ASan and UBSan
#   (tests/fuzz/fuzz-images.py; the images in tests/fuzz/regressions run
#   first); I/O fault injection: the iotest zoned-qcow2-faults.
set -uo pipefail
suite=reliability
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
obj=${BUILD_DIR:-$top/build/obj}
kills=${RELIABILITY_KILLS:-50}
seconds=${RELIABILITY_SECONDS:-0}
seed_opt=()
[ -n "${RELIABILITY_SEED:-}" ] && seed_opt=(--seed "$RELIABILITY_SEED")

# judge NAME CLEAN-PATTERN PROBLEM-PATTERN [HINT]: one result from the
# summary line (the last) of a tool's output in $out, its exit status in $rc
judge() {
    local summary
    summary=$(printf '%s\n' "$out" | tail -n 1)
    # Notes (the fuzzer's slow but not hung commands) and the summary
    sed -n 's/^NOTE /  note: /p' <<< "$out"
    echo "  $summary"
    if [ "$rc" -eq 0 ] && grep -q "$2" <<< "$summary"; then
        t_pass "$1 ($summary)"
    else
        t_fail "$1" "$summary${4:+ ($4)}"
        printf '%s\n' "$out" | grep -A12 "$3" | sed -n '1,60s/^/        /p'
    fi
}

out=$(python3 "$top/tests/crash/crash-test.py" --qemu-img "$obj/qemu-img" \
      --qemu-io "$obj/qemu-io" --dir "$top/build/crash" --kills "$kills" \
      --seconds "$seconds" "${seed_opt[@]}" 2>&1)
rc=$?
judge crash-test ' 0 violations' VIOLATION

# Power loss: every write and flush the qcow2 node sends to its file is
# logged (blklogwrites) and images are rebuilt at every flush and at crash
# points where writes since the last flush are lost or torn
# (tests/powerloss/powerloss.py); --self-test shows that reordered or lost
# table writes are caught
out=$(python3 "$top/tests/powerloss/powerloss.py" --qemu-img "$obj/qemu-img" \
      --qemu-io "$obj/qemu-io" --dir "$top/build/powerloss" \
      --seconds "${POWERLOSS_SECONDS:-0}" --seed "${RELIABILITY_SEED:-1}" 2>&1)
rc=$?
judge power-loss ' 0 violations' VIOLATION
out=$(python3 "$top/tests/powerloss/powerloss.py" --qemu-img "$obj/qemu-img" \
      --qemu-io "$obj/qemu-io" --dir "$top/build/powerloss-self" \
      --seed "${RELIABILITY_SEED:-1}" --self-test 2>&1)
rc=$?
judge power-loss-self-test 'the checks catch broken replays' 'missed\|FAIL'

# I/O fault injection: the iotest zoned-qcow2-faults (blkdebug) injects one
# fault per scenario; count them from its reference output
faults=$(grep -c '^(qemu-io exit status' \
         "$top/build/qemu/tests/qemu-iotests/tests/zoned-qcow2-faults.out")
flog=$top/build/results/reliability-faults.log
(cd "$obj/tests/qemu-iotests" &&
 /usr/bin/python3 ./check -qcow2 --color off zoned-qcow2-faults) > "$flog" 2>&1
if grep -q '^Passed all 1 iotests' "$flog"; then
    t_pass "fault-injection ($faults faults injected, consistent after each)"
    echo "  fault injection: $faults faults injected, 0 violations"
else
    t_fail fault-injection "see build/results/reliability-faults.log"
    sed -n '/^--- /,/^Failures:/p' "$flog" | sed -n '1,40s/^/        /p'
fi

asan=${ASAN_BUILD_DIR:-$top/build/obj-asan}
images=${FUZZ_IMAGES:-500}
if [ ! -x "$asan/qemu-io" ]; then
    BUILD_DIR=$asan BUILD_TARGETS="qemu-img qemu-io" \
        EXTRA_CONFIGURE="--enable-asan --enable-ubsan" "$top/scripts/build" \
        > "$top/build/results/asan-build.log" 2>&1 ||
        { t_fail fuzz "the ASan build failed (build/results/asan-build.log)"; exit 0; }
fi
out=$(python3 "$top/tests/fuzz/fuzz-images.py" --qemu-img "$asan/qemu-img" \
      --qemu-io "$asan/qemu-io" --dir "$top/build/fuzz" --images "$images" \
      --seconds "${FUZZ_SECONDS:-0}" --save "$top/build/fuzz-found" \
      --replay "$top/tests/fuzz/regressions" "${seed_opt[@]}" 2>&1)
rc=$?
judge fuzz ' 0 failing images' '^FAIL' "images that failed: build/fuzz-found"

# Zone semantics against an independent reference model (tests/oracle):
# random geometries and edge-biased operation sequences through qemu-io
# (ASan + UBSan), every result, zone report and data read compared with the
# model; the minimized reproducers in tests/oracle/regressions run first
out=$(python3 "$top/tests/oracle/zone-fuzz.py" --qemu-img "$asan/qemu-img" \
      --qemu-io "$asan/qemu-io" --dir "$top/build/zone-fuzz" \
      --seed "${RELIABILITY_SEED:-1}" --timeout 60 \
      --sequences "${ZONE_FUZZ_SEQUENCES:-150}" \
      --seconds "${ZONE_FUZZ_SECONDS:-0}" \
      --replay "$top/tests/oracle/regressions" 2>&1)
rc=$?
judge zone-oracle ' 0 differences, 0 crashes, 0 hangs, 0 sanitizer reports' \
    '^=== ' "reproducers: build/zone-fuzz/found"

exit 0
