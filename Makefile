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
DEB_PACKAGES := pkg-config curl
CORE_SRC := $(wildcard csrc/core/*.c)
ALL_SRC := $(shell find csrc src -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' -o -name '*.py' \)) meson.build meson.options pyproject.toml
C_TESTS := $(patsubst tests/c/%.c,build/ctest/%,$(wildcard tests/c/test_*.c))
STAMP := $(VENV)/.pounce-installed
DEPS_STAMP := $(VENV)/.deps-installed

.PHONY: build serve test test-c test-py deps clean

build: $(STAMP)

deps: $(DEPS_STAMP)

$(DEPS_STAMP): requirements-test.txt requirements-build.txt
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-build.txt -r requirements-test.txt
	touch $@

$(STAMP): $(DEPS_STAMP) $(ALL_SRC)
	$(PIP) install -q --no-build-isolation --no-deps \
	  -Csetup-args=-Dwerror_strict=$(if $(filter 1,$(WERROR)),true,false) \
	  -Cbuild-dir=build/py .
	touch $@

serve: build
	$(VENV)/bin/pounce examples.hello:app --host 127.0.0.1 --port 8000

test: build test-c test-py

build/ctest/%: tests/c/%.c $(CORE_SRC) $(wildcard csrc/core/*.h) tests/c/pn_test.h
	@mkdir -p build/ctest
	$(CC) -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined \
	  -fno-sanitize-recover=all -Icsrc -Icsrc/core -o $@ $< $(CORE_SRC)

test-c: $(C_TESTS)
	@set -e; for t in $(C_TESTS); do echo "== $$t"; ./$$t; done

test-py: build
	$(VPY) -m pytest -q tests

clean:
	rm -rf build $(VENV)
