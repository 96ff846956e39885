# Shared by this repo's test suites: each result is one line in
# $ZQ_RESULTS (PASS|FAIL|SKIP <suite>/<name> [reason]); tests/summary counts them.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
suite=${suite:-$(basename "$0" .sh)}
ZQ_RESULTS=${ZQ_RESULTS:-$top/build/results/$suite.txt}
mkdir -p "$(dirname "$ZQ_RESULTS")"

t_pass() { echo "PASS $suite/$1" >> "$ZQ_RESULTS"; echo "  pass  $1"; }
t_fail() { echo "FAIL $suite/$1 ${2:-}" >> "$ZQ_RESULTS"; echo "  FAIL  $1${2:+: $2}"; }
t_skip() { echo "SKIP $suite/$1 ${2:-}" >> "$ZQ_RESULTS"; echo "  skip  $1${2:+: $2}"; }
# t_check NAME CMD...: pass when CMD exits 0; its output is shown on failure.
t_check() {
    local name=$1 out; shift
    if out=$("$@" 2>&1); then t_pass "$name"; else
        t_fail "$name" "exit $?"; printf '%s\n' "$out" | tail -n 40 | sed 's/^/        /'
    fi
}
