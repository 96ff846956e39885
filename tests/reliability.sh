#!/usr/bin/env bash
# Reliability (make check-reliability; short form in make check, long form
# with RELIABILITY_KILLS / RELIABILITY_SECONDS, see make soak):
#   crash test: qemu-io killed with SIGKILL at random moments during mixed
#   zone I/O on three geometries; after each kill the image must open, pass
#   qemu-img check, and hold every flushed write below consistent write
#   pointers (tests/crash/crash-test.py).
set -uo pipefail
suite=reliability
. "$(dirname "$0")/lib.sh"
: > "$ZQ_RESULTS"
obj=${BUILD_DIR:-$top/build/obj}
kills=${RELIABILITY_KILLS:-50}
seconds=${RELIABILITY_SECONDS:-0}
seed_opt=()
[ -n "${RELIABILITY_SEED:-}" ] && seed_opt=(--seed "$RELIABILITY_SEED")

out=$(python3 "$top/tests/crash/crash-test.py" --qemu-img "$obj/qemu-img" \
      --qemu-io "$obj/qemu-io" --dir "$top/build/crash" --kills "$kills" \
      --seconds "$seconds" "${seed_opt[@]}" 2>&1)
rc=$?
summary=$(printf '%s\n' "$out" | tail -n 1)
echo "  $summary"
if [ $rc -eq 0 ] && printf '%s\n' "$summary" | grep -q ' 0 violations'; then
    t_pass "crash-test ($summary)"
else
    t_fail crash-test "$summary"
    printf '%s\n' "$out" | grep VIOLATION | head -n 20 | sed 's/^/        /'
fi
exit 0
