#!/usr/bin/env bash
# Instructions per request of the Lua hello (or of the cases below), counted by valgrind's
# callgrind: repeatable where req/s is not (the same binary and input give the same count however busy the machine is).
# Serves the hello on one loop under callgrind, sends N keep-alive requests on one HTTP/1.1
# connection with h2load (or N WebSocket messages, one in flight, with WEBSOCKET=1), twice
# (SMALL and LARGE), and prints
# (Ir(LARGE) - Ir(SMALL)) / (LARGE - SMALL): startup and shutdown cancel out. User space only;
# the kernel's share is not counted. Loopback only; takes about a minute.
#
#   Tests/bench/instructions.sh [BINARY]      (default .build/release/moonwire)
#
# Environment: SMALL (1000), LARGE (6000), CLIENTS (1: HTTP/1.1 connections the requests are
# spread over, as make bench's 64 are), PRELUDE (Lua run before the handler is defined, e.g.
# 'moonwire.options{limits = {instructions = 0}}' to count without the CPU budget), PROXY=1 (the
# handler makes one moonwire.http.get per request to an nginx answering "hello", started here
# outside valgrind: the count is Moonwire's side of a proxied request; PROXY=route forwards
# through a moonwire.proxy route instead, with no Lua per request), WEBSOCKET=1 (a Lua OnMessage
# echoing 20-byte text messages: the count is per echoed message), HTTP2=1 (the hello over
# HTTP/2, cleartext by prior knowledge, 16 streams in flight on one connection; HTTP2=streams or
# HTTP2=frames counts Tests/bench/peers/nio-yardsticks instead of Moonwire: swift-nio-http2 answering
# "hello" with a child channel per stream, or with the frames handled at the connection;
# HTTP2=nghttpd counts nghttp2's own server, libnghttp2 in C, serving a file "hello"), STATIC=1
# (GET of make bench's static4k.html, 3,968 bytes, from --www, kept in memory after the first
# request; no Lua handler: the static path alone; STATIC=lua adds an OnCommandGet that returns
# without answering, as make bench's static-4k case has, so Lua runs first and the file
# answers), HTTP1=floor (Tests/bench/peers/nio-yardsticks' NIOH1Floor instead of Moonwire: every
# HTTP/1.1 head answered with constant bytes on SwiftNIO, nothing parsed, what NIO alone costs),
# HTTP1=nginx (nginx's worker, master_process off, with the Lua hello of make bench; with STATIC
# set, its static4k.html location; with PROXY=1 or PROXY=route, make bench's proxy_pass of the
# proxy or proxy-pass case: nginx's own count for the same request), KEEP=folder (keep
# both runs' callgrind outputs there, for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/../.."

binary=${1:-.build/release/moonwire}
small=${SMALL:-1000}
large=${LARGE:-6000}
proxy=${PROXY:-}
http2=${HTTP2:-}
http1=${HTTP1:-}
tools=(valgrind h2load strip python3)
[[ -n $proxy ]] && tools+=(nginx curl)
[[ $http2 == nghttpd ]] && tools+=(nghttpd)
[[ $http1 == nginx ]] && tools+=(nginx)
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "instructions: $tool not found; run Tests/tools/setup.sh --bench" >&2; exit 1; }
done
if [[ $http2 == streams || $http2 == frames || $http1 == floor ]]; then
    product=$([[ $http1 == floor ]] && echo NIOH1Floor || echo NIOH2Hello)
    binary=Tests/bench/peers/nio-yardsticks/.build/release/$product
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --package-path Tests/bench/peers/nio-yardsticks \
        --product "$product" >&2
fi
[[ $http2 == nghttpd ]] && binary=$(command -v nghttpd)
[[ $http1 == nginx ]] && binary=$(command -v nginx)
[[ -x $binary ]] || { echo "instructions: $binary not found (make release)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

work=$(mktemp -d "${TMPDIR:-/tmp}/moonwire-instructions.XXXXXX")
upstream=""
trap '[[ -n $upstream ]] && kill -TERM "$upstream" 2>/dev/null; wait; rm -rf "$work"' EXIT
mkdir "$work/scripts" "$work/www"
what="Lua hello request"
handler='function OnCommandGet(req, res) res:send("hello") end'
if [[ -n $proxy ]]; then
    # The upstream: nginx answering from its config (as root its worker runs as nobody).
    upstream_port=$(free_port)
    mkdir -p "$work/upstream/logs"
    user_line=""
    ((EUID == 0)) && user_line="user nobody nogroup;"
    cat > "$work/upstream/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/upstream/nginx.pid;
error_log $work/upstream/logs/error.log warn;
$user_line
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $work/upstream/body;
    proxy_temp_path $work/upstream/proxy;
    fastcgi_temp_path $work/upstream/fastcgi;
    uwsgi_temp_path $work/upstream/uwsgi;
    scgi_temp_path $work/upstream/scgi;
    server { listen 127.0.0.1:$upstream_port; location / { default_type text/plain; return 200 "hello"; } }
}
CONF
    nginx -p "$work/upstream" -c "$work/upstream/nginx.conf" -e "$work/upstream/logs/error.log" \
        > "$work/upstream/logs/console.log" 2>&1 &
    upstream=$!
    for _ in $(seq 1 100); do [[ $(curl -s "http://127.0.0.1:$upstream_port/") == hello ]] && break; sleep 0.1; done
    what="proxied request (moonwire.http.get)"
    handler="function OnCommandGet(req, res)
  local answer, err = moonwire.http.get('http://127.0.0.1:$upstream_port/hello')
  if not answer then res.status = 502 end
  res:send(answer and answer.body or err)
end"
    if [[ $proxy == route ]]; then
        what="proxied request (moonwire.proxy route)"
        handler="moonwire.proxy('/.*', 'http://127.0.0.1:$upstream_port/')"
    fi
fi
if [[ -n ${WEBSOCKET:-} ]]; then
    what="WebSocket message echoed by a Lua OnMessage"
    handler='function OnMessage(ws, text) ws:send(text) end'
fi
target=/
if [[ -n ${STATIC:-} ]]; then
    # The file make bench serves (Tests/bench/run.sh's make_site).
    python3 -c 'import sys; sys.stdout.write(("<p>" + "moonwire bench " * 16 + "</p>\n") * 16)' | head -c 4096 \
        > "$work/www/static4k.html"
    # Older than a second, as a file served from memory must be (see StaticFileCache).
    touch -d '-1 minute' "$work/www/static4k.html"
    target=/static4k.html
    what="static file request (static4k.html)"
    handler=""
    if [[ $STATIC == lua ]]; then
        what="static file request (static4k.html) after an OnCommandGet that does not answer"
        handler='function OnCommandGet(req, res) if req.path == "/hello" then res:send("hello") end end'
    fi
fi
printf '%s\n%s\n' "${PRELUDE:-}" "$handler" > "$work/scripts/main.lua"
case $http1 in
    floor) what="HTTP/1.1 request answered with constant bytes by NIOH1Floor" ;;
    nginx)
        what="$what on nginx"
        [[ $proxy == route ]] && what="proxied request on nginx (proxy_pass with the fields a proxy route adds)"
        [[ $proxy == 1 ]] && what="proxied request on nginx (proxy_pass)"
        ;;
esac
[[ -n $http1 && $target == / ]] && target=/hello
# nginx as make bench runs it, in one process (no master) so that callgrind sees the worker.
nginx_conf() {
    local port=$1 modules=/usr/lib/nginx/modules
    mkdir -p "$work/nginx/logs"
    cat > "$work/nginx/nginx.conf" <<CONF
load_module $modules/ndk_http_module.so;
load_module $modules/ngx_http_lua_module.so;
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    include /etc/nginx/mime.types;
$(upstream_block)
    server {
        listen 127.0.0.1:$port;
        root $work/www;
$(nginx_locations)
        location = /static4k.html { }
    }
}
CONF
}
# /hello as make bench has it on nginx: the Lua hello, or with PROXY its proxy_pass to the
# upstream (PROXY=route: the proxy-pass case's, which adds the forwarding fields Moonwire's
# proxy routes add; PROXY=1: the proxy case's, which adds none, as moonwire.http.get does not).
nginx_locations() {
    if [[ -z $proxy ]]; then
        echo '        location = /hello { content_by_lua_block { ngx.print("hello") } }'
        return
    fi
    echo "        location = /hello {"
    echo "            proxy_pass http://bench_upstream/hello;"
    echo "            proxy_http_version 1.1;"
    echo "            proxy_set_header Connection \"\";"
    [[ $proxy == route ]] && echo "            include $PWD/Tests/bench/nginx-forwarding.conf;"
    echo "        }"
}
upstream_block() {
    [[ -n $proxy ]] && echo "    upstream bench_upstream { server 127.0.0.1:$upstream_port; keepalive 64; }"
}

# N text messages of 20 bytes on one WebSocket, each sent when the last came back (the
# standard library only: masked client frames, unmasked short answers).
websocket_echo() {
    python3 - "$1" "$2" <<'PY'
import os, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buffer = b""
while b"\r\n\r\n" not in buffer:
    buffer += s.recv(4096)
head, _, buffer = buffer.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 101"), head
payload, mask = b"0123456789abcdefghij", os.urandom(4)
frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
for _ in range(count):
    s.sendall(frame)
    while len(buffer) < 2 + len(payload):
        buffer += s.recv(4096)
    assert buffer[:2 + len(payload)] == bytes([0x81, len(payload)]) + payload, buffer[:40]
    buffer = buffer[2 + len(payload):]
print(f"{count} echoed")
PY
}
if [[ -n $http2 ]]; then
    what="HTTP/2 hello request ($([[ $http2 == 1 ]] && echo moonwire || echo "$http2"))"
    [[ $http2 == nghttpd ]] && printf hello > "$work/www/hello"
fi
# callgrind cannot read the DWARF Swift 6 writes; the symbol table is enough to count.
strip --strip-debug -o "$work/moonwire" "$binary"

count() {
    local requests=$1 port
    port=$(free_port)
    local server_command=("$work/moonwire" serve --port "$port" --threads 1 --workers 0
        --scripts "$work/scripts" --www "$work/www")
    case $http2 in
        streams | frames) server_command=("$work/moonwire" "$http2" "$port") ;;
        nghttpd) server_command=("$binary" --no-tls -d "$work/www" "$port") ;;
    esac
    case $http1 in
        floor) server_command=("$work/moonwire" "$port") ;;
        nginx)
            nginx_conf "$port"
            server_command=("$binary" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log")
            ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$requests" \
        "${server_command[@]}" > "$work/log.$requests" 2>&1 &
    local server=$!
    for _ in $(seq 1 300); do
        grep -qs "listening on" "$work/log.$requests" && break
        # nghttpd and nginx say nothing when they are ready; they are once their port answers.
        [[ $http2 == nghttpd || $http1 == nginx ]] && python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
        sleep 0.1
    done
    if [[ -n ${WEBSOCKET:-} ]]; then
        websocket_echo "$port" "$requests" > "$work/load.$requests" 2>&1
    elif [[ -n $http2 ]]; then
        h2load -n "$requests" -c 1 -m 16 "http://127.0.0.1:$port/hello" > "$work/load.$requests" 2>&1
    else
        h2load --h1 -n "$requests" -c "${CLIENTS:-1}" "http://127.0.0.1:$port$target" > "$work/load.$requests" 2>&1
    fi
    kill -TERM "$server"
    wait "$server" || true
    if [[ -n ${WEBSOCKET:-} ]]; then
        grep -q "$requests echoed" "$work/load.$requests" || { cat "$work/load.$requests" >&2; exit 1; }
    else
        grep -q "$requests succeeded" "$work/load.$requests" || { cat "$work/load.$requests" >&2; exit 1; }
        grep -q "status codes: $requests 2xx" "$work/load.$requests" || { cat "$work/load.$requests" >&2; exit 1; }
    fi
    sed -n 's/^summary: //p' "$work/callgrind.$requests"
}

first=$(count "$small")
second=$(count "$large")
if [[ -n ${KEEP:-} ]]; then cp "$work/callgrind.$small" "$work/callgrind.$large" "$KEEP/"; fi
echo "instructions per $what: $(((second - first) / (large - small)))" \
     "(Ir $first for $small requests, $second for $large; $binary)"
