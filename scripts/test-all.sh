#!/usr/bin/env bash
# Run the test suite on every CPython >= 3.11 we can find:
#   * the default interpreter (.venv, `make test`: C tests + pytest),
#   * every other pyenv CPython >= 3.11, newest patch per minor, each in
#     .venv-<major.minor> built by the same Makefile rules (`make test-py
#     PYTHON=... VENV=...`),
#   * CPython 3.14 in the Debian sid chroot (scripts/chroot-314.sh test).
#
#   scripts/test-all.sh              all of them
#   scripts/test-all.sh 3.12 3.14    only these (match on major.minor or "default")
#
# POUNCE_SKIP_314=1 skips the chroot.  Full logs go to build/test-all/*.log;
# one summary line per interpreter is printed at the end.  Exit status is
# non-zero when any interpreter failed.
set -uo pipefail

cd "$(dirname "$0")/.."
LOGDIR=build/test-all
mkdir -p "$LOGDIR"

want() {
    # No arguments: everything.  Otherwise only the named minors.
    [ ${#SELECT[@]} -eq 0 ] && return 0
    local s
    for s in "${SELECT[@]}"; do
        [ "$s" = "$1" ] && return 0
    done
    return 1
}
SELECT=("$@")

SUMMARY=()
FAILED=0

# pytest's closing line ("3 passed in 0.4s") or the last line of the log.
result_of() {
    local line
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped)|no tests ran' "$1" | tail -n1 |
        sed -E 's/^=+ //; s/ =+$//')
    # Else the first compiler/make error, else the last line.
    [ -n "$line" ] || line=$(grep -m1 -E 'error:|Error [0-9]+' "$1")
    echo "${line:-$(tail -n1 "$1")}" | sed -E 's/^ +//' | cut -c1-110
}

# run NAME LABEL CMD...: run CMD with output to the log, record a summary line.
run() {
    local name=$1 label=$2
    shift 2
    local log=$LOGDIR/$name.log t0 t1 rc
    echo "== $label: $*"
    t0=$(date +%s)
    "$@" >"$log" 2>&1
    rc=$?
    t1=$(date +%s)
    local status=PASS
    if [ $rc -ne 0 ]; then
        status=FAIL
        FAILED=$((FAILED + 1))
        echo "-- $label failed (exit $rc); last lines of $log:"
        tail -n 40 "$log" | sed 's/^/   | /'
    fi
    SUMMARY+=("$(printf 'test-all: %-22s %s %4ds  %s' "$label" "$status" $((t1 - t0)) "$(result_of "$log")")")
}

default_py=.venv/bin/python
default_minor=""
if want default; then
    run default "default ($("${PYTHON:-python3}" -c 'import platform; print(platform.python_version())'))" \
        make --no-print-directory test
fi
[ -x "$default_py" ] && default_minor=$("$default_py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# pyenv: CPython >= 3.11 only (no pypy-, no -dev), newest patch per minor.
if command -v pyenv >/dev/null; then
    declare -A newest=()
    while read -r v; do
        [[ $v =~ ^3\.([0-9]+)\.([0-9]+)(t?)$ ]] || continue
        [ "${BASH_REMATCH[1]}" -ge 11 ] || continue
        minor=3.${BASH_REMATCH[1]}${BASH_REMATCH[3]}
        cur=${newest[$minor]:-}
        if [ -z "$cur" ] || [ "$(printf '%s\n%s\n' "$cur" "$v" | sort -V | tail -n1)" = "$v" ]; then
            newest[$minor]=$v
        fi
    done < <(pyenv versions --bare 2>/dev/null)
    root=$(pyenv root)
    for minor in $(printf '%s\n' "${!newest[@]}" | sort -V); do
        v=${newest[$minor]}
        [ "$minor" = "$default_minor" ] && continue
        want "$minor" || continue
        run "py-$minor" "$v (.venv-$minor)" \
            make --no-print-directory test-py PYTHON="$root/versions/$v/bin/python" VENV=".venv-$minor"
    done
else
    echo "test-all: pyenv not found; only the default interpreter and the chroot"
fi

if [ "${POUNCE_SKIP_314:-0}" != 1 ] && want 3.14; then
    run chroot-3.14 "3.14 (sid chroot)" scripts/chroot-314.sh test
fi

echo
printf '%s\n' "${SUMMARY[@]}"
if [ $FAILED -ne 0 ]; then
    echo "test-all: $FAILED of ${#SUMMARY[@]} interpreters FAILED (logs in $LOGDIR/)"
    exit 1
fi
echo "test-all: all ${#SUMMARY[@]} interpreters passed"
