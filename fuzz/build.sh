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
summary=""
for t in $targets; do
    # shellcheck disable=SC2086  # FUZZ_CFLAGS/FUZZ_LIBS are word lists
    "$CC" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        ${FUZZ_CFLAGS:-} -I"$root/csrc" -I"$root/csrc/core" \
        -o "$out/fuzz_$t" "$here/fuzz_$t.c" "$root"/csrc/core/*.c ${FUZZ_LIBS:-}
    # Scratch corpus: last run's findings plus the committed seeds.
    work="$out/corpus_$t"
    mkdir -p "$work"
    if [ -d "$here/corpus/$t" ]; then
        cp -n "$here/corpus/$t"/* "$work/" 2>/dev/null || true
    fi
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    [ -z "$dict" ] && [ -f "$here/http1.dict" ] && case $t in http1_*) dict="-dict=$here/http1.dict" ;; esac
    echo "== fuzz_$t for ${secs}s ($(ls "$work" | wc -l) inputs in $work)"
    log="$out/$t.log"
    if ! "$out/fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 $dict -artifact_prefix="$out/$t-" "$work" \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz_$t FAILED; artifacts in $out/$t-*" >&2
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    grep -E '^(stat::|Done )' "$log" || true
    summary="$summary
fuzz_$t: ${execs:-?} executions in ${secs}s (${rate:-?}/s), corpus $(ls "$work" | wc -l) inputs"
done
echo "== fuzz summary$summary"
