#!/bin/sh
# Build every libFuzzer target fuzz/fuzz_<name>.c with clang + ASan + UBSan
# and run each for $1 seconds (default 60; `make fuzz FUZZ_SECONDS=n`).
#
# A target is linked against every csrc/core/*.c, so a new parser only needs
# its fuzz_<name>.c (and, ideally, seeds in fuzz/corpus/<name>/); this script
# finds it.  Seeds are copied into a scratch directory under build/fuzz/, so
# a run never writes into the repository; crash artifacts go there as well.
# Exit status: non-zero as soon as one target crashes, leaks or fails to
# build.  FUZZ_CFLAGS / FUZZ_LIBS carry the core's compression flags
# (the Makefile passes $(CORE_CFLAGS) / $(CORE_LIBS)); FUZZ_TARGETS limits
# the run to some names (e.g. "http1_parse").
set -eu
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$root/build/fuzz"
mkdir -p "$out"

CC=${FUZZ_CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1 ||
    ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){(void)d;(void)n;return 0;}' |
    "$CC" -x c -fsanitize=fuzzer -o "$out/.probe" - >/dev/null 2>&1; then
    # Debian's clang; the libFuzzer runtime lives in libclang-rt-14-dev.
    echo "installing clang and the libFuzzer runtime"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
fi
rm -f "$out/.probe"

targets=${FUZZ_TARGETS:-$(cd "$here" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')}
# Targets run FUZZ_JOBS at a time (default: the number of CPUs), each on
# its own core, so CI's wall time is about ceil(targets / jobs) x seconds.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

build() {
    # shellcheck disable=SC2086  # FUZZ_CFLAGS/FUZZ_LIBS are word lists
    "$CC" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        ${FUZZ_CFLAGS:-} -I"$root/csrc" -I"$root/csrc/core" \
        -o "$out/fuzz_$1" "$here/fuzz_$1.c" "$root"/csrc/core/*.c ${FUZZ_LIBS:-}
}

run() {
    t=$1
    # Scratch corpus: last run's findings plus the committed seeds.
    work="$out/corpus_$t"
    mkdir -p "$work"
    if [ -d "$here/corpus/$t" ]; then
        cp -n "$here/corpus/$t"/* "$work/" 2>/dev/null || true
    fi
    if [ "$t" = http1_parse ] && [ -x "$root/.venv/bin/python" ]; then
        # The smuggling corpus (tests/corpus/) seeds the head parser too,
        # read from its one copy: control byte 0, then the request.
        (cd "$root" && .venv/bin/python -c '
import sys
from tests.test_smuggling import load_corpus
for c in load_corpus():
    open(sys.argv[1] + "/corpus_" + c.name, "wb").write(b"\0" + c.data)
' "$work") || echo "(smuggling corpus not added: tests/test_smuggling.py did not load)"
    fi
    dict=""
    if [ -f "$here/$t.dict" ]; then
        dict="-dict=$here/$t.dict"
    else
        case $t in http1_*) dict="-dict=$here/http1.dict" ;; esac
    fi
    echo "== fuzz_$t for ${secs}s ($(ls "$work" | wc -l) inputs in $work)"
    # shellcheck disable=SC2086
    "$out/fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 $dict -artifact_prefix="$out/$t-" "$work" \
        >"$out/$t.log" 2>&1
}

for t in $targets; do
    build "$t"
done

status=0
set -- $targets
while [ $# -gt 0 ]; do
    pids=""
    names=""
    i=0
    while [ $# -gt 0 ] && [ $i -lt "$jobs" ]; do
        run "$1" &
        pids="$pids $!"
        names="$names $1"
        shift
        i=$((i + 1))
    done
    j=1
    for pid in $pids; do
        t=$(echo $names | cut -d' ' -f$j)
        j=$((j + 1))
        if ! wait "$pid"; then
            tail -n 60 "$out/$t.log"
            echo "fuzz_$t FAILED; artifacts in $out/$t-*" >&2
            status=1
        fi
    done
done

echo "== fuzz summary (${secs}s per target, $jobs at a time)"
for t in $targets; do
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t.log")
    echo "fuzz_$t: ${execs:-?} executions (${rate:-?}/s), corpus $(ls "$out/corpus_$t" | wc -l) inputs"
done
exit $status
