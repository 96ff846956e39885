#!/bin/bash
# The series' file-posix zoned code on a real kernel zoned device: qemu-io
# (copied in with its libraries by tests/guest.sh) opens /dev/vdc, a zoned
# virtio-blk disk backed by a zoned qcow2 image, with driver=host_device.
# /dev/vdc: 256 MiB, 16 MiB zones (0x8000 sectors), zones 0-1 conventional,
# max 3 open / 4 active.  /dev/vdb: 64 MiB zones of 48 MiB capacity (its
# last zone is used, then reset for the f2fs test that follows).
# Run from boot1.sh in the payload directory; prints RESULT lines.
C=/dev/vdc B=/dev/vdb
bundle=$PWD/qemu-io-bundle
Z=$((16 * 1048576))
pass() { echo "RESULT PASS hostdev-$1"; }
fail() { echo "RESULT FAIL hostdev-$1 ${2:-}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
# qio [-r] AIO DEV -c CMD...: qemu-io on DEV with host_device, O_DIRECT and
# the given aio engine; stdout to the file "out", stderr to "err".  Nothing
# the guest side of a device can cause may reach stderr (no error_report).
qio() {
    local ro=
    if [ "$1" = -r ]; then ro=-r; shift; fi
    local aio=$1 dev=$2
    shift 2
    LD_LIBRARY_PATH=$bundle/lib "$bundle/qemu-io" $ro --image-opts "$@" \
        "driver=host_device,filename=$dev,cache.direct=on,aio=$aio" \
        > out 2> err
    sed 's/^/    /' out
    if [ -s err ]; then
        echo "    stderr:"; sed 's/^/    /' err
        fail "stderr-empty" "$(head -n 3 err | tr '\n' '|')"
    fi
}
# Fields of qemu-io's zone reports of the zone at byte offset $1 (from the
# file "out" of a qio run), a line per report: "wptr cond type" in sectors
zone_of() {
    local start
    start=$(printf '0x%x' $(($1 / 512)))
    sed -n "s/^start: $start, len [^,]*, cap [^,]*, wptr \(0x[0-9a-f]*\), zcond:\([0-9]*\), \[type: \([0-9]*\)\]/\1 \2 \3/p" out
}
appended() { # the sectors qemu-io's "zap -p" printed, on one line
    sed -n 's/^After zap done, the append sector is \(0x[0-9a-f]*\)$/\1/p' out | tr '\n' ' ' | sed 's/ $//'
}
kwp() { # write pointer of the zone at byte $2 of $1 as the kernel reports it
    blkzone report -o $(($2 / 512)) -c 1 "$1" | sed -n 's/.* wptr \(0x[0-9a-f]*\) .*/\1/p'
}

if ! LD_LIBRARY_PATH=$bundle/lib "$bundle/qemu-io" --version > /dev/null; then
    fail run-qemu-io "$(LD_LIBRARY_PATH=$bundle/lib "$bundle/qemu-io" --version 2>&1 | head -n 2)"
    exit 0
fi

echo "== qemu-io host_device: zone report"
qio -r threads $B -c "zrp $((4 * 64 * 1048576)) 1"
# BlockZoneDescriptor: type 2 = sequential write required, state 1 = empty
check report-capacity-b "0x20000 0x18000" \
    "$(sed -n 's/^start: 0x80000, len \(0x[0-9a-f]*\), cap \(0x[0-9a-f]*\),.*/\1 \2/p' out)"
qio threads $C -c "zrp 0 16"
check report-zones 16 "$(grep -c '^start:' out)"
# conventional zones: type 1, state 0 (not write pointer)
check report-conventional 2 "$(grep -c 'zcond:0, \[type: 1\]' out)"
check report-sequential 14 "$(grep -c 'zcond:1, \[type: 2\]' out)"

echo "== writes at the write pointer, and after a refused write"
z2=$((2 * Z))
qio threads $C -c "write -P 1 $z2 64k" -c "write -P 2 $((z2 + 65536)) 64k" \
    -c "write -P 3 $z2 4k" -c "zap -p $z2 4k" -c "zrp $z2 1" \
    -c "read -P 1 $z2 64k" -c "read -P 2 $((z2 + 65536)) 64k" \
    -c "read -P 0xcd $((z2 + 131072)) 4k"
check write-not-at-wp-refused 1 "$(grep -c '^write failed' out)"
check append-after-refused-write 0x10100 "$(appended)"
check zone-after-writes "0x10108 2 2" "$(zone_of $z2)"
check reads-back 3 "$(grep -c '^read ' out)"
check kernel-wp-after-writes 0x000108 "$(kwp $C $z2)"

echo "== zone append (emulated by file-posix)"
z3=$((3 * Z))
qio threads $C -c "zap -p $z3 4k" -c "zap -p $z3 8k" -c "zap -p $z3 4k" \
    -c "read -P 0xcd $z3 16k" -c "zrp $z3 1"
check append-sectors "0x18000 0x18008 0x18018" "$(appended)"
check append-reads-back 1 "$(grep -c '^read 16384/16384' out)"
for aio in native io_uring; do
    qio $aio $C -c "zap -p $z3 4k" -c "zap -p $z3 4k"
    case $aio in native) want="0x18020 0x18028";; *) want="0x18030 0x18038";; esac
    check "append-aio-$aio" "$want" "$(appended)"
done
check kernel-wp-after-appends 0x000040 "$(kwp $C $z3)"
qio threads $C -c "zap -p 0 4k" -c "zap -p $Z 4k"
check append-conventional-refused 2 \
    "$(grep -c '^zone append failed: Invalid argument' out)"

echo "== an append must end in its zone"
# Zone 4 filled up to 4 KiB before its end: an 8 KiB append does not fit
# and is refused before it reaches the device; a 4 KiB one fills the zone,
# after which appends are refused (the full zone's write pointer is the
# start of zone 5).  Zone 5 stays empty.
z4=$((4 * Z)) z5=$((5 * Z))
qio threads $C -c "write -P 4 $z4 $((Z - 4096))" -c "zap -p $z4 8k" \
    -c "zap -p $z4 4k" -c "zap -p $z4 4k" -c "zrp $z4 2"
check append-past-zone-end-refused 2 \
    "$(grep -c '^zone append failed: Invalid argument' out)"
check append-fills-zone 0x27ff8 "$(appended)"
check zone-full "0x28000 14 2" "$(zone_of $z4)"
check next-zone-untouched "0x28000 1 2" "$(zone_of $z5)"
check kernel-next-zone-empty 0x000000 "$(kwp $C $z5)"

echo "== an append must end within the zone capacity (vdb: 48 of 64 MiB)"
# The last zone of vdb, reset again afterwards for f2fs
zb=$((31 * 64 * 1048576)) cap=$((48 * 1048576))
qio threads $B -c "write -P 5 $zb $((cap - 4096))" -c "zap -p $zb 8k" \
    -c "zap -p $zb 4k" -c "zap -p $zb 4k" -c "zrp $zb 1" \
    -c "read -P 0xcd $((zb + cap - 4096)) 4k"
check append-past-capacity-refused 2 \
    "$(grep -c '^zone append failed: Invalid argument' out)"
check append-fills-capacity 0x3f7ff8 "$(appended)"
check capacity-zone-full "0x400000 14 2" "$(zone_of $zb)"
check capacity-append-reads-back 1 "$(grep -c '^read 4096/4096' out)"
qio threads $B -c "zrs $zb $((64 * 1048576))"
check capacity-zone-reset 0x000000 "$(kwp $B $zb)"

echo "== open, close, finish, reset"
z6=$((6 * Z))
qio threads $C -c "zo $z6 $Z" -c "zrp $z6 1" -c "write -P 6 $z6 4k" \
    -c "zc $z6 $Z" -c "zrp $z6 1"
check explicit-open "0x30000 3 2" "$(zone_of $z6 | head -n 1)"
check closed "0x30008 4 2" "$(zone_of $z6 | tail -n 1)"
qio threads $C -c "zf $z6 $Z" -c "zrp $z6 1" -c "zap -p $z6 4k"
check finished "0x38000 14 2" "$(zone_of $z6)"
check append-after-finish-refused 1 \
    "$(grep -c '^zone append failed: Invalid argument' out)"
# the end of a full zone is the start of the next: nothing may land there
check finish-next-zone-untouched 0x000000 "$(kwp $C $((7 * Z)))"
qio threads $C -c "zrs $z6 $Z" -c "zrp $z6 1" -c "zap -p $z6 4k" \
    -c "read -P 0xcd $z6 4k" -c "read -P 0 $((z6 + 4096)) 4k"
check reset "0x30000 1 2" "$(zone_of $z6)"
check append-after-reset 0x30000 "$(appended)"
check reads-after-reset 2 "$(grep -c '^read 4096/4096' out)"
qio threads $C -c "zrs 0 $Z" -c "zf $Z $Z" -c "zo $((Z / 2)) $Z"
check ops-on-conventional-or-unaligned-refused 3 \
    "$(grep -c '^zone .* failed: Invalid argument' out)"

echo "== open limit (3)"
qio threads $C -c "zrs $((2 * Z)) $((14 * Z))" \
    -c "zo $((7 * Z)) $Z" -c "zo $((8 * Z)) $Z" -c "zo $((9 * Z)) $Z" \
    -c "zo $((10 * Z)) $Z" -c "zrp $((7 * Z)) 4" -c "zc $((7 * Z)) $((3 * Z))"
check open-limit "Too many references" \
    "$(sed -n 's/^zone open failed: \(Too many references\).*/\1/p' out)"
check open-limit-states "3 3 3 1" \
    "$(sed -n 's/.*zcond:\([0-9]*\),.*/\1/p' out | tr '\n' ' ' | sed 's/ $//')"

echo "== reset of all zones"
qio threads $C -c "write -P 9 0 64k" -c "zap -p $((11 * Z)) 64k" \
    -c "zrs 0 $((16 * Z))" -c "zrp 0 16" -c "zap -p $((11 * Z)) 4k" \
    -c "read -P 9 0 64k"
check reset-all-sequential-empty 14 "$(grep -c 'zcond:1, \[type: 2\]' out)"
check reset-all-conventional-kept 2 "$(grep -c 'zcond:0, \[type: 1\]' out)"
check reset-all-append "0x58000 0x58000" "$(appended)"
check reset-all-conventional-data 1 "$(grep -c '^read 65536/65536' out)"
# Leave something for the second boot to find: zone 12 with 12 KiB
qio threads $C -c "zap -p $((12 * Z)) 12k"
check kernel-wp-final 0x000018 "$(kwp $C $((12 * Z)))"
