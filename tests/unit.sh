#!/usr/bin/env bash
# The series' unit tests (QEMU tests/unit binaries), one result per test case.
set -uo pipefail
suite=unit
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
obj=${BUILD_DIR:-$top/build/obj}
units=(test-qcow2-zone-sm test-qcow2-zoned-race)
# tap_results NAME SEP RC OUTPUT: one result per "ok"/"not ok" line of a
# GLib test's TAP OUTPUT, named NAME SEP test-path; a failure if it ran no
# case or exited with RC != 0
tap_results() {
    local name=$1 sep=$2 rc=$3 out=$4 line n=0
    while read -r line; do
        case "$line" in
        "ok "*) t_pass "$name$sep${line#ok [0-9]* }"; n=$((n + 1));;
        "not ok "*) t_fail "$name$sep${line#not ok [0-9]* }"; n=$((n + 1));;
        esac
    done <<< "$out"
    if [ "$n" -eq 0 ] || [ "$rc" -ne 0 ]; then
        t_fail "$name" "exit $rc after $n test cases"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/        /'
    fi
}
for u in "${units[@]}"; do
    if ! ninja -C "$obj" "tests/unit/$u" > "$top/build/results/unit-$u.build.log" 2>&1; then
        t_fail "$u" "does not build (build/results/unit-$u.build.log)"
        continue
    fi
    out=$("$obj/tests/unit/$u" --tap 2>&1)
    tap_results "$u" "" $? "$out"
done
# virtio-blk device tests (QEMU's qos-test, the virtio-blk-pci branch), with
# the zoned ones the series adds
if ! ninja -C "$obj" tests/qtest/qos-test > "$top/build/results/unit-qos-test.build.log" 2>&1; then
    t_fail qos-test "does not build (build/results/unit-qos-test.build.log)"
else
    qpath=/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/virtio-blk-pci
    qos() {
        (cd "$obj" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
         QTEST_QEMU_IMG=./qemu-img timeout 600 ./tests/qtest/qos-test "$@")
    }
    cases=$(qos -l 2>/dev/null | grep "^$qpath/")
    grep -q /zoned-errors <<< "$cases" && grep -q /zoned-conditions <<< "$cases" ||
        t_fail qos-test "the zoned virtio-blk tests are not registered"
    for c in $cases; do
        t_check "qos-test ${c#$qpath/}" qos --tap -p "$c"
    done
fi
# NVMe: the zoned namespace qtest the series adds (zoned qcow2 and the
# in-memory emulation), and QEMU's own nvme cases of qos-test
if ! ninja -C "$obj" tests/qtest/nvme-zoned-test > "$top/build/results/unit-nvme-zoned-test.build.log" 2>&1; then
    t_fail nvme-zoned-test "does not build (build/results/unit-nvme-zoned-test.build.log)"
else
    out=$(cd "$obj" && QTEST_QEMU_BINARY=./qemu-system-x86_64 QTEST_QEMU_IMG=./qemu-img \
          timeout 600 ./tests/qtest/nvme-zoned-test --tap 2>&1)
    tap_results nvme-zoned-test " " $? "$out"
fi
if [ -x "$obj/tests/qtest/qos-test" ]; then
    npath=/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/nvme
    for c in $(qos -l 2>/dev/null | grep "^$npath/"); do
        t_check "qos-test ${c#$npath/}" qos --tap -p "$c"
    done
fi
# file-posix.c with Linux headers before 5.9 (no zone capacity, no report
# flags): the series must guard what it uses of them
t_check file-posix-pre-5.9-headers python3 "$top/tests/old-headers.py" "$obj"
exit 0
