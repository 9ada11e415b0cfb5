# Pounce — build, serve, test.  Every target is idempotent and installs what
# is missing (Debian -dev packages via apt-get, Python packages into .venv).

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
WERROR ?= 1
CC ?= cc
export PATH := $(abspath $(VENV))/bin:$(PATH)

# Debian packages the build and the tests need.
# libssl-dev: OpenSSL 3, the TLS of the runtime (required); openssl: the CLI
# the TLS tests make their certificates with and speak s_client through.
# chromium, chromium-driver: the headless browser of tests/test_websocket_browser.py
# and the WebDriver that Selenium drives it through.
# nginx-light, haproxy, systemd (systemd-socket-activate), util-linux (unshare):
# the real proxies, socket activator and PID namespace the deployment tests
# (issue 12) start on 127.0.0.1 and stop again; no service is ever enabled.
# media-types: /etc/mime.types, the media types --static serves files with.
DEB_PACKAGES := pkg-config curl libssl-dev openssl zlib1g-dev libzstd-dev libbrotli-dev slowhttptest chromium chromium-driver \
  nginx-light haproxy systemd util-linux media-types

# openssl: the CLI that makes the test CA (tests/tls_certs.py) and checks it
# (tests/test_tls_ca.py), and makes the TLS benchmarks' certificate
# (bench/run.py); libnss3-tools (certutil): the NSS database through which
# Chromium trusts the test CA (tests/browser.py).
DEB_PACKAGES += openssl libnss3-tools

# libnghttp2-dev: HTTP/2's framing, HPACK and flow control (csrc/runtime/pn_h2.c);
# nghttp2-client: h2load and nghttp, the HTTP/2 load generator and client of
# the tests and bench/h2_bench.py.
DEB_PACKAGES += libnghttp2-dev nghttp2-client

# strace: tests/test_poll_economy.py counts the worker's epoll_wait calls per
# request with it.
DEB_PACKAGES += strace

# Compression libraries of the protocol core.  Optional for a plain `pip
# install` (meson -Dcodecs=auto), REQUIRED for everything built here: every
# meson build directory below gets -Dcodecs=required (the extension's through
# MESON_CODECS, also in asan and tsan, and so in test-all's venvs and the 3.14
# chroot, which run make; the C tests', fuzz targets' and benches' through
# their *_SETUP), after `codecs-check` has found all of them.  So a machine
# that lost one fails instead of skipping its tests.
CODEC_PKGS := zlib libzstd libbrotlienc libbrotlidec
MESON_CODECS := -Csetup-args=-Dcodecs=required
# The opt-out of tests/test_compression.py (a missing codec skips instead of
# failing) is for builds made outside make; make never passes it on.
unexport POUNCE_TEST_ALLOW_MISSING_CODECS
ALL_SRC := $(shell find csrc src -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' -o -name '*.inc' -o -name '*.py' -o -name '*.pyi' \)) meson.build meson.options pyproject.toml
# The C programs' meson build directories (the extension's is PYBUILD below).
# Each compiles the core + runtime library (pn_core in meson.build) with the
# flags its programs need, and links them against it; scripts/meson-dir.sh
# sets a directory up again when these arguments change.
#   build/ctest       C unit tests, ASan+UBSan, -O1 -g, asserts on
#   build/bench       benchmarks of the core, -O2
#   build/fuzz/meson  libFuzzer targets, clang (configured by fuzz/build.sh)
CTEST_DIR := build/ctest
CTEST_SETUP := -Dcodecs=required -Dwerror_strict=true -Db_sanitize=address,undefined \
  -Dc_args=-fno-sanitize-recover=all -Doptimization=1 -Ddebug=true -Db_ndebug=false
BENCH_DIR := build/bench
BENCH_SETUP := -Dcodecs=required -Dwerror_strict=true -Doptimization=2 -Ddebug=false
# meson build dir, one per venv so interpreters never share objects:
# .venv -> build/py, .venv-3.12 -> build/py-3.12.
PYBUILD ?= build/py$(subst .venv,,$(notdir $(VENV)))
STAMP := $(VENV)/.pounce-installed
DEPS_STAMP := $(VENV)/.deps-installed

.PHONY: build serve test test-c test-py deps debs codecs-check clean test-all chroot-314 bench bench-full bench-callgrind bench-tls bench-versions bench-compress bench-compression bench-ws bench-idle bench-c10k bench-h2 fuzz asan tsan test-tls

build: $(STAMP)

deps: $(DEPS_STAMP)

# The Debian packages (no venv involved, so `tsan` can use it too).
debs:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(DEPS_STAMP): requirements-test.txt requirements-build.txt | debs
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-build.txt -r requirements-test.txt
	touch $@

# Every codec library must be there (see CODEC_PKGS); not a file, so it runs
# on every make that needs the C flags.
codecs-check: | debs
	@missing=""; for p in $(CODEC_PKGS); do pkg-config --exists $$p || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "codecs-check: pkg-config does not find:$$missing" \
	  "(Debian: zlib1g-dev libzstd-dev libbrotli-dev). Every make build needs all three codecs." >&2; \
	  exit 1; fi

$(STAMP): $(DEPS_STAMP) $(ALL_SRC) | codecs-check
	scripts/fresh-builddir.sh $(PYBUILD)
	$(PIP) install -q --no-build-isolation --no-deps $(MESON_CODECS) \
	  -Csetup-args=-Dwerror_strict=$(if $(filter 1,$(WERROR)),true,false) \
	  -Cbuild-dir=$(PYBUILD) .
	touch $@

serve: build
	$(VENV)/bin/pounce examples.hello:app --host 127.0.0.1 --port 8000

test: build test-c test-py

# Every tests/c/test_*.c through `meson test` (built against pn_core, with
# ASan+UBSan).  A test file missing from meson.build's c_tests fails here
# rather than never running.  One test: meson test -C build/ctest test_buf
test-c: deps codecs-check
	scripts/meson-dir.sh $(CTEST_DIR) $(CTEST_SETUP)
	@listed=$$(meson test -C $(CTEST_DIR) --list 2>/dev/null | sed 's/.*://'); missing=""; \
	for f in tests/c/test_*.c; do t=$$(basename $$f .c); \
	  echo "$$listed" | grep -qx "$$t" || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then echo "test-c: not in meson.build's c_tests:$$missing" >&2; exit 1; fi
	meson test -C $(CTEST_DIR) --print-errorlogs

test-py: build
	$(VPY) -m pytest -q tests

# The HTTP path again over TLS (issue 14): POUNCE_TEST_TLS=1 (tests/server.py)
# gives every server the test CA's certificate (tests/tls_certs.py, made once
# per run) and makes the tests' clients speak https/wss and trust that CA.
# Tests about the bare TCP connection are marked tcp_only and skipped; -rs
# lists each with its reason.  tests/test_tls.py, the TLS suite proper, runs
# in `make test`.  About 4 minutes.
TLS_TEST_FILES := $(addprefix tests/test_,$(addsuffix .py,http_protocol asgi_http compression \
  timeouts smuggling http_limits hostile frameworks websocket websocket_browser access_log \
  request_id metrics proxy_headers shutdown workers shedding health compression_headers \
  static static_browser trailers http2_defences http2_answers))
test-tls: build
	POUNCE_TEST_TLS=1 $(VPY) -m pytest -q -rs -p no:cacheprovider $(TLS_TEST_FILES)

# libFuzzer targets fuzz/fuzz_*.c (clang, ASan+UBSan), each FUZZ_SECONDS;
# seeds are copied to build/fuzz/, never written back into the repository.
FUZZ_SECONDS ?= 60
fuzz: deps codecs-check
	sh fuzz/build.sh $(FUZZ_SECONDS)

# The whole pytest suite against an ASan+UBSan build of the extension, in
# its own venv (.venv-asan, meson dir build/py-asan; .venv is untouched).
# Python is not instrumented, so the runtimes are preloaded and
# PYTHONMALLOC=malloc lets ASan see every allocation.  detect_leaks=0:
# CPython itself does not free everything at exit.  Reports go to
# build/asan/ (servers are child processes); any report fails the target.
ASAN_VENV := .venv-asan
ASAN_DIR := build/asan
asan:
	$(MAKE) deps VENV=$(ASAN_VENV)
	scripts/fresh-builddir.sh build/py-asan
	$(ASAN_VENV)/bin/python -m pip install -q --no-build-isolation --no-deps $(MESON_CODECS) \
	  -Csetup-args=-Dwerror_strict=true -Csetup-args=-Db_sanitize=address,undefined \
	  -Csetup-args=-Db_lundef=false -Csetup-args=-Dbuildtype=debugoptimized \
	  -Csetup-args=-Dc_args=-fno-sanitize-recover=undefined \
	  -Cbuild-dir=build/py-asan .
	rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR) build/asan-bin
	@# curl (uninstrumented) hangs with the ASan runtime preloaded: the
	@# tests find this wrapper first on PATH, and it drops the preload.  The
	@# openssl CLI (tests/test_tls.py) gets the same, as a precaution.
	printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$$@"\n' "$$(command -v curl)" >build/asan-bin/curl
	printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$$@"\n' "$$(command -v openssl)" >build/asan-bin/openssl
	chmod +x build/asan-bin/curl build/asan-bin/openssl
	PATH="$(abspath build/asan-bin):$$PATH" \
	  LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  PYTHONMALLOC=malloc POUNCE_ASAN=1 \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:log_path=$(abspath $(ASAN_DIR))/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:log_path=$(abspath $(ASAN_DIR))/ubsan \
	  $(ASAN_VENV)/bin/python -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	if ls $(ASAN_DIR)/* >/dev/null 2>&1; then echo "sanitizer reports:"; \
	  head -n 80 $(ASAN_DIR)/*; exit 1; fi; \
	test $$rc -eq 0 && echo "asan: no sanitizer reports"

# Thread mode under ThreadSanitizer on this GIL build: a -fsanitize=thread
# build of the extension (.venv-tsan, build/py-tsan) runs the thread-mode
# worker/listener tests and tests/test_tsan_stress.py with libtsan preloaded.
# Fails on any report not suppressed by tests/tsan.supp (CPython internals
# only).  About 1 minute; reports in build/tsan/.  See scripts/tsan.sh.
tsan: codecs-check
	scripts/tsan.sh

# Every other CPython >= 3.11 from pyenv, each in .venv-<major.minor>, then
# CPython 3.14 in a Debian sid chroot.  One summary line per interpreter.
test-all:
	scripts/test-all.sh

# Create (or repair) the sid chroot only; `test-all` does this when needed.
chroot-314:
	scripts/chroot-314.sh ensure

# Pounce against uvicorn, granian, hypercorn and bengal-pounce on the CPython
# 3.14 of .chroot/sid-bench (docs/benchmarks.md).  The harness builds Pounce
# and installs the pinned peers itself.  `bench` is the quick profile (< 5
# min), `bench-full` every workload plus callgrind (~25 min).
# BENCH_ARGS e.g. "--python host --servers pounce,uvicorn --rounds 5".
BENCH_ARGS ?=
bench:
	$(PYTHON) bench/run.py --profile quick $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-compression bench-ws

bench-full:
	$(PYTHON) bench/run.py --profile full $(BENCH_ARGS)

bench-callgrind:
	$(PYTHON) bench/run.py --callgrind $(BENCH_ARGS)

# Plaintext on every CPython (issue 17): pounce vs uvicorn and granian on
# 3.11, 3.12, 3.13 (pyenv; Pounce in .venv-3.1x, peers in .venv-bench-3.1x,
# the host's own minor in .venv/.venv-bench) and 3.14 (the sid chroot), the
# quick profile's method; one table, bench/results/<stamp>-versions.md, with
# the pounce/uvicorn ratios and issue 17's 2.5x.  ~5 minutes once the venvs
# exist (~11 with --callgrind).  --render RESULT.json prints a stored one.
# E.g. VERSIONS_BENCH_ARGS="--versions 3.12,3.13 --rounds 5 --callgrind".
VERSIONS_BENCH_ARGS ?=
bench-versions:
	$(PYTHON) bench/versions.py $(VERSIONS_BENCH_ARGS)

# TLS (issue 14): plaintext over keep-alive TLS and a new TLS connection per
# request (handshake-bound), one worker, Pounce vs uvicorn and granian, same
# method as `bench`; server CPU µs per request and issue 14's targets.
# Pounce is listed as not run while it has no --ssl-certfile.  ~2 minutes.
bench-tls:
	$(PYTHON) bench/run.py --profile tls $(BENCH_ARGS)

# Static files (issue 16): Pounce --static vs nginx (nginx-light), granian's
# static mount and Starlette StaticFiles on uvicorn; 1 KiB and 100 KiB over
# keep-alive (wrk) and a 1 GiB transfer (curl), one worker pinned to CPU 1,
# the client on CPU 0; issue 16's targets.  ~5 minutes.
# E.g. STATIC_BENCH_ARGS="--rounds 5 --duration 5 --servers pounce,nginx".
STATIC_BENCH_ARGS ?=
.PHONY: bench-static
bench-static: build
	$(VPY) bench/static_bench.py $(STATIC_BENCH_ARGS)

# Idle connections (issue 17; issue 14's TLS case): the server RSS one idle
# connection costs, one worker, Pounce vs uvicorn, granian, hypercorn and nginx:
# 10,000 keep-alive HTTP/1.1 connections and 10,000 WebSocket sessions (one
# request or echo each, then idle), 1,000 TLS connections.  ~4 minutes.
# E.g. IDLE_BENCH_ARGS="--kind h2 -n 2000 --servers pounce,granian,hypercorn".
IDLE_BENCH_ARGS ?= --kind http,ws --tls --tls-n 1000
bench-idle: build
	$(VPY) bench/idle_rss.py $(IDLE_BENCH_ARGS)

# 10,000 concurrent connections under load (issue 17): one worker pinned
# to CPU 1, `wrk -t1 -c10000 --latency` on CPU 0 against the plaintext app,
# Pounce vs uvicorn and granian, each with its own defaults; req/s, p50/p99/max,
# socket errors, CPU µs per request, peak connections and the RSS curve
# (bench/c10k.py).  3 minutes per server; C10K_BENCH_ARGS="--quick" ~30 s.
C10K_BENCH_ARGS ?=
bench-c10k: build
	$(VPY) bench/c10k.py $(C10K_BENCH_ARGS)

# HTTP/2 (issue 15): Pounce vs hypercorn (h2c) and granian (--http 2),
# h2load on CPU 0, one worker pinned to CPU 1: multiplexed small responses
# (-c16 -m16, h2c), one 64 MiB streamed body (-c1), and the multiplexed run
# over TLS (ALPN h2); issue 15's target.  ~2 minutes.
# E.g. H2_BENCH_ARGS="--rounds 5 --duration 5 --workloads multiplex".
H2_BENCH_ARGS ?=
bench-h2: build
	$(VPY) bench/h2_bench.py $(H2_BENCH_ARGS)

# Server-level compression (issue 6: Pounce zstd/br/gzip vs uvicorn +
# Starlette GZipMiddleware, 64 KB JSON) and WebSocket (issue 7: echo and
# broadcast, Pounce vs uvicorn --ws websockets) on the host's CPython, server
# on CPU 1, clients on CPU 0; quick profiles, under 2 minutes each
# (docs/compression.md, docs/websocket.md).  E.g. WS_BENCH_ARGS="--profile full".
COMPRESSION_BENCH_ARGS ?=
WS_BENCH_ARGS ?=
bench-compression: build
	$(VPY) bench/compression_bench.py $(COMPRESSION_BENCH_ARGS)

bench-ws: build
	$(VPY) bench/ws_bench.py $(WS_BENCH_ARGS)

# C micro-benchmark of the protocol core's encoders: reused vs fresh contexts
# per 64 KiB JSON response, per codec (docs/compression.md).  ~15 s.
bench-compress: | deps codecs-check
	scripts/meson-dir.sh $(BENCH_DIR) $(BENCH_SETUP)
	meson compile -C $(BENCH_DIR) compress_micro
	$(BENCH_DIR)/compress_micro

clean:
	rm -rf build $(VENV)
