#!/usr/bin/env bash
# Instructions per request of the Lua hello, counted by valgrind's callgrind: repeatable where
# req/s is not (the same binary and input give the same count however busy the machine is).
# Serves the hello on one loop under callgrind, sends N keep-alive requests on one HTTP/1.1
# connection with h2load, twice (SMALL and LARGE), and prints
# (Ir(LARGE) - Ir(SMALL)) / (LARGE - SMALL): startup and shutdown cancel out. User space only;
# the kernel's share is not counted. Loopback only; takes about a minute.
#
#   Tests/bench/instructions.sh [BINARY]      (default .build/release/moonwire)
#
# Environment: SMALL (1000), LARGE (6000), PRELUDE (Lua run before the handler is defined, e.g.
# 'moonwire.options{limits = {instructions = 0}}' to count without the CPU budget).
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=${1:-.build/release/moonwire}
small=${SMALL:-1000}
large=${LARGE:-6000}
for tool in valgrind h2load strip python3; do
    command -v "$tool" >/dev/null || { echo "instructions: $tool not found; run Tests/tools/setup.sh --bench" >&2; exit 1; }
done
[[ -x $binary ]] || { echo "instructions: $binary not found (make release)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/moonwire-instructions.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/scripts" "$work/www"
printf '%s\nfunction OnCommandGet(req, res) res:send("hello") end\n' "${PRELUDE:-}" > "$work/scripts/main.lua"
# callgrind cannot read the DWARF Swift 6 writes; the symbol table is enough to count.
strip --strip-debug -o "$work/moonwire" "$binary"

count() {
    local requests=$1 port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$requests" \
        "$work/moonwire" serve --port "$port" --threads 1 --workers 0 \
        --scripts "$work/scripts" --www "$work/www" > "$work/log.$requests" 2>&1 &
    local server=$!
    for _ in $(seq 1 300); do grep -q "listening on" "$work/log.$requests" && break; sleep 0.1; done
    h2load --h1 -n "$requests" -c 1 "http://127.0.0.1:$port/" > "$work/h2load.$requests" 2>&1
    kill -TERM "$server"
    wait "$server" || true
    grep -q "$requests succeeded" "$work/h2load.$requests" || { cat "$work/h2load.$requests" >&2; exit 1; }
    sed -n 's/^summary: //p' "$work/callgrind.$requests"
}

first=$(count "$small")
second=$(count "$large")
echo "instructions per Lua hello request: $(((second - first) / (large - small)))" \
     "(Ir $first for $small requests, $second for $large; $binary)"
