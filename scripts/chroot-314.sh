#!/usr/bin/env bash
# CPython 3.14 test bed: a Debian sid chroot (sid ships python3.14 as a
# distribution package, so no interpreter is built from source).
#
#   scripts/chroot-314.sh ensure        create .chroot/sid if it is missing or half-made
#   scripts/chroot-314.sh test          ensure, copy the tree in, build + C tests + pytest on 3.14
#   scripts/chroot-314.sh shell         ensure, then an interactive shell inside (repo at /work/src)
#   scripts/chroot-314.sh run CMD...    ensure, then run CMD inside (cwd /work/src, tree copied fresh)
#   scripts/chroot-314.sh hold CMD...   ensure, mount, copy the tree, then run CMD on the *host* while
#                                       the chroot stays usable (bench/run.py starts servers in it with
#                                       `chroot`; POUNCE_CHROOT_ROOT and POUNCE_CHROOT_SRC are exported)
#   scripts/chroot-314.sh destroy       unmount everything and delete the chroot
#
# Environment: POUNCE_CHROOT (default <repo>/.chroot/sid), DEBIAN_MIRROR
# (default: the first http(s) mirror in /etc/apt/sources.list*, else deb.debian.org).
#
# The tree is *copied* into the chroot (git-tracked plus untracked, non-ignored
# files), not bind-mounted: a bind mount inside a directory this script may
# `rm -rf` is one bug away from deleting the work tree.  The venv
# (/opt/venv-3.14) and the meson build dir live outside the copy so that they
# survive between runs.  Must run as root (debootstrap, chroot, mount).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${POUNCE_CHROOT:-$REPO/.chroot/sid}
# An absolute, normalised path: the safety checks below compare prefixes.
mkdir -p "$(dirname "$ROOT")"
ROOT=$(cd "$(dirname "$ROOT")" && pwd)/$(basename "$ROOT")
MARKER=$ROOT/.pounce-chroot-complete
# Bump when the package list changes so old chroots are rebuilt.
CHROOT_VERSION=2
PACKAGES=python3.14,python3.14-venv,python3.14-dev,gcc,libc6-dev,pkg-config,curl,ca-certificates,make,libssl-dev,openssl,zlib1g-dev,libzstd-dev,libbrotli-dev
GUEST_SRC=/work/src
GUEST_VENV=/opt/venv-3.14
GUEST_PYBUILD=/work/build-py-3.14

log() { printf 'chroot-314: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mount need it)"

pick_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    # Both the one-line and the deb822 formats name the main archive as
    # .../debian (security is .../debian-security, which has no sid).
    local m
    m=$(grep -hoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* \
        2>/dev/null | head -n1 | tr -d ' ' || true)
    echo "${m:-http://deb.debian.org/debian}"
}

# Every mount point at or below $ROOT, deepest first.
mounts_under_root() {
    awk -v r="$ROOT" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

unmount_all() {
    local m
    for m in $(mounts_under_root); do
        umount -R "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

destroy() {
    unmount_all
    # Never recurse into a still-mounted /dev or /proc of the host.
    if [ -n "$(mounts_under_root)" ]; then
        die "refusing to delete $ROOT: still mounted: $(mounts_under_root | tr '\n' ' ')"
    fi
    case "$ROOT" in
    / | "" | "$REPO") die "refusing to delete '$ROOT'" ;;
    esac
    rm -rf --one-file-system "$ROOT"
}

# A chroot is complete only when the marker written after the last step
# exists, names the current package-list version, and python3.14 runs.
is_complete() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$CHROOT_VERSION" ] &&
        [ -x "$ROOT/usr/bin/python3.14" ] && chroot "$ROOT" /usr/bin/python3.14 -c 'pass' 2>/dev/null
}

create() {
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
    fi
    local mirror
    mirror=$(pick_mirror)
    log "creating $ROOT from $mirror (about a minute)"
    destroy
    mkdir -p "$ROOT"
    if ! debootstrap --variant=minbase --include="$PACKAGES" sid "$ROOT" "$mirror" \
        >"$ROOT.debootstrap.log" 2>&1; then
        tail -n 30 "$ROOT.debootstrap.log" >&2 || true
        # Leave no half-made tree behind to confuse the next run.
        destroy
        die "debootstrap failed (log: $ROOT.debootstrap.log)"
    fi
    sync_host_config
    # The host's pip settings (CA bundle path, timeouts) apply inside too;
    # local wheel directories of the host do not exist there, so are dropped.
    if [ -f /etc/pip.conf ]; then
        grep -v -E '^(find-links|extra-index-url)' /etc/pip.conf >"$ROOT/etc/pip.conf" || true
    fi
    chroot "$ROOT" /usr/bin/python3.14 -VV >&2 || die "python3.14 does not run in the new chroot"
    echo "$CHROOT_VERSION" >"$MARKER"
    log "chroot ready"
}

# Name resolution and locally added CAs (a TLS-intercepting proxy, say) must
# match the host's or pip inside cannot reach the index.  Re-synced on every
# run because the host's may change after the chroot was made.
sync_host_config() {
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # The package mirror this machine reaches may serve sid's index some days
    # after its Valid-Until; apt would then refuse every install.
    echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99pounce-no-valid-until"
    local src=/usr/local/share/ca-certificates dst=$ROOT/usr/local/share/ca-certificates
    [ -d "$src" ] || return 0
    if ! diff -rq "$src" "$dst" >/dev/null 2>&1; then
        rm -rf "$dst"
        cp -r "$src" "$dst"
        chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the chroot"
    fi
}

ensure() {
    if is_complete; then
        return
    fi
    [ -e "$ROOT" ] && log "$ROOT is missing, incomplete or outdated: recreating"
    create
}

mount_guest() {
    # proc for ASan/UBSan and Python; /dev for /dev/null, urandom and shm.
    # rslave so nothing mounted below the chroot's /dev propagates to the host.
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    if ! mountpoint -q "$ROOT/dev"; then
        mount --rbind /dev "$ROOT/dev"
        mount --make-rslave "$ROOT/dev"
    fi
}

copy_tree() {
    rm -rf "${ROOT:?}$GUEST_SRC"
    mkdir -p "$ROOT$GUEST_SRC"
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # tar keeps the mtimes, so meson rebuilds only what changed.
        (cd "$REPO" && git ls-files -z -co --exclude-standard |
            xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
            tar --null -T - -cf -) | tar -C "$ROOT$GUEST_SRC" -xf -
    else
        tar -C "$REPO" --exclude='./.venv*' --exclude=./build --exclude=./.chroot --exclude=./.git \
            -cf - . | tar -C "$ROOT$GUEST_SRC" -xf -
    fi
}

# Replaces the calling (sub)shell with "$@" run inside the chroot, the tree at
# $GUEST_SRC as cwd; call it in a subshell.
guest() {
    exec chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PYTHONUNBUFFERED=1 \
        TERM="${TERM:-dumb}" CI="${CI:-}" \
        /bin/sh -c 'cd "$0" && exec "$@"' "$GUEST_SRC" "$@"
}

cmd=${1:-test}
[ $# -gt 0 ] && shift

# One user of the chroot at a time: two concurrent runs would unmount each
# other's /proc or recreate the tree under a running build.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9

case "$cmd" in
ensure)
    ensure
    ;;
destroy)
    destroy
    log "removed $ROOT"
    ;;
test | run | shell | hold)
    ensure
    # bash runs a trap only after the foreground child returns, so the guest
    # command runs in the background and we wait for it: a signal then stops
    # the guest and unmounts at once.
    child=
    trap unmount_all EXIT
    trap '[ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null; wait; exit 130' INT TERM
    mount_guest
    sync_host_config
    copy_tree
    case "$cmd" in
    # The same Makefile rules as on the host, parameterised by PYTHON and
    # VENV; the C tests are rebuilt with sid's gcc.
    # The Makefile's DEB_PACKAGES are installed in the chroot as on the host
    # (chromium, chromium-driver and slowhttptest included, about 40 s), so
    # no test skips on 3.14 for want of a package.
    test) set -- make test PYTHON=python3.14 VENV="$GUEST_VENV" PYBUILD="$GUEST_PYBUILD" ;;
    shell)
        # Interactive: needs the terminal in the foreground.
        (guest /bin/bash)
        exit
        ;;
    esac
    # Own process group (job control on), so a signal reaches all of it.
    set -m
    if [ "$cmd" = hold ]; then
        # On the host (wrk, taskset and valgrind stay host tools); the
        # command enters the chroot itself for each server it starts.
        export POUNCE_CHROOT_ROOT=$ROOT POUNCE_CHROOT_SRC=$GUEST_SRC
        ("$@") &
    else
        (guest "$@") &
    fi
    child=$!
    set +m
    rc=0
    wait "$child" || rc=$?
    exit "$rc"
    ;;
*)
    die "unknown command '$cmd' (ensure|test|run|shell|hold|destroy)"
    ;;
esac
