#!/bin/bash
# null_blk as an oracle for the zoned virtio-blk disks (run by tests/guest.sh
# through scripts/zoned-vm, in a boot of its own).  For each virtio disk
# (/dev/vda, vdb, ... = the geometries g1, g2, ...) a memory-backed null_blk
# zoned device of the same geometry is made through configfs (sizes in MiB:
# the images' geometries are whole MiB), and zoracle (zoracle.c, built
# statically on the host) runs a seeded random op sequence on both and
# compares results, zone reports and data after every op.  Then the known
# virtio-blk merge case: a 1 KiB write across a zone boundary, TRIES times, on
# the last disk (and on its null_blk twin, which must never fail).
# oracle.conf (from the host): SEED, OPS, TRIES, VERBOSE (ZORACLE_VERBOSE:
# 1 prints the allowed differences, 2 every op).
# ORACLE_DEVS (environment): other zoned devices than the virtio disks
# (nvme2.sh: an NVMe zoned namespace), ORACLE_LABELS their names in the
# results (default g1, g2, ...).
# Prints "RESULT PASS|FAIL name [detail]" lines.
SEED=1 OPS=200 TRIES=30 VERBOSE=0
[ -r oracle.conf ] && . ./oracle.conf
DEVS=${ORACLE_DEVS:-$ZONED_VM_DISKS}
# shellcheck disable=SC2206
LABELS=(${ORACLE_LABELS:-})
export ZORACLE_VERBOSE=$VERBOSE
Z=$PWD/zoracle
pass() { echo "RESULT PASS $1"; }
fail() { echo "RESULT FAIL $1 ${2:-}"; }

modprobe null_blk nr_devices=0 || { fail null_blk-load; exit 0; }
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
# null_dev N DEV: a null_blk twin of DEV, named oracleN; prints /dev/nullbX
null_dev() {
    local d=/sys/kernel/config/nullb/oracle$1 attr val
    mkdir "$d" || return 1
    "$Z" geometry "$2" > "geometry.$1" || return 1
    if grep -q '^#' "geometry.$1"; then
        grep '^#' "geometry.$1" >&2
        return 1
    fi
    echo 1 > "$d/zoned" && echo 1 > "$d/memory_backed" && echo 512 > "$d/blocksize" ||
        return 1
    while read -r attr val; do
        echo "$val" > "$d/$attr" || { echo "cannot set $attr=$val" >&2; return 1; }
    done < "geometry.$1"
    echo 1 > "$d/power" || return 1
    # 6.12 names the disk after the configfs directory (older: nullbINDEX)
    local dev=/dev/oracle$1
    [ -b "$dev" ] || dev=/dev/nullb$(cat "$d/index")
    [ -b "$dev" ] || { echo "no block device for $d" >&2; return 1; }
    echo "$dev"
}

n=0
for dev in $DEVS; do
    n=$((n + 1))
    g=${LABELS[n - 1]:-g$n}
    nb=$(null_dev $n "$dev") || { fail "oracle-$g-null_blk" "cannot make a null_blk twin of $dev"; continue; }
    echo "== $g: $dev vs $nb: $(tr '\n' ' ' < geometry.$n)"
    last_dev=$dev last_nb=$nb
    "$Z" oracle "$dev" "$nb" "$((SEED + n - 1))" "$OPS" "$g" > "oracle.$n.out"
    rc=$?
    cat "oracle.$n.out"
    line=$(grep '^ORACLE ' "oracle.$n.out")
    compared=$(echo "$line" | sed -n 's/.* compared=\([0-9]*\).*/\1/p')
    diffs=$(echo "$line" | sed -n 's/.* diffs=\([0-9]*\).*/\1/p')
    if [ -z "$line" ]; then
        fail "oracle-$g" "zoracle exit $rc: $(tail -n 1 "oracle.$n.out")"
    elif [ "$rc" -eq 0 ] && [ "$diffs" = 0 ]; then
        pass "oracle-$g-${compared}ops-0diffs"
    else
        fail "oracle-$g-${compared}ops-${diffs}diffs" \
            "$(grep -m 3 '^DIFF ' "oracle.$n.out" | cut -c1-200 | tr '\n' '|')"
    fi
done

# The known defect (issue 12 item 4): the kernel splits the write at the zone
# boundary, virtio-blk merged the halves back, and qcow2 refused the merged
# write: both halves failed with EIO.
if [ -n "${last_dev:-}" ]; then
    echo "== merge: 1 KiB across a zone boundary, $TRIES tries"
    "$Z" merge "$last_nb" "$TRIES" > merge.null.out
    "$Z" merge "$last_dev" "$TRIES" > merge.out
    cat merge.null.out merge.out
    nf=$(sed -n 's/^MERGE .* failed=\([0-9]*\)$/\1/p' merge.null.out)
    vf=$(sed -n 's/^MERGE .* failed=\([0-9]*\)$/\1/p' merge.out)
    if [ -z "$vf" ] || [ -z "$nf" ]; then
        fail merge-zone-boundary "$(tail -n 1 merge.out) / null_blk: $(tail -n 1 merge.null.out)"
    elif [ "$vf" = 0 ] && [ "$nf" = 0 ]; then
        pass "merge-zone-boundary-${TRIES}tries-0failed"
    else
        fail "merge-zone-boundary-${TRIES}tries-${vf}failed" \
            "$vf of $TRIES failed on $last_dev, $nf on null_blk $last_nb"
    fi
fi
for d in /sys/kernel/config/nullb/oracle*; do
    [ -d "$d" ] && { echo 0 > "$d/power"; rmdir "$d"; }
done
exit 0
