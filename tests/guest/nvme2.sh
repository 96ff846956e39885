#!/bin/bash
# Second NVMe boot of the guest test (tests/guest.sh boot 5), on the images
# of boot 4 (nvme1.sh): the zone report of the first boot (report-N) with
# open zones now CLOSED (EMPTY if never written), the data of the zones it
# wrote (sums-N), the btrfs files; then writes that continue where the
# first boot stopped; then the null_blk comparison of the small namespace
# /dev/nvme1n1 (oracle.sh with ORACLE_DEVS, zoracle; oracle.conf as for
# boot 3).  nvme.conf as for nvme1.sh.
# Prints "RESULT PASS|FAIL name [detail]" lines.
LBS=512
[ -r nvme.conf ] && . ./nvme.conf
# shellcheck disable=SC2086
set -- $ZONED_VM_NVME
N=${1:-/dev/nvme0n1} S=${2:-/dev/nvme1n1}
ZSB=$((64 << 20)) ZS=$(((64 << 20) / LBS))
ZB=$((ZSB / 65536))   # 64 KiB blocks per zone
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }
check() { # name expected actual
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
st() { # as in nvme1.sh
    local out s
    if out=$("$@" 2>&1); then echo ok; return; fi
    s=$(printf '%s\n' "$out" | sed -n 's/^NVMe status: .*(\(0x[0-9a-f]*\))$/\1/p')
    echo "${s:-$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)}"
}

echo "== zones after the restart"
# Open zones come back closed (or empty if nothing was written)
sed -e 's/^REPORT-N //' \
    -e '/wptr 0x0* /s/zcond: *[23]([a-z]*)/zcond: 1(em)/' \
    -e 's/zcond: *2(oi)/zcond: 4(cl)/' -e 's/zcond: *3(oe)/zcond: 4(cl)/' \
    report-N > expected
blkzone report "$N" > actual
if [ -s report-N ] && diff -u expected actual > diff.out; then
    pass zones-survived-reboot
else
    fail zones-survived-reboot "$(head -n 20 diff.out | tr '\n' '|')"
fi
check device-no-open-zones "0 0" "$(for f in 2 3; do
    nvme zns report-zones "$N" -S $f -d 1 | sed -n 's/^nr_zones: *//p'; done | tr '\n' ' ' | sed 's/ $//')"
bad=
while read -r zone sum; do
    z=${zone#zone} blocks=
    case $z in 25) blocks=2 ;; 26|29) blocks=16 ;; 27) blocks=32 ;; 28) blocks=48 ;; esac
    got=$(dd if="$N" bs=64k count="$blocks" skip=$((z * ZB)) iflag=direct status=none | sha256sum | cut -d' ' -f1)
    [ "$got" = "$sum" ] || bad="$bad $zone"
done < sums-N
if [ -s sums-N ] && [ -z "$bad" ]; then pass data-survived-reboot; else
    fail data-survived-reboot "differ:${bad:- no sums-N}"
fi

echo "== writes where the first boot stopped"
out=$(nvme zns zone-append "$N" -s $((25 * ZS)) -z 65536 -d /dev/urandom 2>&1)
check append-after-reboot "Success appended data to LBA $(printf %x $((25 * ZS + 131072 / LBS)))" "$out"
check write-closed-after-reboot ok \
    "$(st nvme write "$N" -s $((28 * ZS + 3145728 / LBS)) -c 7 -z $((8 * LBS)) -d /dev/urandom)"
check write-full-after-reboot 0x41b9 \
    "$(st nvme write "$N" -s $((29 * ZS)) -c 0 -z "$LBS" -d /dev/urandom)"
# the device and the kernel agree on the write pointer of a zone reopened
# through the block device
if dd if=/dev/urandom of="$N" bs=64k count=1 seek=$((27 * ZB + 32)) oflag=direct status=none; then
    pass write-at-wp-after-reboot
else
    fail write-at-wp-after-reboot
fi
check write-at-wp-after-reboot-wp 0x001080 \
    "$(blkzone report -o $((27 * ZSB / 512)) -c 1 "$N" | sed -n 's/.* wptr \(0x[0-9a-f]*\) .*/\1/p')"

echo "== btrfs"
mkdir -p /mnt/n
if mount -t btrfs "$N" /mnt/n && (cd /mnt/n && sha256sum --quiet -c SUMS); then
    pass btrfs-files-survived-reboot
    head -c 5M /dev/urandom > /mnt/n/after-reboot
    sum=$(sha256sum < /mnt/n/after-reboot)
    if umount /mnt/n && mount -t btrfs "$N" /mnt/n && [ "$(sha256sum < /mnt/n/after-reboot)" = "$sum" ]; then
        pass btrfs-write-after-reboot
    else
        fail btrfs-write-after-reboot
    fi
else
    fail btrfs-files-survived-reboot
fi
umount /mnt/n 2>/dev/null

echo "== null_blk comparison of $S"
# (no zoracle: the host could not build it and said so)
[ -x ./zoracle ] && ORACLE_DEVS=$S ORACLE_LABELS=nvme bash ./oracle.sh
exit 0
