#!/usr/bin/env bash
# Run the test suite on every supported CPython:
#   * the default interpreter (.venv, `make test`: C tests + pytest),
#   * every other pyenv CPython >= 3.11, newest patch per minor, each in
#     .venv-<major.minor> built by the same Makefile rules (`make test-py
#     PYTHON=... VENV=...`),
#   * CPython 3.14 in the Debian sid chroot (scripts/chroot-314.sh test).
#
#   scripts/test-all.sh              all of them
#   scripts/test-all.sh 3.12 3.14    only these (match on major.minor or "default")
#   scripts/test-all.sh --list [..]  say what would run, check it, run nothing
#
# The required set is REQUIRED below: 3.11 (the default interpreter), 3.12
# and 3.13 (pyenv), 3.14 (the chroot).  Without arguments a missing one is an
# error before anything runs, so CI fails instead of quietly testing fewer
# interpreters.  Running fewer on purpose: name them on the command line (a
# named one that is missing is an error too), or POUNCE_SKIP_314=1 (no
# chroot), or POUNCE_TEST_ALL_ALLOW_MISSING=1 (run what is there; each
# missing one gets a SKIP line).  Full logs go to build/test-all/*.log; one
# summary line per interpreter is printed at the end.  Exit status: 1 when
# any interpreter failed, 2 when a required or named one is missing.
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
LIST=0
if [ "${1:-}" = --list ]; then
    LIST=1
    shift
fi
SELECT=("$@")
REQUIRED=(3.11 3.12 3.13 3.14)

SUMMARY=()
FAILED=0
RAN=0

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
    RAN=$((RAN + 1))
}

# The default interpreter: .venv's if it exists (make keeps it), else the
# one make would create it with.
default_py=.venv/bin/python
[ -x "$default_py" ] || default_py=${PYTHON:-python3}
default_version=$("$default_py" -c 'import platform; print(platform.python_version())' 2>/dev/null)
default_minor=${default_version%.*}

# pyenv: CPython >= 3.11 only (no pypy-, no -dev), newest patch per minor.
declare -A newest=()
root=""
if command -v pyenv >/dev/null; then
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
fi

# Where each interpreter comes from, or why it cannot run here.
source_of() {
    case $1 in
    default | "$default_minor") echo "default ($default_py)" ;;
    3.14 | chroot)
        if [ "${POUNCE_SKIP_314:-0}" = 1 ]; then
            echo "-POUNCE_SKIP_314=1"
        elif [ "$(id -u)" != 0 ]; then
            echo "!the sid chroot (scripts/chroot-314.sh) needs root"
        else
            echo "the sid chroot"
        fi
        ;;
    *)
        if [ -n "${newest[$1]:-}" ]; then
            echo "pyenv ${newest[$1]}"
        elif [ -z "$root" ]; then
            echo "!pyenv is not installed"
        else
            echo "!pyenv has no CPython $1 ($(printf '%s ' "${newest[@]}" | sed 's/ $//'))"
        fi
        ;;
    esac
}

# What must run: REQUIRED without arguments, else exactly what was named.
MISSING=()
if [ ${#SELECT[@]} -eq 0 ]; then
    check=("${REQUIRED[@]}")
else
    check=("${SELECT[@]}")
fi
for v in "${check[@]}"; do
    src=$(source_of "$v")
    case $src in
    "!"*)
        echo "test-all: $v: MISSING: ${src#!}"
        MISSING+=("$v: ${src#!}")
        ;;
    -*) echo "test-all: $v: skipped (${src#-})" ;;
    *) echo "test-all: $v: $src" ;;
    esac
done
if [ ${#MISSING[@]} -ne 0 ]; then
    if [ ${#SELECT[@]} -ne 0 ] || [ "${POUNCE_TEST_ALL_ALLOW_MISSING:-0}" != 1 ]; then
        {
            echo "test-all: ERROR: cannot run every ${SELECT[*]:+named }interpreter:"
            printf '  %s\n' "${MISSING[@]}"
            echo "Install it (pyenv install 3.1x), or run fewer on purpose:" \
                "name them (scripts/test-all.sh 3.12), POUNCE_SKIP_314=1," \
                "or POUNCE_TEST_ALL_ALLOW_MISSING=1 (DEVELOPERS.md)."
        } >&2
        exit 2
    fi
    echo "test-all: POUNCE_TEST_ALL_ALLOW_MISSING=1: running without them" >&2
fi
[ $LIST = 1 ] && exit 0

if want default || want "$default_minor"; then
    run default "default ($default_version)" make --no-print-directory test
fi

for minor in $(printf '%s\n' "${!newest[@]}" | sort -V); do
    v=${newest[$minor]}
    [ "$minor" = "$default_minor" ] && continue
    want "$minor" || continue
    run "py-$minor" "$v (.venv-$minor)" \
        make --no-print-directory test-py PYTHON="$root/versions/$v/bin/python" VENV=".venv-$minor"
done

if [ "${POUNCE_SKIP_314:-0}" != 1 ] && [ "$(id -u)" = 0 ] && want 3.14; then
    run chroot-3.14 "3.14 (sid chroot)" scripts/chroot-314.sh test
fi

# With POUNCE_TEST_ALL_ALLOW_MISSING=1: one line per interpreter not run.
for m in "${MISSING[@]}"; do
    SUMMARY+=("$(printf 'test-all: %-22s SKIP        %s' "${m%%:*}" "${m#*: }")")
done

echo
printf '%s\n' "${SUMMARY[@]}"
skipped=""
[ ${#MISSING[@]} -eq 0 ] || skipped=" (${#MISSING[@]} missing and not run: POUNCE_TEST_ALL_ALLOW_MISSING=1)"
if [ $FAILED -ne 0 ]; then
    echo "test-all: $FAILED of $RAN interpreters FAILED (logs in $LOGDIR/)$skipped"
    exit 1
fi
echo "test-all: all $RAN interpreters passed$skipped"
