# Moonwire. `make run` serves scripts/ and www/ on http://127.0.0.1:8080; `make test` installs
# what is missing, builds, and runs every test. Both start with Tests/tools/setup.sh, which
# installs the Debian packages and the Python test clients (.venv) only when they are missing.
SWIFT ?= swift
HOST ?= 127.0.0.1
PORT ?= 8080
SCRIPTS ?= scripts
WWW ?= www

SETUP := Tests/tools/setup.sh
DEBUG_BIN := .build/debug/moonwire
RELEASE_BIN := .build/release/moonwire

.PHONY: all run test unit integration check bench setup build release clean distclean

all: build

setup:
	@$(SETUP)

build: setup
	$(SWIFT) build

release: setup
	$(SWIFT) build -c release

## Serve $(SCRIPTS) and $(WWW) on http://$(HOST):$(PORT) (release build; Ctrl-C stops it).
run: release
	$(RELEASE_BIN) serve --host $(HOST) --port $(PORT) --scripts $(SCRIPTS) --www $(WWW)

## Every test: Swift unit tests, then the integration tests over real sockets.
test: build
	$(SWIFT) test
	MOONWIRE_BIN=$(CURDIR)/$(DEBUG_BIN) .venv/bin/pytest -q Tests/integration

unit: build
	$(SWIFT) test

integration: build
	MOONWIRE_BIN=$(CURDIR)/$(DEBUG_BIN) .venv/bin/pytest -q Tests/integration

## Load every script under $(SCRIPTS) and report errors with file:line.
check: build
	$(DEBUG_BIN) check --scripts $(SCRIPTS)

## Moonwire against nginx + Lua on one core each (Tests/bench/); results in .build/bench/.
bench:
	@$(SETUP) --bench
	Tests/bench/run.sh

clean:
	rm -rf .build

distclean: clean
	rm -rf .venv
