#!/bin/sh
# Build every libFuzzer target fuzz/fuzz_<name>.c with clang + ASan + UBSan
# and run each for $1 seconds (default 60; `make fuzz FUZZ_SECONDS=n`).
#
# The targets are meson executables (meson.build's fuzz_targets, built when
# -Dfuzzing=true) linked against pn_core, the same static library of the
# core and the runtime that the extension and the C tests link.  Here it is
# compiled in its own build directory, build/fuzz/meson: clang, libFuzzer's
# coverage instrumentation, ASan+UBSan, every codec required.  A new parser
# needs its fuzz_<name>.c, its name in fuzz_targets (the build fails naming
# a file that is missing there) and, ideally, seeds in fuzz/corpus/<name>/.
# Seeds are copied into a scratch directory under build/fuzz/, so a run
# never writes into the repository; crash artifacts go there as well.
# Exit status: non-zero as soon as one target crashes, leaks or fails to
# build.  FUZZ_TARGETS limits the run to some names (e.g. "http1_parse");
# FUZZ_CC picks the compiler (default clang).  Needs meson and ninja on PATH
# (make puts the venv's there).
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

# The same build flags as the C unit tests' directory (Makefile CTEST_SETUP),
# plus clang and -Dfuzzing=true.
bdir="$out/meson"
CC=$CC "$root/scripts/meson-dir.sh" "$bdir" -Dfuzzing=true -Dcodecs=required \
    -Dwerror_strict=true -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all \
    -Doptimization=1 -Ddebug=true -Db_ndebug=false

build_all() {
    listed=$(meson introspect --targets "$bdir" |
        python3 -c 'import json, sys; print("\n".join(t["name"] for t in json.load(sys.stdin)))')
    names=""
    for t in $targets; do
        if ! echo "$listed" | grep -qx "fuzz_$t"; then
            echo "fuzz/fuzz_$t.c is not in meson.build's fuzz_targets" >&2
            return 1
        fi
        names="$names fuzz_$t"
    done
    # shellcheck disable=SC2086  # a word list
    meson compile -C "$bdir" $names
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
        case $t in
        http1_*) dict="-dict=$here/http1.dict" ;;
        h2_*) dict="-dict=$here/h2.dict" ;;
        esac
    fi
    echo "== fuzz_$t for ${secs}s ($(ls "$work" | wc -l) inputs in $work)"
    # shellcheck disable=SC2086
    "$bdir/fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 $dict -artifact_prefix="$out/$t-" "$work" \
        >"$out/$t.log" 2>&1
}

build_all

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
