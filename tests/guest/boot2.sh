#!/bin/bash
# Second boot of the guest test: the zone reports of the first boot (with
# open zones now closed) and the files on both file systems must be there.
A=/dev/vda B=/dev/vdb C=/dev/vdc
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }
for d in A B C; do
    case $d in A) dev=$A;; B) dev=$B;; C) dev=$C;; esac
    # Open zones come back closed (or empty if nothing was written)
    sed -e '/wptr 0x0* /s/zcond: *[23]([a-z]*)/zcond: 1(em)/' \
        -e 's/zcond: *2(oi)/zcond: 4(cl)/' -e 's/zcond: *3(oe)/zcond: 4(cl)/' \
        "report-$d" > expected
    blkzone report $dev > actual
    if diff -u expected actual > diff.out; then
        pass "zones-survived-reboot-$d"
    else
        fail "zones-survived-reboot-$d" "$(head -n 20 diff.out | tr '\n' '|')"
    fi
done
mkdir -p /mnt/a /mnt/b
mount $A /mnt/a && (cd /mnt/a && sha256sum --quiet -c SUMS) &&
    pass btrfs-files-survived-reboot || fail btrfs-files-survived-reboot
umount /mnt/a 2>/dev/null
mount -t f2fs $B /mnt/b && (cd /mnt/b && sha256sum --quiet -c SUMS) &&
    pass f2fs-files-survived-reboot || fail f2fs-files-survived-reboot
umount /mnt/b 2>/dev/null
