#!/usr/bin/env bash
# The spec-only reader tests/spec/zqcow2.py against qemu-img / qemu-io on
# about 80 zoned images (tests/spec/check.sh): one result per comparison.
# A listed difference that is not about zoned images (XFAIL) is a skip with
# its reason.
set -uo pipefail
suite=spec
. "$(dirname "$0")/lib.sh"
obj=${BUILD_DIR:-$top/build/obj}
: > "$ZQ_RESULTS"
log=$top/build/results/spec.log

[ -x "$obj/qemu-img" ] || { t_fail reader "no $obj/qemu-img: build first"; exit 1; }
bash "$top/tests/spec/check.sh" "$obj/qemu-img" "$obj/qemu-io" > "$log" 2>&1
rc=$?
n=0
while read -r verdict name why; do
    case "$verdict" in
    PASS) t_pass "$name" > /dev/null; n=$((n + 1));;
    FAIL) t_fail "${name%:}" "$why"; n=$((n + 1));;
    XFAIL) t_skip "${name%:}" "$why"; n=$((n + 1));;
    esac
done < "$log"
last=$(tail -n 1 "$log")
echo "  $last (log: build/results/spec.log)"
# check.sh stopping early (a Python error) leaves its counts line out
if ! [[ $last =~ ^[0-9]+\ passed,\ [0-9]+\ failed ]]; then
    t_fail check.sh "did not finish (exit $rc): $last"
fi
[ "$n" -gt 0 ] || t_fail check.sh "no results (exit $rc)"
