#!/bin/bash
# First NVMe boot of the guest test (tests/guest.sh boot 4), run by
# scripts/zoned-vm in the guest: a zoned qcow2 image as an NVMe zoned
# namespace (zoned-vm --nvme: -device nvme-ns,drive=...,zoned=true).
# Disks, in the order of $ZONED_VM_NVME (the kernel may number them
# nvme0n1 and nvme1n1 either way): N: 2 GiB, 64 MiB zones of 48 MiB
# capacity, max 8 open / 12 active; S: 32 MiB, 2 MiB zones, max 3 open /
# 5 active (the null_blk comparison of boot 5); /dev/vda: a plain (not
# zoned) qcow2 image for f2fs's metadata.  nvme.conf (optional, from the
# host): LBS, N's logical block size (default 512).
# Checks: sysfs, Identify (nvme zns id-ns/id-ctrl), Zone Management Receive
# (nvme zns report-zones: -d, -s, --state; partial reports through
# io-passthru: nvme-cli 2.3's zone-mgmt-recv prints no data), Zone Append,
# Write Zeroes, Read, Copy, open/close/finish/reset with and without select
# all, the open and active limits, the NVMe status of each refused command
# (nvme-cli prints "NVMe status: NAME: ...(0x41bc)": DNR 0x4000 | SCT 1 << 8
# | SC), the kernel's view (blkzone, errno of writes at the limits), fio
# --zonemode=zbd, f2fs (metadata on /dev/vda) and btrfs.  At the end it
# leaves zones in known states for boot 5 (nvme2.sh) and prints "REPORT-N"
# (blkzone report) and "SUMS-N" (sha256 of the data of those zones) lines.
# nvme-cli's own writes and zone commands are passthrough: the kernel's zone
# write plugs (6.12) do not see them, so the zones they touch are never
# written through the block device before a reset through the block device
# (blkzone reset), which brings the kernel's write pointers back in line.
# Prints "RESULT PASS|FAIL|SKIP name [detail]" lines for the host.
LBS=512
[ -r nvme.conf ] && . ./nvme.conf
# shellcheck disable=SC2086
set -- $ZONED_VM_NVME
N=${1:-/dev/nvme0n1} S=${2:-/dev/nvme1n1}
V=${ZONED_VM_DISKS%% *}
n=${N#/dev/} s=${S#/dev/}
ctrl=/dev/$(basename "$(readlink -f "/sys/block/$n/device")")
nsid=$(cat "/sys/block/$n/nsid")
ZSB=$((64 << 20)) CAPB=$((48 << 20)) NZ=32       # zone size, capacity (bytes)
ZS=$((ZSB / LBS)) CAP=$((CAPB / LBS))            # ... in LBAs
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
hex() { printf '0x%x' "$1"; }
head -c 1M /dev/urandom > /tmp/rnd

# st CMD...: "ok", or the status nvme-cli printed (0x41bc: DNR + Zone Invalid
# Write), or the start of its message when it printed none
st() {
    local out s
    if out=$("$@" 2>&1); then echo ok; return; fi
    s=$(printf '%s\n' "$out" | sed -n 's/^NVMe status: .*(\(0x[0-9a-f]*\))$/\1/p')
    echo "${s:-$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)}"
}
expect() { # name status CMD...
    local name=$1 want=$2
    shift 2
    check "$name" "$want" "$(st "$@")"
}
# w ZONE OFF NLB: nvme write (passthrough) of NLB LBAs at LBA OFF of ZONE
# (nvme-cli says "write: Success" on stderr)
w() { nvme write "$N" -s $(($1 * ZS + $2)) -c $(($3 - 1)) -z $(($3 * LBS)) -d /tmp/rnd; }
wq() { w "$@" > /dev/null 2>&1; }
# zst ZONE: "STATE WP" from the device, WP relative to the zone start in LBAs
zst() {
    local slba wp _cap state name
    read -r slba wp _cap state < <(nvme zns report-zones "$N" -s $(($1 * ZS)) -d 1 |
        sed -n 's/^SLBA: *\([0-9a-fx]*\) *WP: *\([0-9a-fx]*\) *Cap: *\([0-9a-fx]*\) *State: *\(0x[0-9a-f]*\).*/\1 \2 \3 \4/p')
    case $state in
        0x10) name=EMPTY ;; 0x20) name=IOPEN ;; 0x30) name=EOPEN ;; 0x40) name=CLOSED ;;
        0xd0) name=RO ;; 0xe0) name=FULL ;; 0xf0) name=OFFLINE ;; *) name="?$state" ;;
    esac
    if [ "$name" = FULL ]; then echo FULL; else echo "$name $((wp - slba))"; fi
}
# cnt ZRASF: how many zones the device reports in that state (1 EMPTY,
# 2 IOPEN, 3 EOPEN, 4 CLOSED, 5 FULL)
cnt() { nvme zns report-zones "$N" -S "$1" -d 1 | sed -n 's/^nr_zones: *//p'; }
# counts: "empty iopen eopen closed full"
counts() { echo "$(cnt 1) $(cnt 2) $(cnt 3) $(cnt 4) $(cnt 5)"; }
reset_all() { nvme zns reset-zone "$N" -a > /dev/null; }

echo "== sysfs"
q=/sys/block/$n/queue
check sysfs-zoned host-managed "$(cat $q/zoned)"
check sysfs-logical-block-size "$LBS" "$(cat $q/logical_block_size)"
check sysfs-chunk-sectors $((ZSB / 512)) "$(cat $q/chunk_sectors)"
check sysfs-nr-zones $NZ "$(cat $q/nr_zones)"
check sysfs-max-open 8 "$(cat $q/max_open_zones)"
check sysfs-max-active 12 "$(cat $q/max_active_zones)"
# Linux: 4096 << ZASL (MPSMIN 4 KiB), ZASL 0: the MDTS limit; then at most
# max_hw_sectors and a zone
mdts=$(nvme id-ctrl "$ctrl" | sed -n 's/^mdts *: *//p')
zasl=$(nvme zns id-ctrl "$ctrl" | sed -n 's/^zasl *: *//p')
lim=$((4096 << (zasl ? zasl : mdts)))
hw=$(($(cat $q/max_hw_sectors_kb) * 1024))
[ "$hw" -lt "$lim" ] && lim=$hw
[ "$ZSB" -lt "$lim" ] && lim=$ZSB
append_max=$(cat $q/zone_append_max_bytes)
if [ "$append_max" = "$lim" ]; then pass sysfs-zone-append-max-bytes; else
    fail sysfs-zone-append-max-bytes "expected $lim, got $append_max (zasl $zasl, mdts $mdts)"
fi
check sysfs-second-ns "host-managed 4096 16 3 5" \
    "$(cat /sys/block/$s/queue/{zoned,chunk_sectors,nr_zones,max_open_zones,max_active_zones} | tr '\n' ' ' | sed 's/ $//')"

echo "== Identify"
nvme zns id-ns "$N" | tee /tmp/idns | grep -v '^lbafe  *[1-9]'
check id-ns-mor 0x7 "$(sed -n 's/^mor *: *//p' /tmp/idns)"
check id-ns-mar 0xb "$(sed -n 's/^mar *: *//p' /tmp/idns)"
check id-ns-zoc-ozcs "0 0" "$(sed -n 's/^zoc *: *//p' /tmp/idns) $(sed -n 's/^ozcs *: *//p' /tmp/idns)"
check id-ns-zsze "zsze:$(hex $ZS) zdes:0" \
    "$(sed -n 's/^lbafe *[0-9]*: *\(zsze:[0-9a-fx]* zdes:[0-9]*\) (in use)/\1/p' /tmp/idns)"
check id-ns-nsze "$(hex $((NZ * ZS)))" "$(nvme id-ns "$N" | sed -n 's/^nsze *: *//p')"
check id-ns-second-mor-mar "0x2 0x4" \
    "$(nvme zns id-ns "$S" | sed -n 's/^mor *: *//p; s/^mar *: *//p' | tac | tr '\n' ' ' | sed 's/ $//')"

echo "== Zone Management Receive (nvme zns report-zones)"
nvme zns report-zones "$N" > /tmp/rep
head -n 4 /tmp/rep
check report-nr-zones $NZ "$(sed -n 's/^nr_zones: *//p' /tmp/rep)"
want=$(for i in $(seq 0 $((NZ - 1))); do
    printf 'SLBA %x WP %x Cap %x State 0x10 Type 0x2\n' $((i * ZS)) $((i * ZS)) $CAP; done)
got=$(sed -n 's/^SLBA: *\(0x\)\{0,1\}\([0-9a-f]*\) *WP: *\(0x\)\{0,1\}\([0-9a-f]*\) *Cap: *0x\([0-9a-f]*\) *State: *\(0x[0-9a-f]*\) *Type: *\(0x[0-9a-f]*\).*/SLBA \2 WP \4 Cap \5 State \6 Type \7/p' /tmp/rep)
if [ "$want" = "$got" ]; then pass report-all-empty-zcap; else
    fail report-all-empty-zcap "$(diff <(echo "$want") <(echo "$got") | head -n 4 | tr '\n' '|')"
fi
check report-descs-3 3 "$(nvme zns report-zones "$N" -d 3 | grep -c '^SLBA')"
check report-start-lba "$(hex $((4 * ZS)))" \
    "$(nvme zns report-zones "$N" -s $((4 * ZS)) -d 2 | sed -n '2s/^SLBA: *\([0-9a-fx]*\) .*/\1/p')"
# zone 1 explicitly open, zone 2 implicitly open
nvme zns open-zone "$N" -s $ZS > /dev/null
wq 2 0 1
check report-state-eopen "1 $(hex $ZS)" \
    "$(nvme zns report-zones "$N" -S 3 | sed -n 's/^nr_zones: *//p; s/^SLBA: *\([0-9a-fx]*\) .*/\1/p' | tr '\n' ' ' | sed 's/ $//')"
check report-state-iopen "1 $(hex $((2 * ZS)))" \
    "$(nvme zns report-zones "$N" -S 2 | sed -n 's/^nr_zones: *//p; s/^SLBA: *\([0-9a-fx]*\) .*/\1/p' | tr '\n' ' ' | sed 's/ $//')"
check report-state-empty $((NZ - 2)) "$(cnt 1)"
check report-partial-option $((NZ - 2)) \
    "$(nvme zns report-zones "$N" -S 1 -p | grep -c '^SLBA')"
# Partial Report on a buffer with room for one descriptor (64-byte header
# + 64): without it the number of matching zones, with it the number
# returned.  ZRA 0, ZRASF 1 (empty zones); prints "nr_zones zs|zt zcap zslba wp"
zmr() { # START PARTIAL
    local q
    # shellcheck disable=SC2207
    q=($(nvme io-passthru "$N" --opcode=0x7a --namespace-id="$nsid" --data-len=128 --read \
        --cdw10=$(($1 & 0xffffffff)) --cdw11=$(($1 >> 32)) --cdw12=31 \
        --cdw13=$((1 << 8 | $2 << 16)) --raw-binary 2>/dev/null | od -An -tx8 -v))
    [ ${#q[@]} = 16 ] || { echo "no report (${#q[@]} words)"; return; }
    echo "$(hex $((16#${q[0]}))) $(hex $((16#${q[8]}))) $(hex $((16#${q[9]}))) $(hex $((16#${q[10]}))) $(hex $((16#${q[11]})))"
}
check report-partial-0 "$(hex $((NZ - 2))) 0x1002 $(hex $CAP) 0x0 0x0" "$(zmr 0 0)"
check report-partial-1 "0x1 0x1002 $(hex $CAP) 0x0 0x0" "$(zmr 0 1)"
check report-partial-from-zone-3 "0x1 0x1002 $(hex $CAP) $(hex $((3 * ZS))) $(hex $((3 * ZS)))" \
    "$(zmr $((3 * ZS)) 1)"
check report-partial-0-from-zone-3 "$(hex $((NZ - 3)))" "$(zmr $((3 * ZS)) 0 | cut -d' ' -f1)"
reset_all

echo "== Zone Append"
z=3
head -c $((16 * LBS)) /tmp/rnd > /tmp/a1
head -c $((48 * LBS)) /tmp/rnd | tail -c $((16 * LBS)) > /tmp/a2
out=$(nvme zns zone-append "$N" -s $((z * ZS)) -z $((16 * LBS)) -d /tmp/a1 2>&1)
check append-returns-zslba "Success appended data to LBA $(printf %x $((z * ZS)))" "$out"
out=$(nvme zns zone-append "$N" -s $((z * ZS)) -z $((16 * LBS)) -d /tmp/a2 2>&1)
check append-returns-wp "Success appended data to LBA $(printf %x $((z * ZS + 16)))" "$out"
check append-wp "IOPEN 32" "$(zst $z)"
check append-data "$(cat /tmp/a1 /tmp/a2 | sha256sum)" \
    "$(dd if="$N" bs=$((32 * LBS)) count=1 skip=$((z * ZSB / (32 * LBS))) iflag=direct status=none | sha256sum)"
expect append-not-zslba 0x4002 \
    nvme zns zone-append "$N" -s $((z * ZS + 8)) -z $((16 * LBS)) -d /tmp/a1
head -c "$append_max" /dev/urandom > /tmp/amax
out=$(nvme zns zone-append "$N" -s $((z * ZS)) -z "$append_max" -d /tmp/amax 2>&1)
check append-max-bytes "Success appended data to LBA $(printf %x $((z * ZS + 32)))" "$out"

echo "== zone transitions (zone 1)"
z=1
expect open ok nvme zns open-zone "$N" -s $((z * ZS))
check open-state "EOPEN 0" "$(zst $z)"
# the zoned backend: an explicitly opened zone closed before any write is EMPTY
expect close-eopen-unwritten ok nvme zns close-zone "$N" -s $((z * ZS))
check close-eopen-unwritten-state "EMPTY 0" "$(zst $z)"
expect close-empty-refused 0x41bf nvme zns close-zone "$N" -s $((z * ZS))
expect reset-empty ok nvme zns reset-zone "$N" -s $((z * ZS))
wq $z 0 1
check write-implicit-open "IOPEN 1" "$(zst $z)"
expect close ok nvme zns close-zone "$N" -s $((z * ZS))
check close-state "CLOSED 1" "$(zst $z)"
expect open-closed ok nvme zns open-zone "$N" -s $((z * ZS))
check open-closed-state "EOPEN 1" "$(zst $z)"
wq $z 1 2
check write-eopen-stays-eopen "EOPEN 3" "$(zst $z)"
expect finish ok nvme zns finish-zone "$N" -s $((z * ZS))
check finish-state FULL "$(zst $z)"
check full-wp-invalid 0xffffffffffffffff \
    "$(nvme zns report-zones "$N" -s $((z * ZS)) -d 1 | sed -n 's/^SLBA: *[0-9a-fx]* *WP: *\([0-9a-fx]*\) .*/\1/p')"
expect finish-full ok nvme zns finish-zone "$N" -s $((z * ZS))
expect close-full-refused 0x41bf nvme zns close-zone "$N" -s $((z * ZS))
expect open-full-refused 0x41bf nvme zns open-zone "$N" -s $((z * ZS))
expect write-full-refused 0x41b9 w $z 0 1
expect reset ok nvme zns reset-zone "$N" -s $((z * ZS))
check reset-state "EMPTY 0" "$(zst $z)"
expect finish-empty ok nvme zns finish-zone "$N" -s $((z * ZS))
check finish-empty-state FULL "$(zst $z)"
expect zone-op-not-zslba 0x4002 nvme zns reset-zone "$N" -s $((z * ZS + 8))
nvme zns reset-zone "$N" -s $((z * ZS)) > /dev/null

echo "== refused writes"
expect write-empty-not-at-wp 0x41bc w 4 8 1
check write-empty-not-at-wp-state "EMPTY 0" "$(zst 4)"
wq 4 0 16
expect write-below-wp 0x41bc w 4 8 8
expect write-above-wp 0x41bc w 4 32 8
check write-not-at-wp-state "IOPEN 16" "$(zst 4)"
# zone 5 to 16 LBAs short of its capacity: 47 MiB, then the rest through the
# block device (the kernel's write plug of zone 5 is reset through it below)
z=5
dd if=/dev/zero of="$N" bs=1M count=47 seek=$((z * 64)) oflag=direct status=none &&
    dd if=/dev/zero of="$N" bs=$((16 * LBS)) count=$(((1048576 - 16 * LBS) / (16 * LBS))) \
        seek=$(((z * ZSB + (47 << 20)) / (16 * LBS))) oflag=direct status=none
check fill-to-capacity-16 "IOPEN $((CAP - 16))" "$(zst $z)"
expect write-across-capacity 0x41b8 w $z $((CAP - 16)) 32
expect append-across-capacity 0x41b8 \
    nvme zns zone-append "$N" -s $((z * ZS)) -z $((32 * LBS)) -d /tmp/rnd
expect copy-across-capacity 0x41b8 \
    nvme copy "$N" --sdlba=$((z * ZS + CAP - 16)) --slbs=$((4 * ZS)) --blocks=31
check across-capacity-state "IOPEN $((CAP - 16))" "$(zst $z)"
expect write-to-capacity ok w $z $((CAP - 16)) 16
check write-to-capacity-full FULL "$(zst $z)"
expect write-full-zone 0x41b9 w $z 0 1
expect append-full-zone 0x41b9 nvme zns zone-append "$N" -s $((z * ZS)) -z "$LBS" -d /tmp/rnd

echo "== Write Zeroes, Read, Copy"
# zone 4: 16 LBAs written, zone 5 FULL, zone 6 EMPTY
expect write-zeroes-at-wp ok nvme write-zeroes "$N" -s $((4 * ZS + 16)) -c 7
check write-zeroes-wp "IOPEN 24" "$(zst 4)"
expect write-zeroes-not-at-wp 0x41bc nvme write-zeroes "$N" -s $((4 * ZS + 40)) -c 7
expect write-zeroes-full-zone 0x41b9 nvme write-zeroes "$N" -s $((5 * ZS)) -c 7
rm -f /tmp/rd
expect read-above-wp ok nvme read "$N" -s $((4 * ZS + 100)) -c 7 -z $((8 * LBS)) -d /tmp/rd
check read-above-wp-zeroes "$(head -c $((8 * LBS)) /dev/zero | sha256sum)" "$(sha256sum < /tmp/rd)"
expect read-across-zone-boundary 0x41b8 \
    nvme read "$N" -s $((5 * ZS - 4)) -c 7 -z $((8 * LBS)) -d /tmp/rd
expect copy-to-wp ok nvme copy "$N" --sdlba=$((6 * ZS)) --slbs=$((4 * ZS)) --blocks=15
check copy-wp "IOPEN 16" "$(zst 6)"
check copy-data "$(dd if="$N" bs=$((16 * LBS)) count=1 skip=$((4 * ZSB / (16 * LBS))) iflag=direct status=none | sha256sum)" \
    "$(dd if="$N" bs=$((16 * LBS)) count=1 skip=$((6 * ZSB / (16 * LBS))) iflag=direct status=none | sha256sum)"
expect copy-not-at-wp 0x41bc nvme copy "$N" --sdlba=$((6 * ZS + 100)) --slbs=$((4 * ZS)) --blocks=7
expect copy-full-zone 0x41b9 nvme copy "$N" --sdlba=$((5 * ZS)) --slbs=$((4 * ZS)) --blocks=7
blkzone reset -o $((z * ZSB / 512)) -c 1 "$N"
reset_all

echo "== select all"
for z in 6 7 8; do wq $z 0 1; done
nvme zns open-zone "$N" -s $((9 * ZS)) > /dev/null
check all-before "$((NZ - 4)) 3 1 0 0" "$(counts)"
expect close-all ok nvme zns close-zone "$N" -a
# the zoned backend closes the unwritten explicitly open zone 9 to EMPTY
check close-all-counts "$((NZ - 3)) 0 0 3 0" "$(counts)"
check close-all-states "CLOSED 1|CLOSED 1|CLOSED 1|EMPTY 0" "$(zst 6)|$(zst 7)|$(zst 8)|$(zst 9)"
expect open-all ok nvme zns open-zone "$N" -a
check open-all-counts "$((NZ - 3)) 0 3 0 0" "$(counts)"
expect finish-all ok nvme zns finish-zone "$N" -a
check finish-all-counts "$((NZ - 3)) 0 0 0 3" "$(counts)"
expect reset-all ok nvme zns reset-zone "$N" -a
check reset-all-counts "$NZ 0 0 0 0" "$(counts)"

echo "== open and active limits (8 / 12)"
r=ok
for z in $(seq 10 17); do r=$(st nvme zns open-zone "$N" -s $((z * ZS))); [ "$r" = ok ] || break; done
check open-8-explicit ok "$r"
expect open-9th-too-many-open 0x41be nvme zns open-zone "$N" -s $((18 * ZS))
expect write-9th-too-many-open 0x41be w 18 0 1
check open-limit-counts "$((NZ - 8)) 0 8 0 0" "$(counts)"
reset_all
r=ok
for z in $(seq 10 21); do r=$(st w $z 0 1); [ "$r" = ok ] || { r="zone $z: $r"; break; }; done
check write-12-zones-implicit-close ok "$r"
check implicit-close-counts "$((NZ - 12)) 8 0 4 0" "$(counts)"
# the least recently written implicitly open zones were closed
check implicit-close-lru "CLOSED 1|CLOSED 1|CLOSED 1|CLOSED 1|IOPEN 1" \
    "$(zst 10)|$(zst 11)|$(zst 12)|$(zst 13)|$(zst 14)"
expect write-13th-too-many-active 0x41bd w 22 0 1
expect open-13th-too-many-active 0x41bd nvme zns open-zone "$N" -s $((22 * ZS))
check active-limit-zone-22 "EMPTY 0" "$(zst 22)"
# at both limits a CLOSED zone opens by closing an implicitly open one
expect open-closed-at-limits ok nvme zns open-zone "$N" -s $((10 * ZS))
check open-closed-at-limits-counts "$((NZ - 12)) 7 1 4 0" "$(counts)"
expect write-closed-at-limits ok w 11 1 1
check write-closed-at-limits-counts "$((NZ - 12)) 7 1 4 0" "$(counts)"
reset_all
# the kernel's write pointers (zone 5 above) back in line with the device
blkzone reset "$N"
check nvme-cli-end-all-empty "$NZ 0 0 0 0" "$(counts)"

echo "== the kernel's view: blkzone, errno"
zcond() { # sector: the condition of the zone, as blkzone abbreviates it
    blkzone report -o "$1" -c 1 "$N" | sed -n 's/.*zcond:[ 0-9]*(\([a-z]*\)).*/\1/p'
}
zwp() { # sector: write pointer as blkzone shows it (from the zone start)
    blkzone report -o "$1" -c 1 "$N" | sed -n 's/.* wptr \(0x[0-9a-f]*\) .*/\1/p'
}
ZSEC=$((ZSB / 512))
check blkzone-zones $NZ "$(blkzone report "$N" | grep -c SEQ_WRITE_REQUIRED)"
check blkzone-capacity "$(printf 0x%06x $((CAPB / 512)))" \
    "$(blkzone report -o $ZSEC -c 1 "$N" | sed -n 's/.*cap \(0x[0-9a-f]*\),.*/\1/p')"
z=$ZSEC
blkzone open -o $z -c 1 "$N" && check blkzone-open oe "$(zcond $z)"
blkzone close -o $z -c 1 "$N" && check blkzone-close-unwritten em "$(zcond $z)"
dd if=/dev/zero of="$N" bs=64k count=1 seek=$((z * 512 / 65536)) oflag=direct status=none &&
    check blkzone-write-implicit-open oi "$(zcond $z)"
check blkzone-wp "$(printf 0x%06x 128)" "$(zwp $z)"
blkzone close -o $z -c 1 "$N" && check blkzone-close cl "$(zcond $z)"
blkzone finish -o $z -c 1 "$N" && check blkzone-finish fu "$(zcond $z)"
blkzone reset -o $z -c 1 "$N" && check blkzone-reset em "$(zcond $z)"
dd if=/dev/urandom of="$N" bs=64k count=4 seek=$((z * 512 / 65536)) oflag=direct status=none
if dd if=/dev/zero of="$N" bs=64k count=1 seek=$((z * 512 / 65536 + 8)) oflag=direct \
        status=none 2>/dev/null; then
    fail blkzone-write-not-at-wp "succeeded"
else
    pass blkzone-write-not-at-wp
fi
blkzone reset "$N"
for i in $(seq 1 8); do blkzone open -o $((i * ZSEC)) -c 1 "$N"; done
err=$(blkzone open -o $((9 * ZSEC)) -c 1 "$N" 2>&1)
case "$err" in
*"Too many references"*) pass blkzone-open-resource-errno ;;
*) fail blkzone-open-resource-errno "$err" ;;
esac
err=$(dd if=/dev/zero of="$N" bs=4k count=1 seek=$((10 * ZSB / 4096)) oflag=direct status=none 2>&1)
case "$err" in
*"Too many references"*) pass blkzone-write-open-resource-errno ;;
*) fail blkzone-write-open-resource-errno "$err" ;;
esac
blkzone reset "$N"
for i in $(seq 1 12); do
    dd if=/dev/zero of="$N" bs=4k count=1 seek=$((i * ZSB / 4096)) oflag=direct status=none
done
err=$(dd if=/dev/zero of="$N" bs=4k count=1 seek=$((13 * ZSB / 4096)) oflag=direct status=none 2>&1)
case "$err" in
*"Value too large"*) pass blkzone-write-active-resource-errno ;;
*) fail blkzone-write-active-resource-errno "$err" ;;
esac
blkzone reset "$N"

echo "== fio --zonemode=zbd"
engine=io_uring
fio --enghelp 2>/dev/null | grep -qw io_uring || engine=libaio
fio_run() { # name fio-args...
    local name=$1
    shift
    if fio --name="$name" --filename="$N" --zonemode=zbd --direct=1 --ioengine=$engine \
            --iodepth=8 --bs=64k --max_open_zones=8 --verify=crc32c --do_verify=1 \
            --output-format=terse "$@" > "/tmp/$name" 2>&1; then
        pass "$name"
    else
        fail "$name" "$(tail -n 3 "/tmp/$name" | tr '\n' '|')"
    fi
}
fio_run fio-write-verify --rw=write --offset=128M --size=128M
fio_run fio-randwrite-verify --rw=randwrite --offset=512M --size=1G --io_size=64M
blkzone reset "$N"

. ./fs-test.sh
echo "== f2fs: metadata on $V, data on $N"
vlbs=$(cat "/sys/block/${V#/dev/}/queue/logical_block_size" 2>/dev/null)
if [ "$vlbs" = "$LBS" ]; then
    fs_test f2fs "$V" /mnt/f f2fs 2 4 mkfs.f2fs -f -q -m -c "$N" "$V"
else
    echo "RESULT SKIP f2fs mkfs.f2fs wants one sector size: $V has ${vlbs:-none}, $N $LBS"
fi

echo "== btrfs (zoned) on $N, checked again by boot 5"
fs_test btrfs "$N" /mnt/n btrfs 3 3 mkfs.btrfs -q -f -O zoned "$N"

echo "== zone states for boot 5 (zones 25-31, which btrfs leaves alone)"
ZB=$((ZSB / 65536))   # 64 KiB blocks per zone
# btrfs leaves zones implicitly open: closed, the zones below have the open
# resources to themselves (no zone of theirs is closed to make room)
nvme zns close-zone "$N" -a > /dev/null
check state-zones-empty "7 EMPTY" "$(for z in $(seq 25 31); do zst $z; done | sort | uniq -c | awk '{ print $1, $2 }' | tr '\n' ' ' | sed 's/ $//')"
# 25: two zone appends of 64 KiB (implicitly open); 26: opened, then 1 MiB;
# 27: 2 MiB (implicitly open); 28: 3 MiB, closed; 29: 1 MiB, finished;
# 30: empty; 31: opened, never written
head -c 65536 /dev/urandom > /tmp/r64
nvme zns zone-append "$N" -s $((25 * ZS)) -z 65536 -d /tmp/rnd > /dev/null
nvme zns zone-append "$N" -s $((25 * ZS)) -z 65536 -d /tmp/r64 > /dev/null
blkzone open -o $((26 * ZSEC)) -c 1 "$N"
dd if=/dev/urandom of="$N" bs=64k count=16 seek=$((26 * ZB)) oflag=direct status=none
dd if=/dev/urandom of="$N" bs=64k count=32 seek=$((27 * ZB)) oflag=direct status=none
dd if=/dev/urandom of="$N" bs=64k count=48 seek=$((28 * ZB)) oflag=direct status=none
blkzone close -o $((28 * ZSEC)) -c 1 "$N"
dd if=/dev/urandom of="$N" bs=64k count=16 seek=$((29 * ZB)) oflag=direct status=none
blkzone finish -o $((29 * ZSEC)) -c 1 "$N"
nvme zns open-zone "$N" -s $((31 * ZS)) > /dev/null
check state-zones "IOPEN $((131072 / LBS))|EOPEN $((1048576 / LBS))|IOPEN $((2097152 / LBS))|CLOSED $((3145728 / LBS))|FULL|EMPTY 0|EOPEN 0" \
    "$(for z in $(seq 25 31); do zst $z; done | tr '\n' '|' | sed 's/|$//')"
# durable: a flush through the block device and one through nvme-cli
sync "$N"
nvme flush "$N" > /dev/null
for z in 25:2 26:16 27:32 28:48 29:16; do
    echo "SUMS-N zone${z%:*} $(dd if="$N" bs=64k count=${z#*:} skip=$((${z%:*} * ZB)) iflag=direct status=none | sha256sum | cut -d' ' -f1)"
done
blkzone report "$N" | sed 's/^/REPORT-N /'
sync
