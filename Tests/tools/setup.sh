#!/usr/bin/env bash
# Installs what building, running and testing Moonwire need on a Debian 12 machine that has
# only the Swift toolchain: the Debian packages (when missing) and the Python test clients in
# .venv (when Tests/integration/requirements.txt changed). Idempotent; a second run takes
# about a second because presence is checked with dpkg-query, not apt.
#
#   Tests/tools/setup.sh           build, run and test
#   Tests/tools/setup.sh --build   build and run only (make run, make release, make dist): no
#                                  test clients, no .venv
#   Tests/tools/setup.sh --bench   also the benchmark peer (nginx with its Lua module), valgrind,
#                                  a C compiler for the WebSocket load client (wsload), and
#                                  nghttpd (a yardstick of instructions.sh HTTP2=nghttpd)
set -euo pipefail
cd "$(dirname "$0")/../.."

bench=false
tests=true
for argument in "$@"; do
    case "$argument" in
        --bench) bench=true ;;
        --build) tests=false ;;
        *) echo "usage: $0 [--build | --bench]" >&2; exit 2 ;;
    esac
done
$bench && ! $tests && { echo "usage: $0 [--build | --bench]" >&2; exit 2; }

say() { echo "setup: $*" >&2; }
die() { echo "setup: error: $*" >&2; exit 1; }

# Root runs apt-get itself; anyone else needs sudo.
as_root=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root and sudo is not installed; run this as root"
    as_root=(sudo)
fi

installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# Building and serving: Lua, hiredis and nghttp2 (linked statically), PCRE2, zlib, OpenSSL's
# tool for `make cert`.
packages=(liblua5.4-dev libhiredis-dev libnghttp2-dev libpcre2-dev zlib1g-dev libssl-dev openssl pkg-config)
if $tests; then
    # chromium and chromium-driver: the browser tests of server-sent events (test_sse.py) and of
    # the live dashboard (test_dashboard.py). haproxy: the balancer in front of the cluster's
    # nodes (test_cluster_presence.py).
    packages+=(curl wrk nghttp2-client python3-venv redis-server haproxy chromium chromium-driver)
fi
# nginx: an upstream of the proxy tests (test_proxy.py), and the benchmark's peer. Debian 12's
# nginx-light is a transitional package over nginx; the Lua module (OpenResty's
# lua-nginx-module on LuaJIT) loads into either.
if ($tests || $bench) && ! installed nginx-light && ! installed nginx; then packages+=(nginx); fi
if $bench; then
    packages+=(libnginx-mod-http-lua valgrind gcc libc6-dev nghttp2-server)
fi

missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done

if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp)
    if ! "${as_root[@]}" apt-get update -qq >"$log" 2>&1 ||
       ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get failed (output above)"
    fi
    rm -f "$log"
    # On machines whose init runs package services, installing nginx starts a system nginx
    # on port 80; the benchmark runs its own instances, so stop the one we just caused.
    if [[ " ${missing[*]} " == *" nginx "* && -s /run/nginx.pid ]]; then
        "${as_root[@]}" nginx -s quit 2>/dev/null || true
    fi
fi

command -v swift >/dev/null ||
    say "warning: swift is not on PATH; building needs the Swift toolchain (6.2 or newer)"

$tests || exit 0

# Debian's own python3 has the venv module but no ensurepip without python3-venv; whichever
# python3 is first on PATH must be able to make a virtualenv with pip.
python3 -c 'import venv, ensurepip' 2>/dev/null ||
    die "$(command -v python3) cannot create virtualenvs (no venv/ensurepip module)"

requirements=Tests/integration/requirements.txt
stamp=.venv/.requirements
if [[ -d .venv ]] && ! .venv/bin/python -c '' 2>/dev/null; then
    say "recreating .venv (its python no longer runs)"
    rm -rf .venv
fi
if [[ ! -x .venv/bin/python ]]; then
    say "creating .venv"
    python3 -m venv .venv || die "python3 -m venv .venv failed"
    rm -f "$stamp"
fi
if [[ -f $requirements ]] && ! cmp -s "$requirements" "$stamp"; then
    say "installing the Python test clients into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements" ||
        die "pip install -r $requirements failed"
    cp "$requirements" "$stamp"
fi
