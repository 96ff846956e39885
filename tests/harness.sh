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
    elif grep -q 'uncommitted edits' <<< "$out"; then
        t_pass pq-check-sees-edit
    else
        t_fail pq-check-sees-edit "unexpected message: $out"
    fi
    git -C "$tmp/q" -c user.name=t -c user.email=t@t commit -qam 'edit'
    if out=$(QEMU_TREE=$tmp/q PATCH_DIR=$tmp/p "$top/scripts/pq" check 2>&1); then
        t_fail pq-check-sees-commit "pq check passed with an unexported commit"
    elif grep -q 'does not reproduce' <<< "$out"; then
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
    elif grep -q "does not apply to 'upstream'" <<< "$out"; then
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
    elif grep -q "$DEB_ORIG: missing or sha256 mismatch" <<< "$out" &&
         grep -q 'What to do' <<< "$out"; then
        t_pass get-qemu-checksum
    else
        t_fail get-qemu-checksum "unexpected message: $out"
    fi
    [ ! -e "$tmp/src" ] || t_fail get-qemu-no-leftover "a rejected source left $tmp/src"
else
    t_skip get-qemu-checksum "no $DEB_ORIG in build/dl (source came from QEMU_SRC)"
fi

# scripts/deps must not fail from its own logging.  It once printed each
# command by piping echo into "head -n1" under pipefail: bash's echo writes
# a multi-line command line by line, head can exit after the first, and the
# next write dies of SIGPIPE (exit 141), now and then, only when there is
# something to install.  The dry run prints the same log lines as a real run
# (as any user, nothing run): with the sources entry (a here-document), a
# package and meson taken as missing, N runs must all succeed with the same
# output.  Plain runs lose the race about once in a few hundred runs; under
# strace, every write of a process after its first is delayed by 1 ms, so
# that an early reader wins the race each time (the old logging fails nearly
# every run there).
# deps_runs N [WRAPPER...]
deps_runs() {
    local n=$1 i out rc first=
    shift
    for i in $(seq "$n"); do
        rc=0
        out=$(DEPS_DRY_RUN=1 DEPS_PRETEND_MISSING="sources meson jq" \
              DEPS_MIRROR=http://deb.debian.org/debian \
              "$@" "$top/scripts/deps" 2>&1) || rc=$?
        if [ "$rc" -ne 0 ]; then
            echo "run $i of $n: exit $rc"; printf '%s\n' "$out"; return 1
        fi
        [ -n "$first" ] || first=$out
        [ "$out" = "$first" ] || { echo "run $i printed:"; printf '%s\n' "$out"; return 1; }
    done
    case $first in
        *"deps: cat > "*"Suites: sid"*"deps: apt-get update"*" jq"*" meson"*"deps: dry run, nothing done") ;;
        *) echo "unexpected dry-run output:"; printf '%s\n' "$first"; return 1 ;;
    esac
}
t_check deps-dry-run-200-runs deps_runs 200
slow_writer=(strace -f -qq -o /dev/null -e trace=write -e inject=write:delay_enter=1000:when=2+)
if "${slow_writer[@]}" true 2>/dev/null; then
    t_check deps-dry-run-slow-writer deps_runs 20 "${slow_writer[@]}"
else
    t_skip deps-dry-run-slow-writer "strace cannot trace here"
fi
exit 0
