# fs_test NAME DEV MNT FSTYPE FILES MIB MKFS...: make a file system with
# MKFS..., mount DEV on MNT, write FILES files of MIB, 2*MIB, ... MiB of random
# data, remount, compare their checksums (kept in MNT/SUMS), unmount; prints a
# RESULT line.  Sourced by the guest scripts (boot1.sh, nvme1.sh), which
# define pass and fail.
fs_test() {
    local name=$1 dev=$2 mnt=$3 type=$4 files=$5 mib=$6 i
    shift 6
    mkdir -p "$mnt"
    if ! "$@" > /tmp/mkfs 2>&1 || ! mount -t "$type" "$dev" "$mnt"; then
        fail "$name" "mkfs or mount failed: $(tail -n 3 /tmp/mkfs | tr '\n' ' ')"
        return
    fi
    for i in $(seq "$files"); do
        head -c $((i * mib * 1048576)) /dev/urandom > "$mnt/file$i"
    done
    (cd "$mnt" && sha256sum file* > SUMS)
    if umount "$mnt" && mount -t "$type" "$dev" "$mnt" &&
       (cd "$mnt" && sha256sum --quiet -c SUMS); then
        pass "$name"
    else
        fail "$name" "files differ after remount"
    fi
    umount "$mnt"
}
