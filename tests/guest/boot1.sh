#!/bin/bash
# First boot of the guest test (make check-guest), run by scripts/zoned-vm in
# the guest.  Disks: /dev/vda: 2 GiB, 64 MiB zones, max 8 open / 12 active;
# /dev/vdb: 2 GiB, 64 MiB zones of 48 MiB capacity, 4 conventional zones;
# /dev/vdc: 256 MiB, 16 MiB zones, 2 conventional, max 3 open / 4 active,
# for qemu-io with driver=host_device (hostdev.sh).
# Prints "RESULT PASS|FAIL name [detail]" lines for the host, and the zone
# reports and checksums the second boot compares against.
A=/dev/vda B=/dev/vdb
a=${A#/dev/} b=${B#/dev/}
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
zcond() { # dev sector: the condition of the zone, as blkzone abbreviates it
    blkzone report -o "$2" -c 1 "$1" | sed -n 's/.*zcond:[ 0-9]*(\([a-z]*\)).*/\1/p'
}
zwp() { # dev sector: write pointer as blkzone shows it (from the zone start)
    blkzone report -o "$2" -c 1 "$1" | sed -n 's/.* wptr \(0x[0-9a-f]*\) .*/\1/p'
}

echo "== sysfs"
check sysfs-a-zoned host-managed "$(cat /sys/block/$a/queue/zoned)"
check sysfs-b-zoned host-managed "$(cat /sys/block/$b/queue/zoned)"
check sysfs-a-nr-zones 32 "$(cat /sys/block/$a/queue/nr_zones)"
check sysfs-a-chunk-sectors 131072 "$(cat /sys/block/$a/queue/chunk_sectors)"
check sysfs-a-max-open 8 "$(cat /sys/block/$a/queue/max_open_zones)"
check sysfs-a-max-active 12 "$(cat /sys/block/$a/queue/max_active_zones)"
check sysfs-b-max-open 0 "$(cat /sys/block/$b/queue/max_open_zones)"
append=$(cat /sys/block/$a/queue/zone_append_max_bytes)
if [ "$append" -gt 0 ] && [ "$append" -le 1048576 ]; then
    pass sysfs-a-zone-append-max
else
    fail sysfs-a-zone-append-max "$append"
fi

echo "== blkzone report"
blkzone report -c 6 $B
check report-b-conventional 4 "$(blkzone report $B | grep -c 'CONVENTIONAL')"
# the first sequential zone of vdb (zone 4, sector 0x80000)
check report-b-capacity 0x018000 \
    "$(blkzone report -o 0x80000 -c 1 $B | sed -n 's/.*cap \(0x[0-9a-f]*\),.*/\1/p')"
check report-a-zones 32 "$(blkzone report $A | grep -c SEQ_WRITE_REQUIRED)"

echo "== zone state changes (zone 1 of vda)"
z=131072
blkzone open -o $z -c 1 $A && check open oe "$(zcond $A $z)"
blkzone close -o $z -c 1 $A && check close-empty em "$(zcond $A $z)"
dd if=/dev/zero of=$A bs=4k count=1 seek=$((z / 8)) oflag=direct status=none &&
    check write-implicit-open oi "$(zcond $A $z)"
blkzone close -o $z -c 1 $A && check close cl "$(zcond $A $z)"
blkzone finish -o $z -c 1 $A && check finish fu "$(zcond $A $z)"
blkzone reset -o $z -c 1 $A && check reset em "$(zcond $A $z)"

echo "== writes"
if dd if=/dev/urandom of=$A bs=64k count=4 seek=$((z * 512 / 65536)) \
        oflag=direct status=none; then
    pass write-at-wp
else
    fail write-at-wp
fi
check wp-advanced 0x000200 "$(zwp $A $z)"
if dd if=/dev/zero of=$A bs=4k count=1 seek=$((z / 8 + 100)) oflag=direct \
        status=none 2>/dev/null; then
    fail write-not-at-wp "succeeded"
else
    pass write-not-at-wp
fi
blkzone reset $A

echo "== open limit: the ninth explicit open fails with the open resource error"
for i in $(seq 1 8); do blkzone open -o $((i * 131072)) -c 1 $A; done
err=$(blkzone open -o $((9 * 131072)) -c 1 $A 2>&1)
case "$err" in
*"Too many references"*) pass open-resource-status;;
*) fail open-resource-status "$err";;
esac
err=$(dd if=/dev/zero of=$A bs=4k count=1 seek=$((10 * 131072 / 8)) \
      oflag=direct status=none 2>&1)
case "$err" in
*"Too many references"*) pass write-open-resource-status;;
*) fail write-open-resource-status "$err";;
esac
blkzone reset $A

echo "== fio --zonemode=zbd"
if fio --name=seq --filename=$A --zonemode=zbd --direct=1 --ioengine=psync \
        --rw=write --bs=64k --offset=128M --size=256M --verify=crc32c \
        --do_verify=1 --output-format=terse > /tmp/fio1 2>&1; then
    pass fio-seq-write-verify
else
    fail fio-seq-write-verify "$(tail -n 3 /tmp/fio1)"
fi
# 640 MiB into 16 zones: more than the 8 zones that may be open at a time
# can hold, so fio must fill zones and open others
if fio --name=many --filename=$A --zonemode=zbd --direct=1 --ioengine=libaio \
        --iodepth=4 --rw=randwrite --bs=128k --offset=512M --size=1G \
        --io_size=640M --output-format=terse > /tmp/fio2 2>&1; then
    zones=$(blkzone report -o 1048576 -c 16 $A | grep -vc 'zcond: *1(em)')
    if [ "$zones" -gt 8 ]; then
        pass fio-more-zones-than-max-open
    else
        fail fio-more-zones-than-max-open "only $zones zones written"
    fi
else
    fail fio-more-zones-than-max-open "$(tail -n 3 /tmp/fio2)"
fi
blkzone reset $A

echo "== qemu-io with driver=host_device on vdc"
bash ./hostdev.sh

echo "== QEMU's iotest zoned (host_device on null_blk)"
bash ./upstream-zoned.sh

echo "== btrfs (zoned) on vda"
. ./fs-test.sh
fs_test btrfs $A /mnt/a btrfs 3 3 mkfs.btrfs -q -f -O zoned $A

echo "== f2fs on vdb (conventional zones, capacity < zone size)"
fs_test f2fs $B /mnt/b f2fs 2 4 mkfs.f2fs -q -f -m $B

echo "== state for the second boot"
# One zone left implicitly open, one closed, one full on vdb
s=$((8 * 131072))
dd if=/dev/urandom of=$B bs=64k count=2 seek=$((s * 512 / 65536)) oflag=direct status=none
dd if=/dev/urandom of=$B bs=64k count=1 seek=$(((s + 131072) * 512 / 65536)) oflag=direct status=none
blkzone close -o $((s + 131072)) -c 1 $B
blkzone finish -o $((s + 2 * 131072)) -c 1 $B
sync
blkzone report $A | sed 's/^/REPORT-A /'
blkzone report $B | sed 's/^/REPORT-B /'
blkzone report /dev/vdc | sed 's/^/REPORT-C /'
