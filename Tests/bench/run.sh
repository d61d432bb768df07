#!/usr/bin/env bash
# `make bench`: Moonwire against nginx with its Lua module (OpenResty's lua-nginx-module,
# Debian's libnginx-mod-http-lua), case by case: a Lua hello, a regex route with a capture,
# the 1st and the 1000th of 1000 regex routes, and a 4 KB static file.
#
# Each server runs alone on one core (taskset), Moonwire with --threads 1 and nginx with one
# worker; wrk runs on another core. The servers take turns for several rounds so drift on
# the machine hits both; the script prints every run, the medians and Moonwire/nginx, and
# writes them as JSON to .build/bench/results-<timestamp>.json for comparing commits.
# Loopback only, bounded in time (about 4 minutes with the defaults), servers stopped on
# exit. Needs Tests/tools/setup.sh --bench (make bench runs it first).
#
#   Tests/bench/run.sh [--no-build]
#
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (seconds per run, 5), BENCH_WARMUP (1),
# BENCH_CONNECTIONS (64), BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1),
# MOONWIRE_BIN (.build/release/moonwire; set it to skip the build as well).
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-64}
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
build=true
[[ -n ${MOONWIRE_BIN:-} ]] && build=false
moonwire_bin=${MOONWIRE_BIN:-.build/release/moonwire}

for argument in "$@"; do
    case "$argument" in
        --no-build) build=false ;;
        *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
    esac
done

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

for tool in taskset wrk nginx curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found; run Tests/tools/setup.sh --bench"
done
if (($(nproc) < 2)); then
    say "warning: only $(nproc) CPU available; server and wrk share it, so the numbers mean little"
    load_cpu=$server_cpu
fi

if $build; then
    say "building release"
    swift build -c release >&2
fi
[[ -x $moonwire_bin ]] || die "$moonwire_bin not found (build with: swift build -c release)"

work=$(mktemp -d "${TMPDIR:-/tmp}/moonwire-bench.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in {1..50}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers `body`, or fails showing the server's logs.
wait_ready() {
    local url=$1 body=$2 pid=$3
    shift 3
    for _ in {1..200}; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$@" >&2 2>/dev/null || true
            die "the server for $url exited"
        fi
        if [[ $(curl -s --max-time 1 "$url" 2>/dev/null) == "$body" ]]; then return 0; fi
        sleep 0.1
    done
    cat "$@" >&2 2>/dev/null || true
    die "no answer \"$body\" from $url within 20 s"
}

# --- the servers -----------------------------------------------------------------------------
# Both serve the same cases: /hello, /user/<n>, /r1/<n> ... /r1000/<n>, /static4k.html.

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
    moonwire_port=$(free_port)
    taskset -c "$server_cpu" "$moonwire_bin" serve --host 127.0.0.1 --port "$moonwire_port" \
        --threads 1 --scripts "$work/moonwire/scripts" --www "$work/www" \
        >"$work/moonwire/log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$moonwire_port/hello" hello "$!" "$work/moonwire/log"
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
    local prefix=$work/nginx modules i routes=""
    modules=$(nginx_modules_dir)
    mkdir -p "$prefix/logs" "$prefix/temp"
    nginx_port=$(free_port)
    for ((i = 1; i <= 1000; i++)); do
        routes+="        location ~ ^/r$i/(\\d+)\$ { content_by_lua_block { ngx.print(ngx.var[1]) } }"$'\n'
    done
    # As root, the master drops its worker to nobody (nginx's default group "nobody" does
    # not exist on Debian); as anyone else the directive would only warn.
    local user_line=""
    if ((EUID == 0)); then user_line="user nobody nogroup;"; fi
    # One worker, no access log, and keep-alive connections that last the whole run, as
    # Moonwire's do (nginx closes one after 1000 requests by default).
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
    server {
        listen 127.0.0.1:$nginx_port;
        root $work/www;
        location = /hello { content_by_lua_block { ngx.print("hello") } }
        location = /static4k.html { }
        location ~ ^/user/(\\d+)\$ { content_by_lua_block { ngx.print(ngx.var[1]) } }
$routes
    }
}
CONF
    taskset -c "$server_cpu" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
        >"$prefix/logs/console.log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$nginx_port/hello" hello "$!" "$prefix/logs/console.log" "$prefix/logs/error.log"
}

# --- measuring -------------------------------------------------------------------------------

# Runs wrk against `url` for `seconds` and sets `rps`. Fails on errors or non-2xx answers.
# wrk runs in the background so that a signal reaches the trap at once, not after the run.
run_wrk() {
    local url=$1 seconds=$2 output=$work/wrk.out wrk_pid
    timeout $((seconds + 30)) taskset -c "$load_cpu" \
        wrk -t1 -c"$connections" -d"${seconds}s" "$url" >"$output" 2>&1 &
    wrk_pid=$!
    pids+=("$wrk_pid")
    wait "$wrk_pid" || { cat "$output" >&2; die "wrk failed on $url"; }
    unset 'pids[-1]'
    if grep -qE 'Non-2xx|Socket errors' "$output"; then
        cat "$output" >&2
        die "errors while measuring $url"
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$output")
    [[ -n $rps ]] || { cat "$output" >&2; die "no Requests/sec in wrk's output"; }
}

loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg)
make_site
start_moonwire
start_nginx

cases=(lua-hello regex-route route-1st route-1000th static-4k)
declare -A paths=([lua-hello]=/hello [regex-route]=/user/42 [route-1st]=/r1/42 [route-1000th]=/r1000/42
    [static-4k]=/static4k.html)
declare -A runs

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
            if [[ $server == moonwire ]]; then run_wrk "$moonwire_url" "$duration"; else run_wrk "$nginx_url" "$duration"; fi
            runs[$case.$server]+="$rps "
            printf '  %-13s round %d  %-8s %12.0f req/s\n' "$case" "$round" "$server" "$rps"
        done
    done
done

# --- WebSocket: echo throughput and memory per idle connection (Moonwire alone) --------------

mkdir -p "$work/ws"
cat >"$work/ws/main.lua" <<'LUA'
function OnMessage(ws, text) ws:send(text) end
LUA
ws_port=$(free_port)
(ulimit -n "$(ulimit -Hn)" && exec taskset -c "$server_cpu" "$moonwire_bin" serve --host 127.0.0.1 --port "$ws_port" \
    --threads 1 --scripts "$work/ws" --www "$work/www" >"$work/ws/log" 2>&1) &
ws_pid=$!
pids+=("$ws_pid")
wait_ready "http://127.0.0.1:$ws_port/hello" "404 Not Found" "$ws_pid" "$work/ws/log"
ws_server_pid=$(pgrep -f -- "--port $ws_port" | head -1)
say "websocket echo: 100 connections, 20-byte messages, one in flight each, ${duration}s"
ws_echo=$(taskset -c "$load_cpu" python3 Tests/bench/ws_load.py echo "127.0.0.1:$ws_port" --connections 100 --seconds "$duration")
say "websocket idle: 10000 connections"
ws_idle=$(ulimit -n "$(ulimit -Hn)" && taskset -c "$load_cpu" python3 Tests/bench/ws_load.py idle "127.0.0.1:$ws_port" --pid "$ws_server_pid" --connections 10000)

# --- report ----------------------------------------------------------------------------------

mkdir -p .build/bench
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=.build/bench/results-$stamp.json
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then commit+="-dirty"; fi
case_runs=""
for case in "${cases[@]}"; do
    case_runs+="$case:${runs[$case.moonwire]}:${runs[$case.nginx]};"
done

BENCH_STAMP=$stamp BENCH_COMMIT=$commit BENCH_BINARY=$moonwire_bin BENCH_LOADAVG=$loadavg_before \
BENCH_CASES="$case_runs" BENCH_WS_ECHO="$ws_echo" BENCH_WS_IDLE="$ws_idle" \
BENCH_MOONWIRE_VERSION=$("$moonwire_bin" version 2>&1 | head -1) \
BENCH_NGINX_VERSION=$(nginx -v 2>&1 | head -1) \
BENCH_WRK_VERSION=$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) \
BENCH_CONNECTIONS=$connections BENCH_DURATION=$duration BENCH_ROUNDS=$rounds \
BENCH_SERVER_CPU=$server_cpu BENCH_LOAD_CPU=$load_cpu \
python3 - "$results" <<'PY'
import datetime, json, os, platform, statistics, sys

env = os.environ
cases, medians = [], {}
print(f"  {'case':<13} {'moonwire':>12} {'nginx':>12} {'moonwire/nginx':>15}")
for entry in filter(None, env["BENCH_CASES"].split(";")):
    name, moonwire_runs, nginx_runs = entry.split(":")
    moonwire = [float(x) for x in moonwire_runs.split()]
    nginx = [float(x) for x in nginx_runs.split()]
    m, n = statistics.median(moonwire), statistics.median(nginx)
    medians[name] = m
    print(f"  {name:<13} {m:12.0f} {n:12.0f} {m / n:15.2f}")
    cases.append({"name": name, "moonwire": {"runs_rps": moonwire, "median_rps": m},
                  "nginx": {"runs_rps": nginx, "median_rps": n}, "ratio": round(m / n, 3)})
route_ratio = round(medians["route-1000th"] / medians["route-1st"], 3)
print(f"  moonwire 1000th route / 1st route: {route_ratio:.2f}")
ws_echo, ws_idle = json.loads(env["BENCH_WS_ECHO"]), json.loads(env["BENCH_WS_IDLE"])
print(f"  websocket echo: {ws_echo['messages_per_second']} messages/s over {ws_echo['connections']} connections")
print(f"  websocket idle: {ws_idle['kib_per_connection']} KiB RSS per connection over {ws_idle['connections']} connections")
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
              "wrk": env["BENCH_WRK_VERSION"]},
    "settings": {"connections": int(env["BENCH_CONNECTIONS"]), "wrk_threads": 1,
                 "server_threads": 1, "duration_s": float(env["BENCH_DURATION"]),
                 "rounds": int(env["BENCH_ROUNDS"]), "server_cpu": env["BENCH_SERVER_CPU"],
                 "load_cpu": env["BENCH_LOAD_CPU"]},
    "cases": cases,
    "route_1000th_over_1st": route_ratio,
    "websocket": {"echo": ws_echo, "idle": ws_idle},
}
with open(sys.argv[1], "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
PY
say "results written to $results"
