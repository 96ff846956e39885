#!/usr/bin/env bash
# This repo's own tooling: the series is what build/qemu holds and applies to
# the pristine source; pq check notices unexported work; get-qemu refuses a
# source whose checksum is wrong.
set -uo pipefail
suite=harness
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The real tree: patches/ reproduces it and applies to 'upstream' and 'pristine'.
t_check pq-check "$top/scripts/pq" check

# Export is deterministic: twice into fresh directories, byte-identical.
mkdir -p "$tmp/e1" "$tmp/e2"
cp "$top/patches/series" "$tmp/e1/" && cp "$top/patches/series" "$tmp/e2/"
PATCH_DIR=$tmp/e1 "$top/scripts/pq" export >/dev/null 2>&1
PATCH_DIR=$tmp/e2 "$top/scripts/pq" export >/dev/null 2>&1
t_check export-deterministic diff -r "$tmp/e1" "$tmp/e2"

# pq check must notice an uncommitted edit and an unexported commit (in a
# clone, so that build/qemu is not touched).
if git clone -q --shared "$top/build/qemu" "$tmp/q" 2>/dev/null &&
   git -C "$tmp/q" fetch -q --tags origin 2>/dev/null; then
    cp -r "$top/patches" "$tmp/p"
    echo "/* edit */" >> "$tmp/q/block/qcow2.c"
    if out=$(QEMU_TREE=$tmp/q PATCH_DIR=$tmp/p "$top/scripts/pq" check 2>&1); then
        t_fail pq-check-sees-edit "pq check passed with an uncommitted edit"
    elif echo "$out" | grep -q 'uncommitted edits'; then
        t_pass pq-check-sees-edit
    else
        t_fail pq-check-sees-edit "unexpected message: $out"
    fi
    git -C "$tmp/q" -c user.name=t -c user.email=t@t commit -qam 'edit'
    if out=$(QEMU_TREE=$tmp/q PATCH_DIR=$tmp/p "$top/scripts/pq" check 2>&1); then
        t_fail pq-check-sees-commit "pq check passed with an unexported commit"
    elif echo "$out" | grep -q 'does not reproduce'; then
        t_pass pq-check-sees-commit
    else
        t_fail pq-check-sees-commit "unexpected message: $out"
    fi
    # ... and a patch that does not apply to the pristine source.
    QEMU_TREE=$tmp/q PATCH_DIR=$tmp/p "$top/scripts/pq" export >/dev/null 2>&1
    last=$(tail -n1 "$tmp/p/series")
    sed -i 's|^-\(.*\)$|-\1 garbage|' "$tmp/p/$last" 2>/dev/null
    if out=$(QEMU_TREE=$tmp/q PATCH_DIR=$tmp/p "$top/scripts/pq" check 2>&1); then
        t_fail pq-check-sees-bad-patch "pq check passed with a patch that does not apply"
    elif echo "$out" | grep -q "does not apply to 'upstream'"; then
        t_pass pq-check-sees-bad-patch
    else
        t_fail pq-check-sees-bad-patch "unexpected message: $out"
    fi
else
    t_fail pq-clone "could not clone build/qemu"
fi

# get-qemu verifies checksums: a tampered orig tarball is refused, saying so.
. "$top/qemu.pin"
if [ -f "$top/build/dl/$DEB_ORIG" ]; then
    mkdir -p "$tmp/bad"
    cp "$top/build/dl/$DEB_DEBIAN" "$top/build/dl/$DEB_DSC" "$tmp/bad/"
    head -c 1000000 "$top/build/dl/$DEB_ORIG" > "$tmp/bad/$DEB_ORIG"
    if out=$(QEMU_SRC=$tmp/bad/$DEB_DSC ZQ_SRC_OUT=$tmp/src ZQ_DL=$tmp/dl \
             GET_QEMU_METHODS=src "$top/scripts/get-qemu" 2>&1); then
        t_fail get-qemu-checksum "a truncated tarball was accepted"
    elif echo "$out" | grep -q "$DEB_ORIG: missing or sha256 mismatch" &&
         echo "$out" | grep -q 'What to do'; then
        t_pass get-qemu-checksum
    else
        t_fail get-qemu-checksum "unexpected message: $out"
    fi
    [ ! -e "$tmp/src" ] || t_fail get-qemu-no-leftover "a rejected source left $tmp/src"
else
    t_skip get-qemu-checksum "no $DEB_ORIG in build/dl (source came from QEMU_SRC)"
fi
exit 0
