#!/bin/sh
# meson-dir.sh DIR [ARG...]: make DIR a meson build directory of this tree,
# configured by `meson setup DIR ARG...` with the current $CC and meson.
#
# The C tests (build/ctest), the fuzz targets (build/fuzz/meson) and the
# benchmarks (build/bench) each have a build directory with its own flags.
# A directory set up with other arguments, another compiler or another meson
# is deleted and set up again.  One that matches is left alone: ninja
# reconfigures it by itself when meson.build or meson.options changes, and
# rebuilds only what changed.  Uses the first `meson` on PATH (under make,
# the venv's).
set -eu
dir=$1
shift
want="CC=${CC:-} meson=$(command -v meson) $*"
if [ -f "$dir/build.ninja" ] && [ "$(cat "$dir/.pounce-setup" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
rm -rf "$dir"
top=$(cd "$(dirname "$0")/.." && pwd)
meson setup "$dir" "$top" "$@"
printf '%s\n' "$want" >"$dir/.pounce-setup"
