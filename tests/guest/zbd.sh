#!/bin/bash
# fio's zoned block device conformance suite (t/zbd/test-zbd-support from
# fio 3.41, built on the host by scripts/get-fio) on the NVMe ZNS namespace
# of a zoned qcow2 image (zoned-vm --nvme: nvme-ns on the image) and on a
# memory-backed null_blk device of the same geometry, the kernel's own zoned
# emulation, as the oracle.  Run by tests/guest.sh in a boot of its own.
# Prints "ZBD <device> <test> <PASS|FAIL|SKIP>" for every test on both, then a
# "RESULT PASS|FAIL zbd/test-NN" line per test: FAIL when null_blk passes the
# test and the namespace does not (the suite's log of it follows, as LOG
# lines).  ZBD_TESTS in zbd.conf limits the run to some tests ("-t N" each).
# Needs sg_inq (sg3-utils): without it the suite takes reads beyond the write
# pointer as restricted and expects them to fail, on every device.
ZBD_TESTS=
[ -r zbd.conf ] && . ./zbd.conf
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }
here=$PWD

# the namespace of zoned-vm's first --nvme (guest-init waits for it)
dev=${ZONED_VM_NVME%% *}
[ -b "$dev" ] || { fail zbd/nvme-namespace "no NVMe namespace ('$dev')"; exit 0; }
q=/sys/block/${dev#/dev/}/queue
[ "$(cat $q/zoned)" = host-managed ] || { fail zbd/nvme-zoned "$(cat $q/zoned)"; exit 0; }
command -v sg_inq > /dev/null || fail zbd/sg_inq "sg_inq (sg3-utils) is missing in the guest"

# The twin: sizes in MiB, the zone capacity from the first zone's report
zone_sectors=$(cat $q/chunk_sectors)
size_mb=$(( $(cat /sys/block/${dev#/dev/}/size) / 2048 ))
cap_sectors=$(blkzone report -c 1 $dev | sed -n 's/.*cap 0x\([0-9a-f]*\).*/\1/p')
cap_sectors=$((16#${cap_sectors:-0}))
modprobe null_blk nr_devices=0 || { fail zbd/null_blk-load; exit 0; }
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
n=/sys/kernel/config/nullb/zbd
mkdir $n &&
    echo 1 > $n/zoned && echo 1 > $n/memory_backed && echo 512 > $n/blocksize &&
    echo "$size_mb" > $n/size && echo $((zone_sectors / 2048)) > $n/zone_size &&
    echo $((cap_sectors / 2048)) > $n/zone_capacity &&
    echo "$(cat $q/max_open_zones)" > $n/zone_max_open &&
    echo "$(cat $q/max_active_zones)" > $n/zone_max_active &&
    echo 1 > $n/power || { fail zbd/null_blk-create; exit 0; }
twin=/dev/zbd
[ -b $twin ] || twin=/dev/nullb$(cat $n/index)
echo "zbd: $dev and $twin: ${size_mb} MiB, zones of $((zone_sectors / 2048)) MiB," \
     "capacity $((cap_sectors / 2048)) MiB, max open $(cat $q/max_open_zones)," \
     "max active $(cat $q/max_active_zones)"

args=()
for t in $ZBD_TESTS; do args+=(-t "$t"); done
# With zone limits, run the suite as fio's t/zbd/run-tests-against-nullb
# does ("-o MAX_OPEN"), so that prep_write resets all zones before each write
# test.  Without it a test starts from the zones earlier tests left, and fio
# refuses a write job that finds more open + closed zones in its range than
# max_open_zones, which a device with max_active > max_open may hold: test 58
# after the time-based tests 54 and 57 failed that way on the namespace and
# on null_blk alike (session 7).  Linux reports max_open_zones 128 for a
# device without limits, hence the test on max_active_zones.
if [ "$(cat $q/max_active_zones)" -gt 0 ]; then
    args+=(-o "$(cat $q/max_open_zones)")
fi
# run NAME DEV: the suite on DEV; "ZBD NAME NN STATUS" lines, logs kept
run() {
    local name=$1 d=$2 start=$SECONDS
    rm -rf "$here/run-$name" && mkdir -p "$here/run-$name/t" &&
        cp -r "$here/fio/t/zbd" "$here/run-$name/t/" && ln -s "$here/fio/fio" "$here/run-$name/fio"
    bash "$here/run-$name/t/zbd/test-zbd-support" "${args[@]}" "$d" > "$here/$name.out" 2>&1
    sed -n 's/^Running test \([0-9]*\) \.\.\. \([A-Z]*\).*/ZBD '"$name"' \1 \2/p' "$here/$name.out"
    echo "zbd: $name: $(grep -c ' PASS' "$here/$name.out") passed," \
         "$(grep -c ' FAIL' "$here/$name.out") failed," \
         "$(grep -c ' SKIP' "$here/$name.out") skipped in $((SECONDS - start)) s"
}
run nvme $dev > nvme.res
run null_blk $twin > null_blk.res
cat nvme.res null_blk.res

found=0
while read -r _ _ t ours; do
    found=1
    theirs=$(awk -v t="$t" '$3 == t { print $4 }' null_blk.res)
    if [ "$ours" = FAIL ] && [ "$theirs" = PASS ]; then
        fail "zbd/test-$t" "fails on the NVMe namespace, passes on null_blk"
        l=run-nvme/t/zbd/test-zbd-support.log.$((10#$t))
        # fio's own refusals may be far from the end of the log
        grep -n 'exceeds\|err=[^ 0]\|fio: ' "$l" 2>/dev/null | head -n 10 | sed 's/^/LOG /'
        tail -n 15 "$l" 2>/dev/null | sed 's/^/LOG /'
    elif [ "$ours" = FAIL ]; then
        pass "zbd/test-$t" "fails on null_blk as well"
    else
        pass "zbd/test-$t"
    fi
done < <(grep '^ZBD nvme ' nvme.res)
[ "$found" = 1 ] || { fail zbd/run "no test ran"; tail -n 20 nvme.out; }
