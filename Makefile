# Moonwire. `make run` serves scripts/ and www/ on http://127.0.0.1:8080; `make test` installs
# what is missing, builds, and runs every test. Both start with Tests/tools/setup.sh, which
# installs the Debian packages and the Python test clients (.venv) only when they are missing.
SWIFT ?= swift
HOST ?= 127.0.0.1
PORT ?= 8080
SCRIPTS ?= scripts
WWW ?= www
# `make cert FORCE=1` replaces an existing certs/localhost.pem and certs/localhost-key.pem.
FORCE ?=

# Release builds skip Swift's runtime exclusivity checks (about 14% of the instructions of a
# request); debug builds, which the tests run, keep them.
RELEASE_FLAGS := -c release -Xswiftc -enforce-exclusivity=unchecked
SETUP := Tests/tools/setup.sh
DEBUG_BIN := .build/debug/moonwire
DIST_BUILD := .build/dist
RELEASE_BIN := .build/release/moonwire

.PHONY: all run test unit integration check bench cert setup build release dist clean distclean

all: build

setup:
	@$(SETUP)

build: setup
	$(SWIFT) build

release:
	@$(SETUP) --build
	$(SWIFT) build $(RELEASE_FLAGS)

## dist/moonwire-VERSION-linux-ARCH.tar.gz: a release binary with the Swift runtime linked in
## (it runs on Debian 12 without the toolchain), the example systemd unit, scripts/ and www/.
dist:
	@$(SETUP) --build
	$(SWIFT) build $(RELEASE_FLAGS) --static-swift-stdlib --scratch-path $(DIST_BUILD) --product moonwire
	@set -e; version=$$($(DIST_BUILD)/release/moonwire --version | awk '{print $$NF}'); \
	name=moonwire-$$version-linux-$$(uname -m); \
	rm -rf dist/$$name dist/$$name.tar.gz; mkdir -p dist/$$name; \
	strip -o dist/$$name/moonwire $(DIST_BUILD)/release/moonwire; \
	cp deploy/moonwire.service deploy/INSTALL.md dist/$$name/; \
	cp -R scripts www dist/$$name/; \
	tar -C dist -czf dist/$$name.tar.gz $$name; \
	echo "dist: dist/$$name.tar.gz ($$(du -h dist/$$name/moonwire | cut -f1) binary; see deploy/INSTALL.md)"

## Serve $(SCRIPTS) and $(WWW) on http://$(HOST):$(PORT) (release build; Ctrl-C stops it).
run: release
	$(RELEASE_BIN) serve --host $(HOST) --port $(PORT) --scripts $(SCRIPTS) --www $(WWW)

## Every test: Swift unit tests, then the integration tests over real sockets.
test: build
	$(SWIFT) test
	MOONWIRE_BIN=$(CURDIR)/$(DEBUG_BIN) .venv/bin/pytest -q -n 2 --dist loadgroup Tests/integration

unit: build
	$(SWIFT) test

integration: build
	MOONWIRE_BIN=$(CURDIR)/$(DEBUG_BIN) .venv/bin/pytest -q -n 2 --dist loadgroup Tests/integration

## Load every script under $(SCRIPTS) and report errors with file:line.
check: build
	$(DEBUG_BIN) check --scripts $(SCRIPTS)

## Moonwire against nginx + Lua on one core each (Tests/bench/); results in .build/bench/.
bench:
	@$(SETUP) --bench
	RELEASE_FLAGS="$(RELEASE_FLAGS)" Tests/bench/run.sh

## A self-signed development certificate for localhost (EC P-256, 365 days) in certs/, for
## moonwire.listen{tls=}; keeps an existing pair unless FORCE=1.
cert:
	@set -e; cert=certs/localhost.pem; key=certs/localhost-key.pem; \
	command -v openssl >/dev/null || { echo "cert: openssl not found; run $(SETUP)" >&2; exit 1; }; \
	if [ "$(FORCE)" != 1 ] && [ -e $$cert ] && [ -e $$key ]; then \
		echo "cert: keeping the existing $$cert and $$key (make cert FORCE=1 replaces them)"; \
	elif [ "$(FORCE)" != 1 ] && { [ -e $$cert ] || [ -e $$key ]; }; then \
		echo "cert: only one of $$cert and $$key exists; remove it or run make cert FORCE=1" >&2; exit 1; \
	else \
		mkdir -p certs; \
		umask 077; \
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
			-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
			-addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature" \
			-addext "extendedKeyUsage=serverAuth" -keyout $$key.tmp -out $$cert.tmp 2>certs/openssl.log || \
			{ cat certs/openssl.log >&2; rm -f certs/openssl.log $$key.tmp $$cert.tmp; exit 1; }; \
		rm -f certs/openssl.log; chmod 644 $$cert.tmp; mv $$key.tmp $$key; mv $$cert.tmp $$cert; \
		echo "cert: wrote $$cert and $$key (self-signed for localhost, 127.0.0.1 and ::1; 365 days)"; \
	fi; \
	echo "cert: in a script: moonwire.listen{port = 8443, tls = {cert = \"$$cert\", key = \"$$key\"}}"

clean:
	rm -rf .build dist

distclean: clean
	rm -rf .venv
