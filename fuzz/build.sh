#!/bin/sh
# Build the HTTP/1 fuzz targets with libFuzzer + ASan + UBSan and run each
# for $1 seconds (default 60).  Seeds come from fuzz/corpus/<target>; the
# growing corpus and any crash artifacts go to build/fuzz/ (not committed).
set -eu
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$root/build/fuzz"
mkdir -p "$out"
CC=${FUZZ_CC:-clang}
for t in http1_parse http1_body; do
    "$CC" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -I"$root/csrc" -I"$root/csrc/core" \
        -o "$out/fuzz_$t" "$here/fuzz_$t.c" "$root/csrc/core/pn_http1_parse.c"
    mkdir -p "$out/corpus_$t"
    echo "== fuzz_$t for ${secs}s"
    "$out/fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -dict="$here/http1.dict" -artifact_prefix="$out/$t-" \
        "$out/corpus_$t" "$here/corpus/$t"
done
