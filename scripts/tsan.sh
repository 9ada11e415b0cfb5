#!/usr/bin/env bash
# `make tsan`: thread mode under ThreadSanitizer, on this GIL build of CPython.
#
# No free-threaded CPython can be had here, so this is how thread mode is
# checked for races: with several thread workers on a GIL build the C
# runtime releases the GIL around epoll waits and socket I/O
# (pn_worker_hooks.release), so the workers' C code really runs in parallel.
#
#   1. build the extension with -fsanitize=thread into its own venv
#      (.venv-tsan, meson dir build/py-tsan; .venv is untouched);
#   2. check that this script can see a report at all: a tiny racy C program
#      must produce one in the log directory, counted by the same code;
#   3. run the thread-mode tests of test_workers.py and test_listeners.py and
#      the thread stress test (tests/test_tsan_stress.py) and the thread-mode
#      TLS tests (tests/test_tls.py: one SSL_CTX, four workers), then the
#      stress test again over TLS (POUNCE_TEST_TLS=1), with libtsan
#      preloaded (CPython itself is not instrumented; the extension is, and
#      its undefined __tsan_* symbols make sure no server runs without the
#      runtime), suppressions from tests/tsan.supp;
#   4. fail if any report is left, and print how many reports each
#      suppression swallowed.
#
# Reports go to build/tsan/tsan.<pid> (the servers are child processes of
# pytest).  Extra arguments are passed to pytest, e.g. `scripts/tsan.sh -x`.
# TSAN_K overrides the -k expression (and skips the TLS stress run);
# POUNCE_STRESS_SECONDS the length of the stress run (default 20 s), and
# POUNCE_TLS_STRESS_SECONDS that of the TLS one (default 10 s).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-tsan
LOGDIR=build/tsan
CC=${CC:-cc}
LIBTSAN=$("$CC" -print-file-name=libtsan.so)
if [ ! -e "$LIBTSAN" ]; then
    echo "tsan: $CC has no libtsan.so (Debian: apt-get install libtsan2)" >&2
    exit 2
fi

make --no-print-directory deps VENV=$VENV
# A build dir configured before meson.options last changed cannot take the
# new options on reconfigure: start it again.
scripts/fresh-builddir.sh build/py-tsan
# debugoptimized: -O2 -g, so reports carry file:line without -O0's slowness.
$VENV/bin/python -m pip install -q --no-build-isolation --no-deps \
    -Csetup-args=-Dcodecs=required \
    -Csetup-args=-Dwerror_strict=true -Csetup-args=-Db_sanitize=thread \
    -Csetup-args=-Db_lundef=false -Csetup-args=-Dbuildtype=debugoptimized \
    -Cbuild-dir=build/py-tsan .
so=$(ls $VENV/lib/python3*/site-packages/pounce/_pounce*.so)
if ! nm -D "$so" | grep ' U __tsan_init$' >/dev/null; then
    echo "tsan: $so is not instrumented" >&2
    exit 1
fi

# halt_on_error=0: collect every report of a run, not just the first.
# exitcode=66: a process that reported exits 66, so its test fails too.
# history_size=4: enough history to show the stack of the earlier access.
# second_deadlock_stack=1: full stacks for lock-order reports.
# print_suppressions=1: each process lists the suppressions it matched, which
# is how the summary below counts reports before suppression.
opts() {
    echo "suppressions=$PWD/tests/tsan.supp:halt_on_error=0:exitcode=66:history_size=4"\
":second_deadlock_stack=1:print_suppressions=1:log_path=$1"
}

# Count what is in a log directory: reports left, suppressions matched.
count_reports() {
    cat "$1"/tsan.* 2>/dev/null | grep -cE '^(WARNING|ERROR|FATAL): ThreadSanitizer' || true
}

# -- 2. the pipeline can see a race -------------------------------------------------
CANARY=build/tsan-canary
rm -rf "$CANARY" && mkdir -p "$CANARY"
cat >"$CANARY/race.c" <<'EOF'
/* Two threads increment one int without synchronisation: a textbook race
 * that TSan must report, or the check below cannot be trusted. */
#include <pthread.h>
static int shared;
static void *bump(void *arg) { (void)arg; shared++; return NULL; }
int main(void)
{
    pthread_t a, b;
    pthread_create(&a, NULL, bump, NULL);
    pthread_create(&b, NULL, bump, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return shared == 2 ? 0 : 1;
}
EOF
"$CC" -std=c11 -g -O1 -fsanitize=thread -pthread -o "$CANARY/race" "$CANARY/race.c"
TSAN_OPTIONS="$(opts "$PWD/$CANARY/tsan")" "$CANARY/race" || true
if [ "$(count_reports "$CANARY")" -lt 1 ]; then
    echo "tsan: the canary race was not reported; the check below would prove nothing" >&2
    exit 1
fi
echo "tsan: canary race reported as expected"

# -- 3. thread mode under TSan ------------------------------------------------------
rm -rf "$LOGDIR" && mkdir -p "$LOGDIR"
status=0
LD_PRELOAD="$LIBTSAN" TSAN_OPTIONS="$(opts "$PWD/$LOGDIR/tsan")" POUNCE_TSAN=1 \
    $VENV/bin/python -m pytest -q -p no:cacheprovider \
    tests/test_workers.py tests/test_listeners.py tests/test_balance.py tests/test_tsan_stress.py \
    tests/test_tls.py \
    -k "${TSAN_K:-thread}" "$@" || status=$?
# The same stress mix over TLS (POUNCE_TEST_TLS=1: every connection does a
# handshake and every byte goes through SSL_read/SSL_write, four workers
# sharing one SSL_CTX), shorter: POUNCE_TLS_STRESS_SECONDS (default 10 s per
# variant, about 40 s in all).  Skipped when TSAN_K narrows the selection.
if [ -z "${TSAN_K:-}" ]; then
    LD_PRELOAD="$LIBTSAN" TSAN_OPTIONS="$(opts "$PWD/$LOGDIR/tsan")" POUNCE_TSAN=1 \
        POUNCE_TEST_TLS=1 POUNCE_STRESS_SECONDS="${POUNCE_TLS_STRESS_SECONDS:-10}" \
        $VENV/bin/python -m pytest -q -p no:cacheprovider tests/test_tsan_stress.py "$@" \
        || status=$?
fi

# -- 4. verdict ---------------------------------------------------------------------
left=$(count_reports "$LOGDIR")
# "ThreadSanitizer: Matched 3 suppressions (pid=...)" is followed by lines
# "  <count> race:<pattern>"; sum them per pattern over every process.
matched=$(cat "$LOGDIR"/tsan.* 2>/dev/null |
    awk '/ThreadSanitizer: Matched/ {m=1; next} m && /^ *[0-9]+ [a-z_]+:/ {n[$2]+=$1; next} {m=0}
         END {for (p in n) printf "  %6d %s\n", n[p], p}' | sort -k2 || true)
nsupp=$(printf '%s\n' "$matched" | awk '{s+=$1} END {print s+0}')
echo "tsan: $((left + nsupp)) reports before suppression, $left after (logs in $LOGDIR/)"
if [ -n "$matched" ]; then
    echo "tsan: suppressed (count, pattern from tests/tsan.supp):"
    printf '%s\n' "$matched"
fi
if [ "$left" -gt 0 ]; then
    echo "tsan: unsuppressed reports (first 200 lines):"
    grep -l -E '^(WARNING|ERROR|FATAL): ThreadSanitizer' "$LOGDIR"/tsan.* |
        xargs cat | grep -E -v '^ThreadSanitizer: Matched|^ +[0-9]+ (race|thread|mutex|signal|deadlock|called_from_lib):' |
        head -n 200
    grep -h '^SUMMARY: ThreadSanitizer' "$LOGDIR"/tsan.* | sort | uniq -c | sort -rn
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "tsan: FAILED (pytest or sanitizer reports)" >&2
fi
exit $status
