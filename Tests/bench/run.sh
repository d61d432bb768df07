#!/usr/bin/env bash
# `make bench`: Moonwire against nginx with its Lua module (OpenResty's lua-nginx-module,
# Debian's libnginx-mod-http-lua), case by case: a Lua hello, a regex route with a capture,
# the 1st and the 1000th of 1000 regex routes, a 4 KB static file, and the Lua hello again over
# HTTP/2 with TLS (h2load; both servers also listen with TLS on a certificate made per run),
# and a proxied request: a Lua handler making one moonwire.http.get per request against nginx's
# proxy_pass with a keep-alive upstream pool, both to the same upstream (an nginx of its own),
# and the same forward through a moonwire.proxy route (proxy-pass: no Lua per request).
# Then Moonwire alone: the Lua hello next to the same answer without the CPU budget and without
# Lua (moonwire-constant); the WebSocket cases of Tests/bench/websocket.sh (echo through a Lua
# OnMessage against hummingbird-websocket, memory per idle WebSocket, fan-out to 10,000
# subscribers, all loaded by the C client Tests/bench/wsload); and server-sent events fanned out
# to 10,000 streams on one channel (events/s, memory per stream).
#
# Each server runs alone on one core (taskset), Moonwire with --threads 1 and nginx with one
# worker; wrk (h2load for HTTP/2) runs on another core. The servers take turns for several
# rounds so drift on the machine hits both; the script prints every run, the medians and
# Moonwire/nginx, and writes them as JSON to .build/bench/results-<timestamp>.json for
# comparing commits. Next to req/s it gives each server's CPU time per request (its core's busy
# jiffies over the requests served) and nginx's over Moonwire's: where the load client (or the
# proxy cases' upstream beside it) cannot keep up with the faster server, its req/s and so the
# req/s ratio flatter the slower one; the CPU ratio does not.
# Loopback only, bounded in time (about 5 minutes with the defaults), servers stopped on
# exit. Needs Tests/tools/setup.sh --bench (make bench runs it first).
#
#   Tests/bench/run.sh [--no-build]
#
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (seconds per run, 5), BENCH_WARMUP (1),
# BENCH_CONNECTIONS (64), BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), BENCH_UPSTREAM_CPU (2, or
# the load's CPU on a machine with fewer than 3),
# BENCH_H2_REQUESTS (requests per h2load run, 200000; the warm-up makes a tenth of them),
# BENCH_H2_ENGINE (Moonwire's http2.engine, "nio" or "nghttp2"; unset: the default),
# BENCH_BRIDGE_ROUNDS (9) and BENCH_BRIDGE_DURATION (2) for the Lua bridge, BENCH_SHARED_ROUNDS
# (5) and BENCH_SHARED_DURATION (4) for the bridge on one shared core, BENCH_SSE_STREAMS (10000),
# MOONWIRE_BIN (.build/release/moonwire; set it to skip the build as well).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=Tests/bench/lib.sh
source Tests/bench/lib.sh

rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-64}
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
# h2load: 16 connections with up to 16 streams in flight on each.
h2_requests=${BENCH_H2_REQUESTS:-200000}
h2_clients=16
h2_streams=16
build=true
[[ -n ${MOONWIRE_BIN:-} ]] && build=false
moonwire_bin=${MOONWIRE_BIN:-.build/release/moonwire}

for argument in "$@"; do
    case "$argument" in
        --no-build) build=false ;;
        *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
    esac
done

[[ $h2_requests =~ ^[0-9]+$ ]] && ((h2_requests >= h2_clients)) ||
    die "BENCH_H2_REQUESTS must be a whole number of at least $h2_clients"

for tool in taskset wrk h2load nginx openssl curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found; run Tests/tools/setup.sh --bench"
done
if (($(nproc) < 2)); then
    say "warning: only $(nproc) CPU available; server and wrk share it, so the numbers mean little"
    load_cpu=$server_cpu
fi
# The proxy case's upstream: a core of its own where there is one, else beside wrk.
upstream_cpu=${BENCH_UPSTREAM_CPU:-$(($(nproc) >= 3 ? 2 : load_cpu))}

if $build; then
    say "building release"
    # shellcheck disable=SC2086  # the flags are words
    swift build ${RELEASE_FLAGS:--c release -Xswiftc -enforce-exclusivity=unchecked} >&2
fi
[[ -x $moonwire_bin ]] || die "$moonwire_bin not found (build with: make release)"

# --- the servers -----------------------------------------------------------------------------
# Both serve the same cases: /hello, /user/<n>, /r1/<n> ... /r1000/<n>, /static4k.html; and
# /hello over HTTP/2 with TLS on a second port.

# A self-signed certificate for localhost and 127.0.0.1, for this run only.
make_tls_cert() {
    mkdir -p "$work/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        -keyout "$work/tls/localhost-key.pem" -out "$work/tls/localhost.pem" >"$work/tls/openssl.log" 2>&1 ||
        { cat "$work/tls/openssl.log" >&2; die "openssl could not make the bench certificate"; }
    # nginx's master reads them as root before it drops to nobody; Moonwire runs as us.
    chmod 644 "$work/tls/localhost.pem" "$work/tls/localhost-key.pem"
}

make_site() {
    # nginx's worker runs as nobody: it must be able to read the site.
    chmod 755 "$work"
    mkdir -p "$work/www"
    python3 -c 'import sys; sys.stdout.write(("<p>" + "moonwire bench " * 16 + "</p>\n") * 16)' | head -c 4096 >"$work/www/static4k.html"
}

start_moonwire() {
    mkdir -p "$work/moonwire/scripts"
    cat >"$work/moonwire/scripts/main.lua" <<'LUA'
moonwire.get([[/user/(\d+)]], function(req, res) res:send(req.params[1]) end)
for i = 1, 1000 do
  moonwire.get("/r" .. i .. [[/(\d+)]], function(req, res) res:send(req.params[1]) end)
end
function OnCommandGet(req, res)
  if req.path == "/hello" then res:send("hello") end
end
LUA
    # The proxy case: one moonwire.http.get to the upstream per request.
    cat >>"$work/moonwire/scripts/main.lua" <<LUA
moonwire.get("/proxy", function(req, res)
  local answer, err = moonwire.http.get("http://127.0.0.1:$upstream_port/hello")
  if not answer then res.status = 502 end
  res:send(answer and answer.body or err)
end)
-- The proxy-pass case: a proxy route, no Lua per request (nginx: proxy_pass).
moonwire.proxy("/pass/.*", "http://127.0.0.1:$upstream_port/")
LUA
    if [[ -n ${BENCH_H2_ENGINE:-} ]]; then
        printf 'moonwire.options{ http2 = { engine = "%s" } }\n' "$BENCH_H2_ENGINE" >>"$work/moonwire/scripts/main.lua"
    fi
    # The TLS listener (HTTP/2 by ALPN) next to the plain one that --port makes.
    moonwire_tls_port=$(free_port)
    cat >>"$work/moonwire/scripts/main.lua" <<LUA
moonwire.listen{host = "127.0.0.1", port = $moonwire_tls_port,
  tls = {cert = "$work/tls/localhost.pem", key = "$work/tls/localhost-key.pem"}}
LUA
    moonwire_port=$(free_port)
    taskset -c "$server_cpu" "$moonwire_bin" serve --host 127.0.0.1 --port "$moonwire_port" \
        --threads 1 --scripts "$work/moonwire/scripts" --www "$work/www" \
        >"$work/moonwire/log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$moonwire_port/hello" hello "$!" "$work/moonwire/log"
    ready_hint="does $moonwire_bin support moonwire.listen{tls=}?"
    wait_ready "https://127.0.0.1:$moonwire_tls_port/hello" hello "${pids[-1]}" "$work/moonwire/log"
    ready_hint=""
}

# The directory holding Debian's dynamic nginx modules.
nginx_modules_dir() {
    local dir
    for dir in /usr/lib/nginx/modules /usr/share/nginx/modules; do
        [[ -f $dir/ngx_http_lua_module.so ]] && { echo "$dir"; return; }
    done
    die "ngx_http_lua_module.so not found; run Tests/tools/setup.sh --bench"
}

start_nginx() {
    local prefix=$work/nginx modules i routes="" syntax tls_listen
    modules=$(nginx_modules_dir)
    mkdir -p "$prefix/logs" "$prefix/temp"
    nginx_port=$(free_port)
    nginx_tls_port=$(free_port)
    for ((i = 1; i <= 1000; i++)); do
        routes+="        location ~ ^/r$i/(\\d+)\$ { content_by_lua_block { ngx.print(ngx.var[1]) } }"$'\n'
    done
    # As root, the master drops its worker to nobody (nginx's default group "nobody" does
    # not exist on Debian); as anyone else the directive would only warn.
    local user_line=""
    if ((EUID == 0)); then user_line="user nobody nogroup;"; fi
    # HTTP/2 on a TLS listener: `listen ... ssl; http2 on;` since nginx 1.25.1, `listen ... ssl
    # http2;` before (Debian 12 has 1.22). nginx -t tells which this one takes.
    for syntax in new old; do
        if [[ $syntax == new ]]; then
            tls_listen="listen 127.0.0.1:$nginx_tls_port ssl;"$'\n'"        http2 on;"
        else
            tls_listen="listen 127.0.0.1:$nginx_tls_port ssl http2;"
        fi
        write_nginx_conf
        nginx -t -q -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
            >"$prefix/logs/test.log" 2>&1 && break
        if [[ $syntax == old ]]; then
            cat "$prefix/logs/test.log" >&2
            die "nginx rejects both HTTP/2 listen syntaxes (nginx -t above)"
        fi
    done
    taskset -c "$server_cpu" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
        >"$prefix/logs/console.log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$nginx_port/hello" hello "$!" "$prefix/logs/console.log" "$prefix/logs/error.log"
    wait_ready "https://127.0.0.1:$nginx_tls_port/hello" hello "${pids[-1]}" "$prefix/logs/console.log" "$prefix/logs/error.log"
}

# Writes nginx.conf for start_nginx (uses its prefix, modules, user_line, routes, tls_listen).
write_nginx_conf() {
    # One worker, no access log, and keep-alive connections that last the whole run, as
    # Moonwire's do (nginx closes one after 1000 requests by default; on HTTP/2 too).
    cat >"$prefix/nginx.conf" <<CONF
load_module $modules/ndk_http_module.so;
load_module $modules/ngx_http_lua_module.so;
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
$user_line
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $prefix/temp/body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    include /etc/nginx/mime.types;
    # An idle upstream connection for each of wrk's: with fewer, nginx closes and opens
    # upstream connections under load, which Moonwire's pool (unbounded per loop) never does.
    upstream bench_upstream {
        server 127.0.0.1:$upstream_port;
        keepalive $connections;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
        location = /hello { content_by_lua_block { ngx.print("hello") } }
        location = /static4k.html { }
        location = /proxy {
            proxy_pass http://bench_upstream/hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        # ^~: a plain prefix location would first try the 1000 regex locations below.
        location ^~ /pass/ {
            proxy_pass http://bench_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            include $PWD/Tests/bench/nginx-forwarding.conf;
        }
        location ~ ^/user/(\\d+)\$ { content_by_lua_block { ngx.print(ngx.var[1]) } }
$routes
    }
    # TLS 1.3 as Moonwire (BoringSSL) and h2load speak it; nginx before 1.23.4 stops at 1.2.
    server {
        $tls_listen
        ssl_certificate $work/tls/localhost.pem;
        ssl_certificate_key $work/tls/localhost-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /hello { content_by_lua_block { ngx.print("hello") } }
    }
}
CONF
}

# --- measuring -------------------------------------------------------------------------------

# Runs wrk against `url` for `seconds` and sets `rps`. Fails on errors or non-2xx answers.
# wrk runs in the background so that a signal reaches the trap at once, not after the run.
run_wrk() {
    start_wrk "$1" "$2" "$work/wrk.out"
    wait_wrk "$1" "$work/wrk.out"
}

# Starts wrk on `url` for `seconds` in the background, its report going to `output`.
start_wrk() {
    local url=$1 seconds=$2 output=$3
    timeout $((seconds + 30)) taskset -c "$load_cpu" \
        wrk -t1 -c"$connections" -d"${seconds}s" "$url" >"$output" 2>&1 &
    pids+=($!)
}

# Waits for the wrk started last and sets `rps` from its report.
wait_wrk() {
    local url=$1 output=$2
    wait "${pids[-1]}" || { cat "$output" >&2; die "wrk failed on $url"; }
    unset 'pids[-1]'
    if grep -qE 'Non-2xx|Socket errors' "$output"; then
        cat "$output" >&2
        die "errors while measuring $url"
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$output")
    requests=$(awk '/ requests in / { print $1 }' "$output")
    [[ -n $rps ]] || { cat "$output" >&2; die "no Requests/sec in wrk's output"; }
}

# Runs h2load (HTTP/2 only, over TLS) with `requests` against `url`; sets `rps` and `tls_info`
# (protocol and cipher). Fails unless every request succeeded with a 2xx.
run_h2load() {
    local url=$1 requests=$2 output=$work/h2load.out h2load_pid
    local total started finished succeeded failed errored timedout ok2xx
    timeout $((60 + requests / 2000)) taskset -c "$load_cpu" \
        h2load -t1 -n"$requests" -c"$h2_clients" -m"$h2_streams" --npn-list=h2 "$url" >"$output" 2>&1 &
    h2load_pid=$!
    pids+=("$h2load_pid")
    wait "$h2load_pid" || { cat "$output" >&2; die "h2load failed (or took too long) on $url"; }
    unset 'pids[-1]'
    # requests: N total, N started, N done, N succeeded, 0 failed, 0 errored, 0 timeout
    read -r total started finished succeeded failed errored timedout < <(
        awk '/^requests:/ { print $2, $4, $6, $8, $10, $12, $14 }' "$output")
    ok2xx=$(awk '/^status codes:/ { print $3 }' "$output")
    if [[ $total != "$requests" || $succeeded != "$requests" || $ok2xx != "$requests" ]] ||
        ((failed + errored + timedout)) || ! grep -q '^Application protocol: h2$' "$output"; then
        cat "$output" >&2
        die "errors while measuring $url with h2load ($succeeded of $requests succeeded, ${ok2xx:-no} 2xx)"
    fi
    # finished in 1.23s, 162601.16 req/s, 5.60MB/s
    rps=$(awk '/^finished in/ { print $4 }' "$output")
    [[ -n $rps ]] || { cat "$output" >&2; die "no req/s in h2load's output"; }
    tls_info="$(awk -F': ' '/^TLS Protocol:/ { p = $2 } /^Cipher:/ { c = $2 } END { print p " " c }' "$output")"
}

# The upstream both proxies call: nginx answering "hello" from its config, one worker.
start_upstream() {
    local prefix=$work/upstream user_line=""
    mkdir -p "$prefix/logs" "$prefix/temp"
    upstream_port=$(free_port)
    # As in start_nginx: as root the worker drops to nobody, whose group on Debian is nogroup.
    if ((EUID == 0)); then user_line="user nobody nogroup;"; fi
    cat >"$prefix/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
$user_line
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $prefix/temp/body;
    proxy_temp_path $prefix/temp/proxy;
    fastcgi_temp_path $prefix/temp/fastcgi;
    uwsgi_temp_path $prefix/temp/uwsgi;
    scgi_temp_path $prefix/temp/scgi;
    server {
        listen 127.0.0.1:$upstream_port;
        location / { default_type text/plain; return 200 "hello"; }
    }
}
CONF
    taskset -c "$upstream_cpu" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
        >"$prefix/logs/console.log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$upstream_port/hello" hello "$!" "$prefix/logs/console.log" "$prefix/logs/error.log"
}

loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
make_site
make_tls_cert
start_upstream
start_moonwire
start_nginx

cases=(lua-hello regex-route route-1st route-1000th static-4k proxy proxy-pass)
declare -A paths=([lua-hello]=/hello [regex-route]=/user/42 [route-1st]=/r1/42 [route-1000th]=/r1000/42
    [static-4k]=/static4k.html [proxy]=/proxy [proxy-pass]=/pass/hello)
declare -A runs cpus

# The server CPU's busy time per request, in µs, from its jiffies over a run and the requests
# the load client counted: unlike req/s, it does not depend on whether the load side kept up.
cpu_per_request() {
    awk -v jiffies="$1" -v requests="$2" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", (requests > 0 ? jiffies * 1e6 / hz / requests : 0) }'
}

say "wrk -t1 -c$connections -d${duration}s, $rounds rounds per case; servers on CPU $server_cpu, wrk on CPU $load_cpu"
for case in "${cases[@]}"; do
    moonwire_url=http://127.0.0.1:$moonwire_port${paths[$case]}
    nginx_url=http://127.0.0.1:$nginx_port${paths[$case]}
    if ((warmup > 0)); then
        run_wrk "$moonwire_url" "$warmup"
        run_wrk "$nginx_url" "$warmup"
    fi
    for ((round = 1; round <= rounds; round++)); do
        # Alternate who goes first so a trend on the machine does not favour one side.
        if ((round % 2)); then order=(moonwire nginx); else order=(nginx moonwire); fi
        for server in "${order[@]}"; do
            read -r load_busy load_all < <(cpu_jiffies "$load_cpu")
            read -r server_busy server_all < <(cpu_jiffies "$server_cpu")
            if [[ $server == moonwire ]]; then run_wrk "$moonwire_url" "$duration"; else run_wrk "$nginx_url" "$duration"; fi
            runs[$case.$server]+="$rps "
            # How busy the load's CPU (wrk; in the proxy case the upstream too, unless it has its
            # own) and the server's were: a load side near 100% measures itself, not the server.
            read -r busy all < <(cpu_jiffies "$load_cpu")
            load_share=$(((busy - load_busy) * 100 / (all - load_all > 0 ? all - load_all : 1)))
            read -r busy all < <(cpu_jiffies "$server_cpu")
            server_share=$(((busy - server_busy) * 100 / (all - server_all > 0 ? all - server_all : 1)))
            cpu_us=$(cpu_per_request $((busy - server_busy)) "$requests")
            cpus[$case.$server]+="$cpu_us "
            printf '  %-13s round %d  %-8s %12.0f req/s  (CPU: server %d%%, load %d%%; server %s µs per request)\n' \
                "$case" "$round" "$server" "$rps" "$server_share" "$load_share" "$cpu_us"
        done
    done
done

# --- HTTP/2 over TLS: the Lua hello with h2load ----------------------------------------------

h2_case=h2-tls-hello
declare -A tls_infos
say "h2load -t1 -n$h2_requests -c$h2_clients -m$h2_streams over TLS, $rounds rounds; servers on CPU $server_cpu, h2load on CPU $load_cpu"
moonwire_url=https://127.0.0.1:$moonwire_tls_port/hello
nginx_url=https://127.0.0.1:$nginx_tls_port/hello
if ((warmup > 0)); then
    warmup_requests=$((h2_requests / 10 > h2_clients ? h2_requests / 10 : h2_clients))
    run_h2load "$moonwire_url" "$warmup_requests"
    run_h2load "$nginx_url" "$warmup_requests"
fi
for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then order=(moonwire nginx); else order=(nginx moonwire); fi
    for server in "${order[@]}"; do
        read -r server_busy server_all < <(cpu_jiffies "$server_cpu")
        if [[ $server == moonwire ]]; then run_h2load "$moonwire_url" "$h2_requests"; else run_h2load "$nginx_url" "$h2_requests"; fi
        read -r busy all < <(cpu_jiffies "$server_cpu")
        cpu_us=$(cpu_per_request $((busy - server_busy)) "$h2_requests")
        runs[$h2_case.$server]+="$rps "
        cpus[$h2_case.$server]+="$cpu_us "
        tls_infos[$server]=$tls_info
        printf '  %-13s round %d  %-8s %12.0f req/s  (server %s µs per request)\n' "$h2_case" "$round" "$server" "$rps" "$cpu_us"
    done
done
cases+=("$h2_case")

# --- The Lua bridge: the hello from Swift alone, and without the instruction budget ----------
# Three servers answer the same bytes: the Lua hello, the Lua hello with limits.instructions = 0
# (no count hook), and moonwire-constant (the same core, no Lua). constant/lua prices the
# bridge; no-budget/lua prices the CPU budget (armed only after a CPU tick, so close to nothing).

constant_bin=$(dirname "$moonwire_bin")/moonwire-constant
[[ -x $constant_bin ]] || die "$constant_bin not found (it is built with moonwire: make release)"
declare -A bridge_urls
start_bridge_lua() {
    local name=$1 options=$2 port
    mkdir -p "$work/$name"
    printf '%s\nfunction OnCommandGet(req, res) res:send("hello") end\n' "$options" >"$work/$name/main.lua"
    port=$(free_port)
    taskset -c "$server_cpu" "$moonwire_bin" serve --host 127.0.0.1 --port "$port" --threads 1 \
        --scripts "$work/$name" --www "$work/www" >"$work/$name/log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$port/hello" hello "$!" "$work/$name/log"
    bridge_urls[$name]=http://127.0.0.1:$port/hello
}
start_bridge_lua lua ""
start_bridge_lua no-budget "moonwire.options{limits = {instructions = 0}}"
constant_port=$(free_port)
taskset -c "$server_cpu" "$constant_bin" "$constant_port" >"$work/constant.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$constant_port/hello" hello "$!" "$work/constant.log"
bridge_urls[constant]=http://127.0.0.1:$constant_port/hello
bridge_variants=(lua no-budget constant)
# The bridge is a few per cent, less than the machine's drift between rounds of 5 s: more and
# shorter rounds, each comparing the variants run back to back.
bridge_rounds=${BENCH_BRIDGE_ROUNDS:-9}
bridge_duration=${BENCH_BRIDGE_DURATION:-2}
say "the Lua bridge: ${bridge_variants[*]}, wrk -t1 -c$connections -d${bridge_duration}s, $bridge_rounds rounds"
if ((warmup > 0)); then
    for variant in "${bridge_variants[@]}"; do run_wrk "${bridge_urls[$variant]}" "$warmup"; done
fi
for ((round = 1; round <= bridge_rounds; round++)); do
    # Each round starts with another variant, so none is always measured first.
    for ((i = 0; i < ${#bridge_variants[@]}; i++)); do
        variant=${bridge_variants[$(((i + round - 1) % ${#bridge_variants[@]}))]}
        run_wrk "${bridge_urls[$variant]}" "$bridge_duration"
        runs[bridge.$variant]+="$rps "
        printf '  %-13s round %d  %-9s %11.0f req/s\n' bridge "$round" "$variant" "$rps"
    done
done
bridge_runs=""
for variant in "${bridge_variants[@]}"; do bridge_runs+="$variant:${runs[bridge.$variant]};"; done

# The same two sharing one core: the Lua hello and moonwire-constant loaded at once, each by
# its own wrk. The scheduler gives each half the core, so the ratio of their req/s is that of
# what a request costs each, measured at the same moment: the machine's drift cancels out.
shared_rounds=${BENCH_SHARED_ROUNDS:-5}
shared_duration=${BENCH_SHARED_DURATION:-4}
say "the Lua bridge on one shared CPU: lua and constant at once, $shared_rounds rounds of ${shared_duration}s"
shared_runs=""
for ((round = 1; round <= shared_rounds; round++)); do
    start_wrk "${bridge_urls[lua]}" "$shared_duration" "$work/wrk.lua"
    start_wrk "${bridge_urls[constant]}" "$shared_duration" "$work/wrk.constant"
    wait_wrk "${bridge_urls[constant]}" "$work/wrk.constant"
    constant_rps=$rps
    wait_wrk "${bridge_urls[lua]}" "$work/wrk.lua"
    shared_runs+="$rps:$constant_rps "
    printf '  %-13s round %d  lua %11.0f req/s  constant %11.0f req/s\n' shared "$round" "$rps" "$constant_rps"
done

# --- WebSocket: echo against hummingbird-websocket, idle memory, fan-out (websocket.sh) ------

websocket=$(BENCH_ROUNDS=$rounds BENCH_DURATION=$duration BENCH_WARMUP=$warmup BENCH_SERVER_CPU=$server_cpu \
    BENCH_LOAD_CPU=$load_cpu MOONWIRE_BIN=$moonwire_bin Tests/bench/websocket.sh)

# --- Server-sent events: fan-out to 10,000 streams on one channel (Moonwire alone) -----------

mkdir -p "$work/sse"
cat >"$work/sse/main.lua" <<'LUA'
moonwire.options{ sse = { keepalive = 0 } }
moonwire.get("^/sse$", function(req, res)
  local sse = res:sse()
  sse:subscribe("bench")
  sse:send("subscribed")
end)
local message = string.rep("m", 64)
moonwire.get("^/fanout$", function(req, res)
  for _ = 1, tonumber(req.query.n) do moonwire.broadcast(message, { channel = "bench" }) end
  res:send("ok")
end)
LUA
sse_streams=${BENCH_SSE_STREAMS:-10000}
# One descriptor per stream on each side, plus the server's own.
(( $(ulimit -Hn) >= sse_streams + 200 )) || die "the hard limit on open files ($(ulimit -Hn)) is below $((sse_streams + 200))"
sse_port=$(free_port)
(ulimit -n "$(ulimit -Hn)" && exec taskset -c "$server_cpu" "$moonwire_bin" serve --host 127.0.0.1 --port "$sse_port" \
    --threads 1 --scripts "$work/sse" --www "$work/www" >"$work/sse/log" 2>&1) &
sse_pid=$!
pids+=("$sse_pid")
wait_ready "http://127.0.0.1:$sse_port/hello" "404 Not Found" "$sse_pid" "$work/sse/log"
sse_server_pid=$(pgrep -f -- "--port $sse_port" | head -1)
say "sse fan-out: $sse_streams streams on one channel, bursts of 100 broadcasts of 64 bytes"
sse_fanout=$(ulimit -n "$(ulimit -Hn)" && taskset -c "$load_cpu" python3 Tests/bench/sse_load.py "127.0.0.1:$sse_port" \
    --pid "$sse_server_pid" --streams "$sse_streams")

# --- report ----------------------------------------------------------------------------------

mkdir -p .build/bench
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=.build/bench/results-$stamp.json
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then commit+="-dirty"; fi
case_runs=""
for case in "${cases[@]}"; do
    case_runs+="$case:${runs[$case.moonwire]}:${runs[$case.nginx]}:${cpus[$case.moonwire]}:${cpus[$case.nginx]};"
done

BENCH_STAMP=$stamp BENCH_COMMIT=$commit BENCH_BINARY=$moonwire_bin BENCH_LOADAVG=$loadavg_before \
BENCH_CASES="$case_runs" BENCH_BRIDGE="$bridge_runs" BENCH_WEBSOCKET="$websocket" BENCH_SSE="$sse_fanout" \
BENCH_MOONWIRE_VERSION=$("$moonwire_bin" version 2>&1 | head -1) \
BENCH_NGINX_VERSION=$(nginx -v 2>&1 | head -1) \
BENCH_WRK_VERSION=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) \
BENCH_H2LOAD_VERSION=$(h2load --version 2>&1 | head -1) \
BENCH_H2_CASE=$h2_case BENCH_H2_REQUESTS=$h2_requests BENCH_H2_CLIENTS=$h2_clients \
BENCH_H2_STREAMS=$h2_streams BENCH_H2_TLS_MOONWIRE=${tls_infos[moonwire]} BENCH_H2_TLS_NGINX=${tls_infos[nginx]} \
BENCH_CONNECTIONS=$connections BENCH_DURATION=$duration BENCH_ROUNDS=$rounds \
BENCH_BRIDGE_ROUNDS=$bridge_rounds BENCH_BRIDGE_DURATION=$bridge_duration BENCH_SHARED="$shared_runs" \
BENCH_SHARED_DURATION=$shared_duration \
BENCH_SERVER_CPU=$server_cpu BENCH_LOAD_CPU=$load_cpu BENCH_UPSTREAM_CPU=$upstream_cpu \
python3 - "$results" <<'PY'
import datetime, json, os, platform, statistics, sys

env = os.environ
cases, medians = [], {}
# The last three columns: each server's CPU µs per request (median) and nginx's over Moonwire's,
# the ratio the load side cannot flatter.
print(f"  {'case':<13} {'moonwire':>12} {'nginx':>12} {'moonwire/nginx':>15} {'µs/req m':>9} {'µs/req n':>9} {'CPU ratio':>9}")
for entry in filter(None, env["BENCH_CASES"].split(";")):
    name, moonwire_runs, nginx_runs, moonwire_cpus, nginx_cpus = entry.split(":")
    moonwire = [float(x) for x in moonwire_runs.split()]
    nginx = [float(x) for x in nginx_runs.split()]
    m, n = statistics.median(moonwire), statistics.median(nginx)
    mc = statistics.median(float(x) for x in moonwire_cpus.split())
    nc = statistics.median(float(x) for x in nginx_cpus.split())
    medians[name] = m
    print(f"  {name:<13} {m:12.0f} {n:12.0f} {m / n:15.2f} {mc:9.2f} {nc:9.2f} {nc / mc:9.2f}")
    cases.append({"name": name,
                  "moonwire": {"runs_rps": moonwire, "median_rps": m,
                               "runs_cpu_us_per_request": [float(x) for x in moonwire_cpus.split()], "median_cpu_us_per_request": mc},
                  "nginx": {"runs_rps": nginx, "median_rps": n,
                            "runs_cpu_us_per_request": [float(x) for x in nginx_cpus.split()], "median_cpu_us_per_request": nc},
                  "ratio": round(m / n, 3), "cpu_ratio": round(nc / mc, 3)})
    if name == env["BENCH_H2_CASE"]:
        # h2load over TLS rather than wrk: the protocol and cipher each server negotiated.
        cases[-1]["moonwire"]["tls"] = env["BENCH_H2_TLS_MOONWIRE"]
        cases[-1]["nginx"]["tls"] = env["BENCH_H2_TLS_NGINX"]
route_ratio = round(medians["route-1000th"] / medians["route-1st"], 3)
print(f"  moonwire 1000th route / 1st route: {route_ratio:.2f}")
print(f"  {env['BENCH_H2_CASE']} negotiated: moonwire {env['BENCH_H2_TLS_MOONWIRE']}, nginx {env['BENCH_H2_TLS_NGINX']}")
bridge = {}
for entry in filter(None, env["BENCH_BRIDGE"].split(";")):
    name, variant_runs = entry.split(":")
    values = [float(x) for x in variant_runs.split()]
    bridge[name] = {"runs_rps": values, "median_rps": statistics.median(values)}
lua_rps = bridge["lua"]["median_rps"]
# Per round: the variants ran back to back there, so the machine's drift between rounds cancels.
def paired(name):
    return round(statistics.median(c / l for c, l in zip(bridge[name]["runs_rps"], bridge["lua"]["runs_rps"])), 3)
bridge["constant_over_lua"] = paired("constant")
bridge["no_budget_over_lua"] = paired("no-budget")
bridge["constant_over_lua_of_medians"] = round(bridge["constant"]["median_rps"] / lua_rps, 3)
print(f"  Lua bridge: lua-hello {lua_rps:.0f}, without the CPU budget {bridge['no-budget']['median_rps']:.0f}, "
      f"constant body without Lua {bridge['constant']['median_rps']:.0f} req/s")
print(f"    constant/lua-hello {bridge['constant_over_lua']:.3f} (median of the rounds' ratios; goal: at most 1.05; "
      f"ratio of the medians {bridge['constant_over_lua_of_medians']:.3f}); "
      f"no-budget/lua-hello {bridge['no_budget_over_lua']:.3f} (what the CPU budget costs a hello)")
shared = [tuple(float(x) for x in pair.split(":")) for pair in env["BENCH_SHARED"].split()]
bridge["shared_core"] = {"runs_rps": [{"lua": lua, "constant": constant} for lua, constant in shared],
                         "constant_over_lua": round(statistics.median(c / l for l, c in shared), 3)}
print(f"    on one shared core, at once: constant/lua-hello {bridge['shared_core']['constant_over_lua']:.3f} "
      f"(median of {len(shared)} rounds; goal: at most 1.05)")
websocket = json.loads(env["BENCH_WEBSOCKET"])
# BENCH_WS_CASES may leave cases out: their entries are then null.
for peer, echo in (websocket.get("echo") or {}).items():
    print(f"  websocket echo, {peer}: {echo['median_messages_per_second']} messages/s, "
          f"{echo['median_server_cpu_us_per_message']} µs server CPU per message (wsload at {echo['median_client_cpu_share']:.0%} CPU)")
if "moonwire_over_hummingbird" in websocket:
    ratio = websocket["moonwire_over_hummingbird"]
    print(f"    moonwire/hummingbird: {ratio['messages_per_second']:.2f} of the messages/s, "
          f"{ratio['server_cpu_per_message']:.2f} of the CPU per message")
elif websocket.get("hummingbird_missing"):
    print(f"    hummingbird-websocket not measured: {websocket['hummingbird_missing']}")
for peer, idle in (websocket.get("idle") or {}).items():
    if idle:
        print(f"  websocket idle, {peer}: {idle['kib_per_connection']} KiB RSS per connection over {idle['connections']}")
for name, fanout in (websocket.get("fanout") or {}).items():
    if fanout is None:
        continue
    if name == "floor":
        print(f"  websocket fan-out floor: {fanout['us_per_write']} µs per write(2) to each of {fanout['sockets']} "
              f"loopback sockets, no server")
        continue
    print(f"  websocket fan-out, {fanout['burst']} message(s) per publish: {fanout['deliveries_per_second']} deliveries/s "
          f"to {fanout['connections']}, loop held up to {fanout['loop_held_max_ms']} ms")
sse = json.loads(env["BENCH_SSE"])
for run in sse["rounds"]:
    print(f"  sse fan-out round: {run['events_per_second']} events/s ({run['delivered']} in {run['seconds']} s, "
          f"{run['events_per_cpu_second']} per server CPU second; server CPU {run['server_cpu']}, "
          f"client CPU {run['client_cpu']})")
print(f"  sse fan-out: {sse['events_per_second']} events/s to {sse['streams']} streams, "
      f"{sse['kib_per_stream']} KiB RSS per stream, {sse['lost']} lost")
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
            if line.startswith("model name")), "unknown")
result = {
    "timestamp": env["BENCH_STAMP"],
    "commit": env["BENCH_COMMIT"],
    # The commit is the work tree's; with MOONWIRE_BIN the binary may be older than it.
    "binary": {"path": env["BENCH_BINARY"],
               "modified": datetime.datetime.fromtimestamp(
                   os.stat(env["BENCH_BINARY"]).st_mtime, datetime.timezone.utc).isoformat()},
    "machine": {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_before": env["BENCH_LOADAVG"]},
    "tools": {"moonwire": env["BENCH_MOONWIRE_VERSION"], "nginx": env["BENCH_NGINX_VERSION"],
              "wrk": env["BENCH_WRK_VERSION"], "h2load": env["BENCH_H2LOAD_VERSION"]},
    "settings": {"connections": int(env["BENCH_CONNECTIONS"]), "wrk_threads": 1,
                 "server_threads": 1, "duration_s": float(env["BENCH_DURATION"]),
                 "rounds": int(env["BENCH_ROUNDS"]), "server_cpu": env["BENCH_SERVER_CPU"],
                 "load_cpu": env["BENCH_LOAD_CPU"], "upstream_cpu": env["BENCH_UPSTREAM_CPU"],
                 "bridge": {"rounds": int(env["BENCH_BRIDGE_ROUNDS"]), "duration_s": float(env["BENCH_BRIDGE_DURATION"]),
                            "shared_core_duration_s": float(env["BENCH_SHARED_DURATION"])},
                 env["BENCH_H2_CASE"]: {"tool": "h2load", "requests": int(env["BENCH_H2_REQUESTS"]),
                                        "clients": int(env["BENCH_H2_CLIENTS"]),
                                        "streams_per_client": int(env["BENCH_H2_STREAMS"]),
                                        "h2load_threads": 1}},
    "cases": cases,
    "route_1000th_over_1st": route_ratio,
    "lua_bridge": bridge,
    "websocket": websocket,
    "sse": sse,
}
with open(sys.argv[1], "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
PY
say "results written to $results"
