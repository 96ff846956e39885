#!/bin/bash
# Seventh boot of the guest test (tests/guest.sh boot 7): read-only and
# offline zones set from the host while the guest runs.  The guest asks for
# a condition with a console line "ZONEFAIL node=N offset=BYTES cond=C"; on
# the host, scripts/zone-fail --watch reads the console and runs QMP's
# x-blockdev-set-zone-condition (its answer, "ZONEFAIL-HOST ... rc=...",
# goes to the log, not to the guest); the guest polls blkzone report until
# the zone shows the condition (30 s; the request is repeated every 10 s in
# case a line got lost).
# Disks (node names as scripts/zoned-vm gives them): /dev/vda (disk0): 1 GiB,
# 64 MiB zones, 2 conventional; /dev/vdb (disk1): 2 GiB, 64 MiB zones, for
# btrfs; /dev/vdc (disk2): 2 GiB, 64 MiB zones, 2 conventional (f2fs's
# metadata), for f2fs.
# Steps: (1) the raw device: a read-only zone (writes, zone operations,
# reads, whole-device reset), an offline zone (reads, writes), both back to
# normal; (2) btrfs -O zoned: the zone it writes data to turned read-only
# while files are written, then unmounted, mounted, the zone normal again,
# mounted; (3) the same with the zone of btrfs's metadata (first stripe of
# the METADATA|DUP chunk) on a new btrfs; (4) f2fs like (2); (5) an NVMe
# zoned namespace (first of $ZONED_VM_NVME, node nvmedisk0: 512 MiB, 64 MiB
# zones): the NVMe status of refused commands (nvme-cli passthrough) and
# EIO through the block device; (6) a read-only and an offline zone on vda
# left for the host to find in the image after the boot.
# Prints "RESULT PASS|FAIL name [detail]" lines (judged: EIO where a zone
# condition refuses, data written before intact, the conditions reported,
# no hang or kernel BUG) and "NOTE name ..." lines (observed, not judged:
# how Linux and the file systems react, mount options, kernel messages).
# shellcheck disable=SC2086
set -- ${ZONED_VM_DISKS:-/dev/vda /dev/vdb /dev/vdc}
A=${1:-/dev/vda} B=${2:-/dev/vdb} C=${3:-/dev/vdc}
ZS=131072                   # sectors per zone (64 MiB)
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
note() { local n=$1; shift; echo "NOTE $n $*" | cut -c1-400; }
one() { tr '\n' '|' | sed 's/|$//' | cut -c1-300; }   # output on one line
zcond() { # dev sector: the condition of the zone, as blkzone abbreviates it
    blkzone report -o "$2" -c 1 "$1" | sed -n 's/.*zcond:[ 0-9]*(\([a-z]*\)).*/\1/p'
}
zwp() { # dev sector: write pointer as blkzone shows it (from the zone start)
    blkzone report -o "$2" -c 1 "$1" | sed -n 's/.* wptr \(0x[0-9a-f]*\) .*/\1/p'
}
zline() { blkzone report -o "$2" -c 1 "$1" | sed 's/^ *//'; }

# Kernel messages stay off the console (a printk in the middle of a
# ZONEFAIL line would garble the request); dmesg deltas are printed instead.
dmesg -n 1 2>/dev/null
mark=0
dmesg_mark() { mark=$(dmesg | wc -l); }
dmesg_delta() { # name: kernel messages since dmesg_mark (fs, block, zone, errors)
    local name=$1 lines
    lines=$(dmesg | tail -n +$((mark + 1)))
    if printf '%s\n' "$lines" | grep -qE 'BUG:|Oops|Kernel panic|general protection'; then
        fail "$name-kernel-bug" "$(printf '%s\n' "$lines" | grep -E 'BUG:|Oops|panic|protection' | head -n 3 | one)"
    fi
    printf '%s\n' "$lines" |
        grep -E 'BTRFS|btrfs|F2FS|f2fs|I/O error|zone|vd[a-c]|WARNING|error' |
        sed 's/^\[ *[0-9.]*\] //' | awk '!seen[$0]++' | head -n 25 |
        while IFS= read -r l; do note "$name-dmesg" "$l"; done
    dmesg_mark
}

# lim SECONDS CMD...: CMD's output (stdout and stderr) and exit status;
# 255 and a FAIL line when it has not ended after SECONDS (it is left
# behind, the boot goes on; its output goes to a file so that a command
# substitution around lim does not wait for it)
exec 9>&1
lim() {
    local t=$1 pid i f
    f=$(mktemp /tmp/lim.XXXXXX)
    shift
    "$@" > "$f" 2>&1 &
    pid=$!
    for ((i = 0; i < t * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            i=$?
            cat "$f"
            return $i
        fi
        sleep 0.1
    done
    cat "$f"
    echo "RESULT FAIL hang $* (still running after $t s)" >&9
    return 255
}
# eio NAME RC OUTPUT: PASS when the command failed with EIO
eio() {
    if [ "$2" != 0 ] && [ "$2" != 255 ] && [[ $3 == *"Input/output error"* ]]; then
        pass "$1"
    else
        fail "$1" "exit $2: $(printf '%s' "$3" | one)"
    fi
}

# setcond NODE DEV SECTOR COND: ask the host for the condition and wait
# until blkzone report shows it (ro, of; for normal: neither)
setcond() {
    local node=$1 dev=$2 sec=$3 cond=$4 want c i
    case $cond in read-only) want=ro ;; offline) want=of ;; *) want= ;; esac
    for ((i = 0; i < 150; i++)); do
        [ $((i % 50)) = 0 ] && echo "ZONEFAIL node=$node offset=$((sec * 512)) cond=$cond"
        c=$(zcond "$dev" "$sec")
        if [ -n "$want" ]; then
            [ "$c" = "$want" ] && return 0
        else
            case $c in ro|of|'') ;; *) return 0 ;; esac
        fi
        sleep 0.2
    done
    echo "zone at sector $sec of $dev still '$c' after 30 s" >&2
    return 1
}
# sum DEV SECTOR MIB: sha256 of MIB MiB at SECTOR (O_DIRECT)
sum() {
    dd if="$1" bs=1M count="$3" skip=$(($2 * 512)) iflag=direct,skip_bytes status=none | sha256sum | cut -d' ' -f1
}
# wr DEV SECTOR FILE: write FILE at SECTOR (O_DIRECT, 64 KiB blocks)
wr() { dd if="$3" of="$1" bs=64k seek=$(($2 * 512)) oflag=direct,seek_bytes status=none 2>&1; }
# open_zone DEV: the open zone with the highest write pointer, not one of
# the first two (btrfs keeps its superblock log there): "SECTOR WP"
open_zone() {
    blkzone report "$1" | sed -n 's/^ *start: *\(0x[0-9a-f]*\),.* wptr \(0x[0-9a-f]*\) .*zcond: *[23](o[ie]).*/\1 \2/p' |
        while read -r s w; do [ $((s)) -ge $((2 * ZS)) ] && echo "$((s)) $((w))"; done |
        sort -k2,2n | tail -n 1
}
# btrfs_meta_zone DEV: the zone of the first stripe of btrfs's metadata
# chunk: "SECTOR WP"
btrfs_meta_zone() {
    local off s
    off=$(btrfs inspect-internal dump-tree -t chunk "$1" 2>/dev/null | awk '
        / type METADATA/ { m = 1 } m && /[[:space:]]stripe 0 devid / { print $NF; exit }')
    [ -n "$off" ] || return
    s=$((off / 512 / ZS * ZS))
    echo "$s $(( $(zwp "$1" $s) ))"
}
# dev_extents TYPE DEV FILE...: "FILE BYTE LENGTH" for each extent of each
# file, BYTE the offset on DEV (filefrag; for btrfs through its DATA|single
# chunks, read from the chunk tree); "FILE ? ?" when it cannot tell
dev_extents() {
    local type=$1 dev=$2 f
    shift 2
    if [ "$type" = btrfs ]; then
        btrfs inspect-internal dump-tree -t chunk "$dev" 2>/dev/null | awk '
            / CHUNK_ITEM / { l = $6 + 0 }
            /^[[:space:]]*length / { len = $2; t = $NF }
            /[[:space:]]stripe 0 devid / && t == "DATA|single" { print l, len, $NF }'
    fi > /tmp/chunks
    for f in "$@"; do
        filefrag -v "$f" |
            sed -n 's/^ *[0-9]*: *[0-9]*\.\. *[0-9]*: *\([0-9]*\)\.\. *[0-9]*: *\([0-9]*\):.*/\1 \2/p' |
            awk -v f="${f##*/}" -v type="$type" '
                FILENAME == "/tmp/chunks" { cl[++n] = $1; clen[n] = $2; cp[n] = $3; next }
                {
                    x = $1 * 4096; len = $2 * 4096
                    if (type != "btrfs") { print f, x, len; next }
                    for (i = 1; i <= n; i++)
                        if (x >= cl[i] && x + len <= cl[i] + clen[i]) { print f, cp[i] + x - cl[i], len; next }
                    print f, "?", "?"
                }' /tmp/chunks -
    done
}
# dev_sums DEV EXTENTS SUMS: compare the data at the extents on DEV with the
# checksums of the files (sha256sum lines); prints the differing files
dev_sums() {
    local dev=$1 ext=$2 sums=$3 f want got
    while read -r want f; do
        got=$(awk -v f="$f" '$1 == f { print $2, $3 }' "$ext" | while read -r off len; do
                  [ "$off" = '?' ] && { echo unmapped; continue; }
                  dd if="$dev" bs=4096 skip=$((off / 4096)) count=$((len / 4096)) iflag=direct status=none
              done | sha256sum | cut -d' ' -f1)
        [ "$got" = "$want" ] || printf '%s ' "$f"
    done < "$sums"
    [ -s "$sums" ] || echo "no checksums"
}
head -c 1M /dev/urandom > /tmp/d1
head -c 64k /dev/urandom > /tmp/d64
dmesg_mark

echo "== raw: $A (disk0): a read-only zone"
z1=$((2 * ZS)) z2=$((3 * ZS)) z3=$((4 * ZS))
# Refused by QEMU (conventional zone); the host records the message.
echo "ZONEFAIL node=disk0 offset=0 cond=read-only"
out=$(wr $A $z1 /tmp/d1) && out=$(wr $A $z2 /tmp/d1)
check raw-write-before "ok 0x000800" "${out:-ok} $(zwp $A $z1)"
s1=$(sha256sum < /tmp/d1 | cut -d' ' -f1)
if setcond disk0 $A $z1 read-only; then pass raw-ro-reported; else
    fail raw-ro-reported "$(zline $A $z1)"
fi
note raw-ro-report "$(zline $A $z1)"
out=$(lim 60 wr $A $((z1 + 2048)) /tmp/d64); eio raw-ro-write-at-wp $? "$out"
out=$(lim 60 wr $A $z1 /tmp/d64); eio raw-ro-write-at-start $? "$out"
check raw-ro-read-back "$s1" "$(sum $A $z1 1)"
check raw-ro-read-above-wp-zeroes 0 \
    "$(dd if=$A bs=64k count=1 skip=$(((z1 + 2048) / 128)) iflag=direct status=none | tr -d '\0' | wc -c)"
for op in open close finish reset; do
    out=$(lim 60 blkzone $op -o $z1 -c 1 $A 2>&1); eio raw-ro-$op $? "$out"
done
check raw-ro-after-zone-ops "ro $s1" "$(zcond $A $z1) $(sum $A $z1 1)"
out=$(lim 60 blkzone reset $A 2>&1)
rc=$?
check raw-reset-all "0" "$rc${out:+ $out}"
check raw-reset-all-keeps-ro "ro $s1" "$(zcond $A $z1) $(sum $A $z1 1)"
check raw-reset-all-resets-others em "$(zcond $A $z2)"
dmesg_delta raw-ro

echo "== raw: $A (disk0): an offline zone"
out=$(wr $A $z3 /tmp/d1)
check raw-write-before-offline "ok" "${out:-ok}"
if setcond disk0 $A $z3 offline; then pass raw-offline-reported; else
    fail raw-offline-reported "$(zline $A $z3)"
fi
note raw-offline-report "$(zline $A $z3)"
out=$(lim 60 dd if=$A of=/dev/null bs=4k count=1 skip=$((z3 / 8)) iflag=direct status=none 2>&1)
eio raw-offline-read $? "$out"
echo 3 > /proc/sys/vm/drop_caches
out=$(lim 60 dd if=$A of=/dev/null bs=4k count=1 skip=$((z3 / 8)) status=none 2>&1)
eio raw-offline-read-buffered $? "$out"
out=$(lim 60 dd if=$A of=/dev/null bs=64k count=2 skip=$((z3 / 128 - 1)) iflag=direct status=none 2>&1)
eio raw-offline-read-crossing $? "$out"
out=$(lim 60 wr $A $z3 /tmp/d64); eio raw-offline-write $? "$out"
out=$(lim 60 blkzone reset -o $z3 -c 1 $A 2>&1); eio raw-offline-reset $? "$out"
check raw-offline-still "of" "$(zcond $A $z3)"
dmesg_delta raw-offline

echo "== raw: $A (disk0): back to normal"
if setcond disk0 $A $z3 normal; then pass raw-offline-to-normal; else
    fail raw-offline-to-normal "$(zline $A $z3)"
fi
check raw-offline-normal-empty "em 0x000000" "$(zcond $A $z3) $(zwp $A $z3)"
check raw-offline-normal-zeroes 0 \
    "$(dd if=$A bs=1M count=1 skip=$((z3 / 2048)) iflag=direct status=none | tr -d '\0' | wc -c)"
if setcond disk0 $A $z1 normal; then pass raw-ro-to-normal; else
    fail raw-ro-to-normal "$(zline $A $z1)"
fi
check raw-ro-normal-closed "cl 0x000800 $s1" "$(zcond $A $z1) $(zwp $A $z1) $(sum $A $z1 1)"
# What Linux makes of it: its zone write plugs may still hold a write
# pointer from before (recorded, not judged): a write at the device's write
# pointer, then again after a zone report, then after a reset of the zone.
for z in $z1 $z3; do
    w=$(( $(zwp $A $z) ))
    out=$(lim 60 wr $A $((z + w)) /tmp/d64); rc=$?
    res="write at wp: exit $rc${out:+ ($(printf '%s' "$out" | one))}"
    if [ $rc != 0 ]; then
        blkzone report -o $z -c 1 $A > /dev/null
        out=$(lim 60 wr $A $((z + w)) /tmp/d64); rc=$?
        res+="; after a report: exit $rc"
    fi
    if [ $rc != 0 ]; then
        blkzone reset -o $z -c 1 $A
        out=$(lim 60 wr $A $z /tmp/d64); rc=$?
        res+="; after a zone reset, at the start: exit $rc"
    fi
    note "raw-normal-write-zone$((z / ZS))" "$res; now $(zline $A $z)"
done
dmesg_delta raw-normal
blkzone reset $A

# fs_fail NAME DEV NODE MNT TYPE SEL MKFS...: make the file system, write
# and sync files, turn the zone that "SEL DEV" names ("SECTOR WP")
# read-only, write on
fs_fail() {
    local name=$1 dev=$2 node=$3 mnt=$4 type=$5 sel=$6 z wp i rc out res m f
    shift 6
    echo "== $name on $dev ($node)"
    mkdir -p "$mnt"
    if ! "$@" > /tmp/mkfs 2>&1 || ! mount -t "$type" "$dev" "$mnt"; then
        fail "$name" "mkfs or mount failed: $(tail -n 3 /tmp/mkfs | one)"
        return
    fi
    for i in 1 2 3; do head -c 4M /dev/urandom > "$mnt/pre$i"; done
    sync
    (cd "$mnt" && sha256sum pre*) > /tmp/$name-sums
    dev_extents "$type" "$dev" "$mnt"/pre* > /tmp/$name-ext
    note "$name-extents" "$(one < /tmp/$name-ext)"
    read -r z wp < <("$sel" "$dev")
    if [ -z "$z" ]; then
        fail "$name-zone" "none in: $(blkzone report "$dev" | grep -v 'zcond: *1(em)' | one)"
        umount "$mnt"
        return
    fi
    note "$name-zones-before" "$(blkzone report "$dev" | grep -v 'zcond: *1(em)\|CONVENTIONAL' |
        sed 's/^ *start: *\(0x[0-9a-f]*\),.* wptr \(0x[0-9a-f]*\) .*zcond: *[0-9]*(\([a-z]*\)).*/\1:\3:\2/' | tr '\n' ' ')"
    note "$name-zone" "zone $((z / ZS)) (sector $z, wp +$wp) goes read-only"
    dmesg_mark
    if setcond "$node" "$dev" "$z" read-only; then pass "$name-ro-reported"; else
        fail "$name-ro-reported" "$(zline "$dev" "$z")"
    fi
    res=
    for i in 1 2 3; do
        head -c 4M /dev/urandom > /tmp/$name-post$i
        out=$(lim 120 dd if=/tmp/$name-post$i of="$mnt/post$i" bs=1M conv=fsync status=none 2>&1)
        rc=$?
        res+="post$i: exit $rc${out:+ ($(printf '%s' "$out" | one))}; "
    done
    note "$name-write-after-ro" "$res"
    out=$(lim 120 sync -f "$mnt" 2>&1); note "$name-syncfs" "exit $?${out:+ ($out)}"
    out=$(lim 120 sync 2>&1); note "$name-sync" "exit $?${out:+ ($out)}"
    m=$(findmnt -no OPTIONS "$mnt")
    note "$name-mount-options" "$m"
    note "$name-zone-after" "$(zline "$dev" "$z")"
    check "$name-synced-data-on-device" "" "$(dev_sums "$dev" /tmp/$name-ext /tmp/$name-sums)"
    echo 3 > /proc/sys/vm/drop_caches
    out=$(cd "$mnt" && lim 120 sha256sum --quiet -c /tmp/$name-sums 2>&1)
    rc=$?
    if [[ ,$m, == *,ro,* ]]; then
        # the file system has shut itself down: what it still reads is its business
        note "$name-synced-files-read" "exit $rc${out:+ ($(printf '%s' "$out" | one))} (mounted ro now)"
    else
        check "$name-synced-files-intact" "0" "$rc${out:+ $(printf '%s' "$out" | one)}"
    fi
    dmesg_delta "$name-ro"
    out=$(lim 120 umount "$mnt" 2>&1); rc=$?
    note "$name-umount" "exit $rc${out:+ ($(printf '%s' "$out" | one))}"
    [ $rc = 255 ] && return
    # mount again with the zone read-only
    out=$(lim 120 mount -t "$type" "$dev" "$mnt" 2>&1); rc=$?
    note "$name-mount-with-ro-zone" "exit $rc${out:+ ($(printf '%s' "$out" | one))}"
    if [ $rc = 0 ]; then
        note "$name-mount-with-ro-zone-options" "$(findmnt -no OPTIONS "$mnt")"
        out=$(cd "$mnt" && lim 120 sha256sum --quiet -c /tmp/$name-sums 2>&1)
        check "$name-files-with-ro-zone" "0" "$?${out:+ $(printf '%s' "$out" | one)}"
        out=$(lim 120 umount "$mnt" 2>&1); rc=$?
        [ $rc = 0 ] || note "$name-umount-2" "exit $rc ($out)"
        [ $rc = 255 ] && return
    fi
    dmesg_delta "$name-mount-with-ro-zone"
    # the zone writable again (CLOSED at its write pointer)
    if setcond "$node" "$dev" "$z" normal; then pass "$name-zone-to-normal"; else
        fail "$name-zone-to-normal" "$(zline "$dev" "$z")"
    fi
    note "$name-zone-normal" "$(zline "$dev" "$z")"
    out=$(lim 120 mount -t "$type" "$dev" "$mnt" 2>&1); rc=$?
    note "$name-mount-after-normal" "exit $rc${out:+ ($(printf '%s' "$out" | one))}"
    if [ $rc = 0 ]; then
        out=$(cd "$mnt" && lim 120 sha256sum --quiet -c /tmp/$name-sums 2>&1)
        check "$name-files-after-normal" "0" "$?${out:+ $(printf '%s' "$out" | one)}"
        # the files whose fsync failed: size and what reads back
        m=
        for i in 1 2 3; do
            f=$mnt/post$i
            if [ ! -e "$f" ]; then m+="post$i: missing; "; continue; fi
            m+="post$i: $(stat -c %s "$f") bytes, "
            if ! out=$(lim 60 dd if="$f" of=/dev/null status=none); then m+="read error ($(printf '%s' "$out" | one)); "
            elif cmp -s "$f" /tmp/$name-post$i; then m+="the data written; "
            elif [ "$(tr -d '\0' < "$f" | wc -c)" = 0 ]; then m+="zeroes; "
            else m+="other data; "
            fi
        done
        note "$name-files-written-after-ro" "$m"
        out=$(lim 120 dd if=/dev/urandom of="$mnt/new" bs=1M count=4 conv=fsync status=none 2>&1)
        note "$name-write-after-normal" "exit $?${out:+ ($(printf '%s' "$out" | one))}"
        out=$(lim 120 umount "$mnt" 2>&1); rc=$?
        [ $rc = 0 ] || note "$name-umount-3" "exit $rc ($out)"
    fi
    check "$name-synced-data-on-device-at-end" "" "$(dev_sums "$dev" /tmp/$name-ext /tmp/$name-sums)"
    dmesg_delta "$name-normal"
}

fs_fail btrfs $B disk1 /mnt/b btrfs open_zone mkfs.btrfs -q -f -O zoned $B
blkzone reset $B
fs_fail btrfs-meta $B disk1 /mnt/b btrfs btrfs_meta_zone mkfs.btrfs -q -f -O zoned $B
fs_fail f2fs $C disk2 /mnt/c f2fs open_zone mkfs.f2fs -q -f -m $C

N=${ZONED_VM_NVME%% *}
if [ -n "$N" ]; then
    echo "== NVMe: $N (nvmedisk0)"
    # st CMD...: "ok", or the status nvme-cli printed (0x41ba: DNR + Zone Is
    # Read Only), or the start of its message when it printed none
    st() {
        local out s
        if out=$("$@" 2>&1); then echo ok; return; fi
        s=$(printf '%s\n' "$out" | sed -n 's/^NVMe status: .*(\(0x[0-9a-f]*\))$/\1/p')
        echo "${s:-$(printf '%s' "$out" | one | cut -c1-160)}"
    }
    nst() { # SECTOR: zone state as the device reports it
        nvme zns report-zones "$N" -s "$1" -d 1 | sed -n 's/^SLBA:.* State: *\(0x[0-9a-f]*\).*/\1/p'
    }
    n1=$ZS n2=$((2 * ZS))       # zones 1 and 2 (512-byte LBAs)
    check nvme-write-before ok "$(st nvme write "$N" -s $n1 -c 7 -z 4096 -d /tmp/d64)"
    if setcond nvmedisk0 "$N" $n1 read-only; then pass nvme-ro-reported; else
        fail nvme-ro-reported "$(zline "$N" $n1)"
    fi
    check nvme-ro-state 0xd0 "$(nst $n1)"
    check nvme-ro-write 0x41ba "$(st nvme write "$N" -s $((n1 + 8)) -c 7 -z 4096 -d /tmp/d64)"
    check nvme-ro-append 0x41ba "$(st nvme zns zone-append "$N" -s $n1 -z 4096 -d /tmp/d64)"
    check nvme-ro-read ok "$(st nvme read "$N" -s $n1 -c 7 -z 4096 -d /tmp/nvme-read)"
    check nvme-ro-read-data "$(head -c 4096 /tmp/d64 | sha256sum)" "$(sha256sum < /tmp/nvme-read)"
    out=$(lim 60 wr "$N" $((n1 + 8)) /tmp/d64); eio nvme-ro-write-blockdev $? "$out"
    out=$(lim 60 blkzone finish -o $n1 -c 1 "$N" 2>&1); eio nvme-ro-finish-blockdev $? "$out"
    if setcond nvmedisk0 "$N" $n2 offline; then pass nvme-offline-reported; else
        fail nvme-offline-reported "$(zline "$N" $n2)"
    fi
    check nvme-offline-state 0xf0 "$(nst $n2)"
    check nvme-offline-read 0x41bb "$(st nvme read "$N" -s $n2 -c 7 -z 4096 -d /tmp/nvme-read)"
    check nvme-offline-write 0x41bb "$(st nvme write "$N" -s $n2 -c 7 -z 4096 -d /tmp/d64)"
    out=$(lim 60 dd if="$N" of=/dev/null bs=4k count=1 skip=$((n2 / 8)) iflag=direct status=none 2>&1)
    eio nvme-offline-read-blockdev $? "$out"
    setcond nvmedisk0 "$N" $n1 normal && setcond nvmedisk0 "$N" $n2 normal
    check nvme-normal-states "0x40 0x10" "$(nst $n1) $(nst $n2)"
    dmesg_delta nvme
fi

echo "== conditions left for the host: $A zone 6 read-only (1 MiB of 0xab), zone 7 offline"
z6=$((6 * ZS)) z7=$((7 * ZS))
head -c 1M /dev/zero | tr '\0' '\253' > /tmp/ab
out=$(wr $A $z6 /tmp/ab) && out=$(wr $A $z7 /tmp/d1)
check raw-write-for-host "ok" "${out:-ok}"
setcond disk0 $A $z6 read-only && setcond disk0 $A $z7 offline
check raw-left-for-host "ro of" "$(zcond $A $z6) $(zcond $A $z7)"
dmesg_delta end
