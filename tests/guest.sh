#!/usr/bin/env bash
# A real Linux guest on zoned qcow2 disks through virtio-blk (make
# check-guest): sysfs, blkzone, O_DIRECT writes, the open-limit status, fio
# --zonemode=zbd, btrfs and f2fs, and the series' qemu-io on a zoned
# /dev/vdc with driver=host_device (file-posix's zoned code on a real kernel
# zoned device) in the first boot; zone states and files after a power-off
# in the second.  The guest scripts are tests/guest/boot*.sh;
# each of their "RESULT" lines is one result here.  A third boot compares
# three more zoned disks with null_blk twins of the same geometry
# (tests/guest/oracle.sh and zoracle.c: results, zone reports and data after
# each of ORACLE_OPS random ops, seeded by ORACLE_SEED) and runs the
# zone-boundary merge reproducer (ORACLE_TRIES tries).  GUEST_QEMU=path runs
# that boot with another qemu-system-x86_64.  Boots 4 and 5 attach zoned
# qcow2 images as NVMe zoned namespaces (scripts/zoned-vm --nvme: nvme-ns
# takes its zones from the image): in the fourth (tests/guest/nvme1.sh)
# sysfs, nvme-cli's Identify, zone reports, Zone Append, open/close/finish/
# reset with and without select all and the NVMe status of each refused
# write or transition, blkzone and errno, fio --zonemode=zbd, f2fs and btrfs;
# the fifth (nvme2.sh) finds the zone states (open zones closed), the data
# and the btrfs files of the fourth, writes on from there, and compares the
# small namespace with a null_blk twin (oracle.sh with ORACLE_DEVS).
# GUEST_NVME_LBS=4096 gives the large namespace 4 KiB logical blocks.  Boot
# 6 runs fio's zoned block device suite (t/zbd/test-zbd-support) on an NVMe
# zoned namespace and on null_blk (tests/guest/zbd.sh).  Boot 7 makes zones
# read-only and offline from the host while the guest runs (QMP
# x-blockdev-set-zone-condition through scripts/zone-fail, asked for by
# tests/guest/zonefail.sh on the console): the raw device, btrfs and f2fs;
# afterwards the host finds the conditions it left in the image.
# GUEST_BOOTS="3 7" runs only those boots (1 brings 2 with it, 4 brings 5).
set -uo pipefail
suite=guest
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
obj=${BUILD_DIR:-$top/build/obj}
work=$top/build/guest-test
log=$top/build/results/guest
# Hard limit per boot, only against a guest that never ends: the first boot
# takes about 40 s of QEMU time under TCG here (13 s to boot, 23 s of
# tests), so 20 minutes leave room for a machine 30 times slower, and two
# boots at the limit still end within CI's 90 minutes.
timeout=${GUEST_TIMEOUT:-1200}
boots=" ${GUEST_BOOTS:-1 2 3 4 5 6 7} "
want() { [[ $boots == *" $1 "* ]] || { t_skip "boot$1" "GUEST_BOOTS=$GUEST_BOOTS"; false; }; }
rm -rf "$work" && mkdir -p "$work"
start=$(date +%s)

a=$work/a.qcow2 b=$work/b.qcow2 c=$work/c.qcow2
"$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M,max_open_zones=8,max_active_zones=12 "$a" 2G &&
"$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M,zone_capacity=48M,conventional_zones=4 "$b" 2G &&
"$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=16M,conventional_zones=2,max_open_zones=3,max_active_zones=4 "$c" 256M ||
    { t_fail create-images; exit 0; }

# qemu-io of the build (or $GUEST_QEMU_IO, e.g. one built without a fix)
# with the shared libraries it needs that are not part of the C library (the
# guest is the same Debian release as this machine)
qemu_io=${GUEST_QEMU_IO:-$obj/qemu-io}
bundle=$work/qemu-io-bundle
mkdir -p "$bundle/lib" && cp "$qemu_io" "$bundle/qemu-io" &&
    ldd "$qemu_io" | awk '$3 ~ /^\// { print $3 }' |
    grep -Ev '/(libc|libm|ld-linux[^/]*)\.so' | xargs -r cp -L -t "$bundle/lib" ||
    { t_fail qemu-io-bundle; exit 0; }

# boot N SCRIPT [--copy FILE...]: runs the guest on the disks in ${disks[@]},
# records its RESULT lines; with ${console_pipe[@]} set, the console goes
# through that command on its way to the log
disks=(--image "$a" --image "$b" --image "$c")
console_pipe=()
boot() {
    local n=$1 script=$2 rc
    shift 2
    if [ ${#console_pipe[@]} -gt 0 ]; then
        "$top/scripts/zoned-vm" "${disks[@]}" \
            --timeout "$timeout" \
            "$@" --script "$script" 2> "$log.boot$n.err" |
            "${console_pipe[@]}" > "$log.boot$n.log"
        rc=${PIPESTATUS[0]}
    else
        "$top/scripts/zoned-vm" "${disks[@]}" \
            --timeout "$timeout" \
            "$@" --script "$script" > "$log.boot$n.log" 2> "$log.boot$n.err"
        rc=$?
    fi
    grep -h 'boot\|took' "$log.boot$n.err" | sed "s/^/  boot $n: /"
    local found=0
    while read -r _ verdict name detail; do
        found=1
        case $verdict in
            PASS) t_pass "boot$n/$name" ;;
            SKIP) t_skip "boot$n/$name" "$detail" ;;
            *) t_fail "boot$n/$name" "$detail" ;;
        esac
    done < <(grep -a '^RESULT ' "$log.boot$n.log")
    if [ "$rc" -ne 0 ] || [ "$found" -eq 0 ]; then
        t_fail "boot$n" "zoned-vm exit $rc (build/results/guest.boot$n.log)"
        tail -n 30 "$log.boot$n.log" "$log.boot$n.err" | sed 's/^/        /'
        return 1
    fi
    if grep -q '^RESULT FAIL' "$log.boot$n.log"; then
        echo "  guest log of boot $n (build/results/guest.boot$n.log):"
        grep -av '^REPORT-' "$log.boot$n.log" | tail -n 40 | sed 's/^/        /'
    fi
}

# QEMU's own iotest "zoned" (null_blk, root), run in the guest
src=${SRC_DIR:-$top/build/qemu}
iot=$work/iotests
mkdir -p "$iot/tests" &&
    cp "$src"/tests/qemu-iotests/common.{rc,filter,qemu} "$iot/" &&
    cp "$src"/tests/qemu-iotests/tests/zoned{,.out} "$iot/tests/" ||
    { t_fail iotests-copy; exit 0; }

if want 1 && boot 1 "$top/tests/guest/boot1.sh" --copy "$bundle" --copy "$iot" \
        --copy "$top/tests/guest/fs-test.sh" \
        --copy "$top/tests/guest/hostdev.sh" \
        --copy "$top/tests/guest/upstream-zoned.sh"; then
    grep -a '^REPORT-A ' "$log.boot1.log" | sed 's/^REPORT-A //' > "$work/report-A"
    grep -a '^REPORT-B ' "$log.boot1.log" | sed 's/^REPORT-B //' > "$work/report-B"
    grep -a '^REPORT-C ' "$log.boot1.log" | sed 's/^REPORT-C //' > "$work/report-C"
    for img in "$a" "$b" "$c"; do
        t_check "host-check-$(basename "$img" .qcow2)" "$obj/qemu-img" check "$img"
    done
    boot 2 "$top/tests/guest/boot2.sh" --copy "$work/report-A" --copy "$work/report-B" \
        --copy "$work/report-C"
fi

# null_blk as an oracle (its own boot): g1: 2 MiB zones, 2 conventional, max
# 3 open / 5 active; g2: 4 MiB zones of 3 MiB capacity, 1 conventional, max
# 3 active (null_blk refuses a smaller last zone with capacity < zone size);
# g3: 2 MiB zones, max 2 open, a 1 MiB last zone (the merge reproducer runs
# on it).  Sizes are whole MiB: null_blk's configfs takes MiB.
ostart=$(date +%s)
o1=$work/g1.qcow2 o2=$work/g2.qcow2 o3=$work/g3.qcow2
if ! want 3; then
    :
elif ! gcc -O2 -Wall -static -o "$work/zoracle" "$top/tests/guest/zoracle.c" > "$work/gcc.log" 2>&1; then
    t_fail oracle/build "$(head -n 5 "$work/gcc.log" | tr '\n' '|')"
elif ! { "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=2M,conventional_zones=2,max_open_zones=3,max_active_zones=5 "$o1" 32M &&
         "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=4M,zone_capacity=3M,conventional_zones=1,max_active_zones=3 "$o2" 32M &&
         "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=2M,max_open_zones=2 "$o3" 15M; }; then
    t_fail oracle/create-images
else
    printf 'SEED=%s\nOPS=%s\nTRIES=%s\n' "${ORACLE_SEED:-1}" "${ORACLE_OPS:-200}" \
        "${ORACLE_TRIES:-30}" > "$work/oracle.conf"
    disks=(--image "$o1" --image "$o2" --image "$o3")
    boot 3 "$top/tests/guest/oracle.sh" --copy "$work/zoracle" --copy "$work/oracle.conf" \
        ${GUEST_QEMU:+--qemu "$GUEST_QEMU"}
    grep -a '^ORACLE \|^MERGE \|^allowed differences' "$log.boot3.log" | sed 's/^/  /'
    for img in "$o1" "$o2" "$o3"; do
        t_check "oracle/host-check-$(basename "$img" .qcow2)" "$obj/qemu-img" check "$img"
    done
    echo "  oracle boot took $(( $(date +%s) - ostart )) s"
fi

# NVMe zoned namespaces on zoned qcow2 images (boots 4 and 5): n: 2 GiB,
# 64 MiB zones of 48 MiB capacity, max 8 open / 12 active; s: 32 MiB, 2 MiB
# zones, max 3 open / 5 active (the null_blk comparison: whole MiB, no
# conventional zones, which NVMe zoned namespaces do not have); p: a plain
# qcow2 image (/dev/vda) for f2fs's metadata.
nstart=$(date +%s)
n=$work/n.qcow2 s=$work/s.qcow2 p=$work/p.qcow2
lbs=${GUEST_NVME_LBS:-512}
if ! want 4; then
    :
elif ! { "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M,zone_capacity=48M,max_open_zones=8,max_active_zones=12 "$n" 2G &&
       "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=2M,max_open_zones=3,max_active_zones=5 "$s" 32M &&
       "$obj/qemu-img" create -q -f qcow2 "$p" 512M; }; then
    t_fail nvme/create-images
else
    echo "LBS=$lbs" > "$work/nvme.conf"
    disks=(--image "$p" --nvme "$n")
    [ "$lbs" = 512 ] || disks+=(--nvme-ns-opt "logical_block_size=$lbs,physical_block_size=$lbs")
    disks+=(--nvme "$s")
    # boot 5's null_blk comparison: zoracle and oracle.conf as for boot 3
    [ -s "$work/oracle.conf" ] ||
        printf 'SEED=%s\nOPS=%s\nTRIES=%s\n' "${ORACLE_SEED:-1}" "${ORACLE_OPS:-200}" \
            "${ORACLE_TRIES:-30}" > "$work/oracle.conf"
    oracle=(--copy "$work/oracle.conf" --copy "$top/tests/guest/oracle.sh")
    if [ -x "$work/zoracle" ] ||
       gcc -O2 -Wall -static -o "$work/zoracle" "$top/tests/guest/zoracle.c" > "$work/gcc.log" 2>&1; then
        oracle+=(--copy "$work/zoracle")
    else
        t_fail nvme/oracle-build "$(head -n 5 "$work/gcc.log" | tr '\n' '|')"
    fi
    if boot 4 "$top/tests/guest/nvme1.sh" --copy "$work/nvme.conf" \
            --copy "$top/tests/guest/fs-test.sh"; then
        grep -a '^REPORT-N ' "$log.boot4.log" > "$work/report-N"
        grep -a '^SUMS-N ' "$log.boot4.log" | sed 's/^SUMS-N //' > "$work/sums-N"
        for img in "$n" "$s" "$p"; do
            t_check "nvme/host-check-$(basename "$img" .qcow2)" "$obj/qemu-img" check "$img"
        done
        boot 5 "$top/tests/guest/nvme2.sh" --copy "$work/nvme.conf" --copy "$work/report-N" \
            --copy "$work/sums-N" "${oracle[@]}"
        grep -a '^ORACLE \|^MERGE \|^allowed differences' "$log.boot5.log" | sed 's/^/  /'
        for img in "$n" "$s" "$p"; do
            t_check "nvme/host-check-$(basename "$img" .qcow2)-after-boot5" "$obj/qemu-img" check "$img"
        done
    fi
    echo "  NVMe boots took $(( $(date +%s) - nstart )) s"
fi

# fio's zoned block device conformance suite (boot 6, tests/guest/zbd.sh) on
# an NVMe zoned namespace on a zoned qcow2 image (1 GiB, 4 MiB zones of 3 MiB
# capacity, no limits: the geometry of the suite's own null_blk runs) and on a
# null_blk twin; a test that null_blk passes must pass on the namespace.
# fio 3.41 from Debian's source archive (scripts/get-fio).  GUEST_ZBD=0 skips
# the boot, GUEST_ZBD_TESTS="N ..." runs only those tests,
# GUEST_ZBD_LIMITS="max_open_zones=8,max_active_zones=12" adds zone limits
# (the twin gets the same; zbd.sh then passes -o MAX_OPEN to the suite).
if ! want 6; then
    :
elif [ "${GUEST_ZBD:-1}" = 0 ]; then
    t_skip zbd "GUEST_ZBD=0"
elif ! "$top/scripts/get-fio" > "$work/get-fio.log" 2>&1; then
    t_fail zbd/get-fio "$(tail -n 3 "$work/get-fio.log" | tr '\n' '|')"
else
    zstart=$(date +%s)
    z=$work/zbd.qcow2
    mkdir -p "$work/zbd/fio/t" &&
        cp "$top/build/fio/fio" "$work/zbd/fio/" &&
        cp -r "$top/build/fio/t/zbd" "$work/zbd/fio/t/" &&
        cp "$top/tests/guest/zbd.sh" "$work/zbd/" &&
        echo "ZBD_TESTS='${GUEST_ZBD_TESTS:-}'" > "$work/zbd/zbd.conf" &&
        "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=4M,zone_capacity=3M${GUEST_ZBD_LIMITS:+,$GUEST_ZBD_LIMITS} "$z" 1G ||
        { t_fail zbd/setup; exit 0; }
    printf '#!/bin/bash\ncd zbd && exec bash ./zbd.sh\n' > "$work/zbd-run.sh"
    disks=(--nvme "$z")
    boot 6 "$work/zbd-run.sh" --copy "$work/zbd"
    grep -a '^zbd: ' "$log.boot6.log" | sed 's/^/  /'
    t_check "zbd/host-check" "$obj/qemu-img" check "$z"
    echo "  zbd boot took $(( $(date +%s) - zstart )) s"
fi

# Read-only and offline zones from the host (boot 7, tests/guest/zonefail.sh;
# node names disk0..2 as zoned-vm gives them): u (vda, disk0): raw device;
# v (vdb, disk1): btrfs; w (vdc, disk2): f2fs, its metadata in the two
# conventional zones; x (NVMe, nvmedisk0): 512 MiB, 64 MiB zones.  The
# console goes through scripts/zone-fail --watch, which sets the conditions
# the guest asks for through QMP and logs "ZONEFAIL-HOST ... rc=N" lines.
# Observations (how Linux, btrfs and f2fs react) are the guest's "NOTE"
# lines, shown here and not judged.  GUEST_ZONEFAIL_TIMEOUT: hard limit of
# the boot in seconds (default 600; it takes about 70 s under TCG here).
if want 7; then
    fstart=$(date +%s)
    u=$work/u.qcow2 v=$work/v.qcow2 w=$work/w.qcow2 x=$work/x.qcow2
    sock=$(mktemp -u "${TMPDIR:-/tmp}/zonefail.XXXXXX.sock")
    if ! { "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M,conventional_zones=2 "$u" 1G &&
           "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M "$v" 2G &&
           "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M,conventional_zones=2 "$w" 2G &&
           "$obj/qemu-img" create -q -f qcow2 -o zone_model=host-managed,zone_size=64M "$x" 512M; }; then
        t_fail zonefail/create-images
    else
        disks=(--image "$u" --image "$v" --image "$w" --nvme "$x")
        console_pipe=("$top/scripts/zone-fail" "$sock" --watch)
        # werror/rerror=stop: a refused request must complete with an error
        # status, never stop the VM (the guest would freeze until the timeout)
        boot 7 "$top/tests/guest/zonefail.sh" --timeout "${GUEST_ZONEFAIL_TIMEOUT:-600}" \
            --qemu-arg -qmp --qemu-arg "unix:$sock,server=on,wait=off" \
            --qemu-arg -global --qemu-arg virtio-blk-device.werror=stop \
            --qemu-arg -global --qemu-arg virtio-blk-device.rerror=stop
        console_pipe=()
        rm -f "$sock"
        l=$log.boot7.log
        sed -n 's/^NOTE /  note: /p; s/^ZONEFAIL-HOST /  qmp: /p' "$l"
        # QMP: every request done, except the one on a conventional zone
        bad=$(grep -a '^ZONEFAIL-HOST ' "$l" | grep -v ' offset=0 ' | grep -v ' rc=0$')
        if grep -aq '^ZONEFAIL-HOST ' "$l" && [ -z "$bad" ]; then
            t_pass zonefail/qmp-requests
        else
            t_fail zonefail/qmp-requests "${bad:-no requests}"
        fi
        if grep -aq '^ZONEFAIL-HOST node=disk0 offset=0 .*rc=1 error=.*is conventional' "$l"; then
            t_pass zonefail/qmp-conventional-refused
        else
            t_fail zonefail/qmp-conventional-refused "$(grep -a '^ZONEFAIL-HOST node=disk0 offset=0 ' "$l")"
        fi
        # What the guest left in u: zone 6 read-only (1 MiB of 0xab), zone 7 offline
        info=$("$obj/qemu-img" info "$u")
        if grep -q '^ *read only zones: 1$' <<< "$info" && grep -q '^ *offline zones: 1$' <<< "$info"; then
            t_pass zonefail/host-info-conditions
        else
            t_fail zonefail/host-info-conditions "$(grep -i 'zones' <<< "$info" | tr '\n' '|')"
        fi
        zrp=$("$obj/qemu-io" -r -f qcow2 -c "zrp $((6 * 64))M 2" "$u" 2>&1)
        if [ "$(grep -o 'zcond:[0-9]*' <<< "$zrp" | tr '\n' ' ')" = "zcond:13 zcond:15 " ]; then
            t_pass zonefail/host-zrp-conditions
        else
            t_fail zonefail/host-zrp-conditions "$(tr '\n' '|' <<< "$zrp")"
        fi
        t_check zonefail/host-ro-data "$obj/qemu-io" -r -f qcow2 -c "read -P 0xab $((6 * 64))M 1M" "$u"
        out=$("$obj/qemu-io" -r -f qcow2 -c "read $((7 * 64))M 4k" "$u" 2>&1)
        if grep -q 'No such device or address' <<< "$out"; then
            t_pass zonefail/host-offline-read
        else
            t_fail zonefail/host-offline-read "$(tr '\n' '|' <<< "$out")"
        fi
        for img in "$u" "$v" "$w" "$x"; do
            t_check "zonefail/host-check-$(basename "$img" .qcow2)" "$obj/qemu-img" check "$img"
        done
    fi
    echo "  zone failure boot took $(( $(date +%s) - fstart )) s"
fi
echo "  guest test took $(( $(date +%s) - start )) s"
rm -rf "$work"
exit 0
