#!/bin/sh
# fresh-builddir.sh DIR: delete the meson build directory DIR if it was
# configured before meson.options (or meson.build) last changed.  meson
# rejects an option it did not know at the first setup ("Unknown option")
# when pip reconfigures the directory, so such a directory starts again.
set -eu
dir=$1
data=$dir/meson-private/coredata.dat
[ -f "$data" ] || exit 0
top=$(dirname "$0")/..
for f in "$top/meson.options" "$top/meson.build"; do
    if [ "$f" -nt "$data" ]; then
        echo "fresh-builddir: $f changed since $dir was configured; starting $dir again"
        rm -rf "$dir"
        exit 0
    fi
done
