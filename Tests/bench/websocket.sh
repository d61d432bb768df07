#!/usr/bin/env bash
# The WebSocket cases of `make bench` (run.sh runs this; it also runs alone): Moonwire echoing
# through a Lua OnMessage against hummingbird-websocket echoing with no script, memory per idle
# WebSocket, and Moonwire's fan-out of one broadcast to 10,000 subscribers of a channel, on one
# node and over a cluster of three nodes sharing a Redis. The load
# is Tests/bench/wsload/ (C, epoll), built here with cc -O2; it prints its own CPU share
# next to each figure, and reads the server's CPU time and RSS from /proc. Before the fan-out,
# Tests/bench/writefloor.c measures this kernel's price of one write(2) to each subscriber's
# socket with no server at all: the floor that the fan-out's µs per delivery is read against.
#
# Each server runs alone on one core (taskset, Moonwire with --threads 1, hummingbird with one
# event loop thread); wsload runs on another. The echo peers take turns for several rounds.
# Prints every run and the medians on stderr, and one JSON object on stdout (run.sh puts it in
# its results file).
#
#   Tests/bench/websocket.sh [--no-build]
#
# Environment: BENCH_ROUNDS (3), BENCH_DURATION (5), BENCH_WARMUP (1), BENCH_SERVER_CPU (0),
# BENCH_LOAD_CPU (1), BENCH_WS_IDLE (10000 connections), BENCH_WS_SUBSCRIBERS (10000),
# BENCH_WS_FANOUT_ROUNDS (20 publishes of one message, then 3 of BENCH_WS_FANOUT_BURST = 20
# messages in one request), BENCH_HUMMINGBIRD (1; 0 skips building and measuring it),
# MOONWIRE_BIN (.build/release/moonwire; set it to skip the build as well), BENCH_WS_CASES
# ("echo idle fanout cluster": the cases run; e.g. BENCH_WS_CASES=fanout for the fan-out alone;
# cluster is the same fan-out with the subscribers spread over three nodes sharing a Redis).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=Tests/bench/lib.sh
source Tests/bench/lib.sh

rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-5}
warmup=${BENCH_WARMUP:-1}
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
idle_connections=${BENCH_WS_IDLE:-10000}
subscribers=${BENCH_WS_SUBSCRIBERS:-10000}
fanout_rounds=${BENCH_WS_FANOUT_ROUNDS:-20}
fanout_burst=${BENCH_WS_FANOUT_BURST:-20}
hummingbird=${BENCH_HUMMINGBIRD:-1}
cases=" ${BENCH_WS_CASES:-echo idle fanout cluster} "
runs_case() { [[ $cases == *" $1 "* ]]; }
runs_case echo || runs_case idle || hummingbird=0
build=true
[[ -n ${MOONWIRE_BIN:-} ]] && build=false
moonwire_bin=${MOONWIRE_BIN:-.build/release/moonwire}
for argument in "$@"; do
    case "$argument" in
        --no-build) build=false ;;
        *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
    esac
done
for tool in taskset cc curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found; run Tests/tools/setup.sh --bench"
done
(($(nproc) < 2)) && load_cpu=$server_cpu
# wsload's descriptors and the server's: one per connection on each side, plus their own.
most=$((idle_connections > subscribers ? idle_connections : subscribers))
(($(ulimit -Hn) >= most + 100)) || die "the hard limit on open files ($(ulimit -Hn)) is below $((most + 100))"

if $build; then
    say "building release"
    # shellcheck disable=SC2086  # the flags are words
    swift build ${RELEASE_FLAGS:--c release -Xswiftc -enforce-exclusivity=unchecked} >&2
fi
[[ -x $moonwire_bin ]] || die "$moonwire_bin not found (build with: make release)"
mkdir -p .build/bench
wsload=.build/bench/wsload
cc -O2 -Wall -Wextra -Werror -pthread -o "$wsload" Tests/bench/wsload/*.c ||
    die "wsload did not build (gcc and libc6-dev: Tests/tools/setup.sh --bench)"
writefloor=.build/bench/writefloor
cc -O2 -Wall -Wextra -Werror -o "$writefloor" Tests/bench/writefloor.c ||
    die "writefloor did not build (gcc and libc6-dev: Tests/tools/setup.sh --bench)"

# hummingbird-websocket, from the machine's copies of the Swift packages (its own package, not
# in Moonwire's Package.swift). When it cannot be built, the bench says why and goes on.
peer=Tests/bench/peers/hummingbird-ws
hummingbird_bin="" hummingbird_missing=""
if [[ $hummingbird == 1 ]]; then
    say "building hummingbird-websocket (release; $peer)"
    if swift build -c release --package-path "$peer" >"$work/hummingbird-build.log" 2>&1; then
        hummingbird_bin=$peer/.build/release/HummingbirdEcho
    else
        hummingbird_missing="it did not build: $(grep -m1 -E 'error:' "$work/hummingbird-build.log" || tail -1 "$work/hummingbird-build.log")"
        say "hummingbird-websocket is left out: $hummingbird_missing"
    fi
else
    hummingbird_missing="BENCH_HUMMINGBIRD=0"
fi
# uWebSockets has no Debian package; it is measured only where a copy is already installed.
uwebsockets_missing="not on this machine (no Debian package; the bench downloads nothing)"

# Starts a server on the server's CPU with the hard limit on open files; sets `server_pid`.
# taskset execs the server, so the pid is the server's own (its CPU time and RSS).
start_server() {
    local name=$1
    shift
    (ulimit -n "$(ulimit -Hn)" && exec taskset -c "$server_cpu" "$@" >"$work/$name.log" 2>&1) &
    server_pid=$!
    pids+=("$server_pid")
}

start_moonwire() {
    local name=$1 body=$2
    mkdir -p "$work/$name"
    cat >"$work/$name/main.lua"
    port=$(free_port)
    start_server "$name" "$moonwire_bin" serve --host 127.0.0.1 --port "$port" --threads 1 \
        --scripts "$work/$name" --www "$work/$name"
    wait_ready "http://127.0.0.1:$port/hello" "$body" "$server_pid" "$work/$name.log"
}

# Runs wsload on the load's CPU with the hard limit on open files; its JSON goes to stdout,
# its figures for people to stderr.
run_wsload() {
    (ulimit -n "$(ulimit -Hn)" && exec taskset -c "$load_cpu" "$wsload" "$@") ||
        die "wsload $1 failed (its error is above)"
}

# --- echo: Moonwire's Lua OnMessage against hummingbird-websocket ---------------------------

echo_lua='function OnMessage(ws, text) ws:send(text) end'
echo_runs="$work/echo.jsonl"
: >"$echo_runs"
declare -A idle
if runs_case echo; then
start_moonwire echo "404 Not Found" <<<"$echo_lua"
declare -A echo_port echo_pid
echo_port[moonwire]=$port echo_pid[moonwire]=$server_pid
peers=(moonwire)
if [[ -n $hummingbird_bin ]]; then
    port=$(free_port)
    start_server hummingbird "$hummingbird_bin" "$port"
    wait_ready "http://127.0.0.1:$port/hello" hello "$server_pid" "$work/hummingbird.log"
    echo_port[hummingbird]=$port echo_pid[hummingbird]=$server_pid
    peers+=(hummingbird)
fi
say "websocket echo: 100 connections, 20-byte messages, one in flight each, ${duration}s, $rounds rounds; servers on CPU $server_cpu, wsload on CPU $load_cpu"
echo_args=(--connections 100 --size 20 --inflight 1)
if ((warmup > 0)); then
    for peer in "${peers[@]}"; do
        printf '  ws-echo warm-up %-11s ' "$peer" >&2
        run_wsload echo "127.0.0.1:${echo_port[$peer]}" "${echo_args[@]}" --seconds "$warmup" --pid "${echo_pid[$peer]}" >/dev/null
    done
fi
for ((round = 1; round <= rounds; round++)); do
    # Alternate who goes first so a trend on the machine does not favour one side.
    order=("${peers[@]}")
    if ((round % 2 == 0)); then
        order=()
        for ((i = ${#peers[@]} - 1; i >= 0; i--)); do order+=("${peers[i]}"); done
    fi
    for peer in "${order[@]}"; do
        printf '  ws-echo round %d %-11s ' "$round" "$peer" >&2
        read -r server_busy server_all < <(cpu_jiffies "$server_cpu")
        result=$(run_wsload echo "127.0.0.1:${echo_port[$peer]}" "${echo_args[@]}" --seconds "$duration" \
            --pid "${echo_pid[$peer]}")
        # How busy the server's CPU was, whoever used it: well above the server's own share,
        # other programs took the CPU, and messages/s measure the machine, not the server.
        read -r busy all < <(cpu_jiffies "$server_cpu")
        core_share=$(((busy - server_busy) * 100 / (all - server_all > 0 ? all - server_all : 1)))
        echo "    CPU $server_cpu was ${core_share}% busy (the server and whatever else ran there)" >&2
        echo "{\"peer\": \"$peer\", \"round\": $round, \"server_core_busy_percent\": $core_share, \"run\": $result}" >>"$echo_runs"
    done
done

fi

# --- idle: RSS per open WebSocket -------------------------------------------------------------

if runs_case idle; then
say "websocket idle: $idle_connections connections held open (RSS growth of the server)"
peers=(moonwire)
[[ -n $hummingbird_bin ]] && peers+=(hummingbird)
for peer in "${peers[@]}"; do
    # A fresh server, so the echo runs' buffers and the allocator's state do not count.
    if [[ $peer == moonwire ]]; then
        start_moonwire idle-moonwire "404 Not Found" <<<"$echo_lua"
    else
        port=$(free_port)
        start_server idle-hummingbird "$hummingbird_bin" "$port"
        wait_ready "http://127.0.0.1:$port/hello" hello "$server_pid" "$work/idle-hummingbird.log"
    fi
    idle[$peer]=$(run_wsload idle "127.0.0.1:$port" --connections "$idle_connections" --pid "$server_pid")
done
fi

# --- fan-out: one broadcast to every subscriber of a channel (Moonwire) ----------------------

fanout_one=null fanout_burst_result=null fanout_floor=null
if runs_case fanout; then
# The floor under any server: one write(2) per subscriber socket on the server's core, no server.
fanout_floor=$( (ulimit -n "$(ulimit -Hn)" && exec taskset -c "$server_cpu" "$writefloor" --sockets "$subscribers" \
    --rounds "$fanout_rounds" --reader-cpu "$load_cpu")) || die "writefloor failed (its error is above)"
say "websocket fan-out: $subscribers subscribers of one channel; $fanout_rounds publishes of one 64-byte message, then 3 of $fanout_burst"
fanout_lua=$(cat <<'LUA'
moonwire.options{ heartbeat = { interval = 0 } }
function OnConnect(ws) ws:subscribe("bench"); ws:send("subscribed") end
moonwire.get("^/hello$", function(req, res) res:send("hello") end)
-- GET /publish?seq=R&n=N: N broadcasts of a 64-byte message starting "R:" (wsload's round).
local pad = string.rep("m", 64)
moonwire.get("^/publish$", function(req, res)
  local prefix = req.query.seq .. ":"
  local message = prefix .. pad:sub(#prefix + 1)
  for _ = 1, tonumber(req.query.n) do moonwire.broadcast(message, { channel = "bench" }) end
  res:send("ok")
end)
LUA
)
start_moonwire fanout hello <<<"$fanout_lua"
fanout_one=$(run_wsload fanout "127.0.0.1:$port" --connections "$subscribers" --rounds "$fanout_rounds" --burst 1 --pid "$server_pid")
fanout_burst_result=$(run_wsload fanout "127.0.0.1:$port" --connections "$subscribers" --rounds 3 --burst "$fanout_burst" --pid "$server_pid")
fi

# --- fan-out over a cluster: the same publishes, the subscribers spread over three nodes -------

fanout_cluster=null
if runs_case cluster; then
command -v redis-server >/dev/null || die "redis-server not found; run Tests/tools/setup.sh --bench"
say "websocket fan-out over 3 nodes and Redis (all on CPU $server_cpu): $subscribers subscribers spread over the nodes; $fanout_rounds publishes of one 64-byte message to the first node"
redis_port=$(free_port)
start_server redis redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no
redis_pid=$server_pid
for _ in {1..50}; do
    [[ $(redis-cli -p "$redis_port" ping 2>/dev/null) == PONG ]] && break
    sleep 0.1
done
addresses=() node_pids=()
for node in 1 2 3; do
    start_moonwire "cluster-$node" hello <<<"moonwire.options{cluster = {redis = \"redis://127.0.0.1:$redis_port/0\", node = \"node-$node\"}}
$fanout_lua"
    addresses+=("127.0.0.1:$port") node_pids+=("$server_pid")
done
# The nodes' and Redis's CPU and RSS together: --pid takes one per address, so Redis's CPU is
# read apart (its jiffies before and after) and added in the summary.
redis_cpu_before=$(awk '{print $14 + $15}' "/proc/$redis_pid/stat")
fanout_cluster=$(run_wsload fanout "$(IFS=,; echo "${addresses[*]}")" --connections "$subscribers" --rounds "$fanout_rounds" --burst 1 --pid "$(IFS=,; echo "${node_pids[*]}")")
redis_cpu_jiffies=$(($(awk '{print $14 + $15}' "/proc/$redis_pid/stat") - redis_cpu_before))
fanout_cluster=$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r["redis_cpu_seconds"] = int(sys.argv[2]) / int(sys.argv[3]); print(json.dumps(r))' \
    "$fanout_cluster" "$redis_cpu_jiffies" "$(getconf CLK_TCK)")
fi

# --- summary ----------------------------------------------------------------------------------

BENCH_ECHO_RUNS=$echo_runs BENCH_IDLE_MOONWIRE=${idle[moonwire]:-null} BENCH_IDLE_HUMMINGBIRD=${idle[hummingbird]:-null} \
BENCH_FANOUT_ONE=$fanout_one BENCH_FANOUT_BURST=$fanout_burst_result BENCH_FANOUT_CLUSTER=$fanout_cluster \
BENCH_FANOUT_FLOOR=$fanout_floor \
BENCH_HUMMINGBIRD_MISSING=$hummingbird_missing BENCH_UWEBSOCKETS_MISSING=$uwebsockets_missing \
python3 - <<'PY'
import json, os, statistics, sys

env = os.environ
runs = [json.loads(line) for line in open(env["BENCH_ECHO_RUNS"])]
echo = {}
for peer in dict.fromkeys(r["peer"] for r in runs):
    mine = [dict(r["run"], server_core_busy_percent=r["server_core_busy_percent"]) for r in runs if r["peer"] == peer]
    echo[peer] = {
        "runs": mine,
        "median_messages_per_second": round(statistics.median(r["messages_per_second"] for r in mine)),
        "median_server_cpu_us_per_message": round(statistics.median(r["server_cpu_us_per_message"] for r in mine), 2),
        "median_client_cpu_share": round(statistics.median(r["client_cpu_share"] for r in mine), 3),
    }
def say(text): print("  " + text, file=sys.stderr)
for peer, e in echo.items():
    say(f"ws-echo {peer}: {e['median_messages_per_second']} msg/s, server CPU {e['median_server_cpu_us_per_message']} µs "
        f"per message (medians; wsload's CPU share {e['median_client_cpu_share']:.0%})")
result = {"echo": echo}
if "hummingbird" in echo and "moonwire" in echo:
    m, h = echo["moonwire"], echo["hummingbird"]
    result["moonwire_over_hummingbird"] = {
        "messages_per_second": round(m["median_messages_per_second"] / h["median_messages_per_second"], 3),
        "server_cpu_per_message": round(m["median_server_cpu_us_per_message"] / h["median_server_cpu_us_per_message"], 3)}
    r = result["moonwire_over_hummingbird"]
    say(f"ws-echo moonwire/hummingbird: {r['messages_per_second']:.2f}× the messages/s (goal: at least 2), "
        f"{r['server_cpu_per_message']:.2f} of the server CPU per message (goal: at most 0.5)")
elif echo:
    result["hummingbird_missing"] = env["BENCH_HUMMINGBIRD_MISSING"]
    say(f"ws-echo hummingbird-websocket: not measured: {env['BENCH_HUMMINGBIRD_MISSING']}")
result["uwebsockets_missing"] = env["BENCH_UWEBSOCKETS_MISSING"]
say(f"uWebSockets: not measured: {env['BENCH_UWEBSOCKETS_MISSING']}")
result["idle"] = {"moonwire": json.loads(env["BENCH_IDLE_MOONWIRE"]),
                  "hummingbird": json.loads(env["BENCH_IDLE_HUMMINGBIRD"])}
for peer, i in result["idle"].items():
    if i:
        say(f"ws-idle {peer}: {i['kib_per_connection']} KiB RSS per WebSocket over {i['connections']} "
            f"({i['rss_before_kib']} -> {i['rss_after_kib']} KiB; goal for moonwire: at most 2)")
result["fanout"] = {"one": json.loads(env["BENCH_FANOUT_ONE"]), "burst": json.loads(env["BENCH_FANOUT_BURST"])}
for name, f in result["fanout"].items():
    if not f: continue
    say(f"ws-fanout moonwire, {f['burst']} message(s) per publish: {f['deliveries_per_second']} deliveries/s to "
        f"{f['connections']} subscribers (goal: 1,000,000), server CPU {f['server_cpu_us_per_delivery']} µs per delivery, "
        f"publish to receipt p50 {f['latency_ms']['p50']} ms p99 {f['latency_ms']['p99']} ms; the loop held up to "
        f"{f['loop_held_max_ms']} ms (goal: a few), publish request up to {f['publish_rtt_max_ms']} ms; "
        f"wsload's CPU share {f['client_cpu_share']:.0%}")
floor = json.loads(env["BENCH_FANOUT_FLOOR"])
if floor:
    result["fanout"]["floor"] = floor
    one = result["fanout"]["one"]
    say(f"ws-fanout floor: {floor['us_per_write']} µs per write(2) of one frame to each of {floor['sockets']} loopback "
        f"sockets, no server ({1e6 / floor['us_per_write']:.0f} deliveries/s with one write per subscriber); "
        f"moonwire's one-message fan-out: {1e6 / one['deliveries_per_second']:.2f} µs per delivery, "
        f"{floor['us_per_write'] * one['deliveries_per_second'] / 1e6:.2f} of the floor's rate")
cluster = json.loads(env["BENCH_FANOUT_CLUSTER"])
if cluster:
    result["fanout"]["cluster"] = cluster
    say(f"ws-fanout over 3 nodes and Redis, one message per publish: {cluster['deliveries_per_second']} deliveries/s to "
        f"{cluster['connections']} subscribers, the nodes' CPU {cluster['server_cpu_us_per_delivery']} µs per delivery "
        f"(Redis {cluster['redis_cpu_seconds']:.2f} s in all), publish to receipt p50 {cluster['latency_ms']['p50']} ms "
        f"p99 {cluster['latency_ms']['p99']} ms; wsload's CPU share {cluster['client_cpu_share']:.0%}")
    one = result["fanout"]["one"]
    if one:
        say(f"ws-fanout 3 nodes / 1 node: {cluster['deliveries_per_second'] / one['deliveries_per_second']:.2f} of the "
            f"deliveries/s, p99 {cluster['latency_ms']['p99']} ms against {one['latency_ms']['p99']} ms")
print(json.dumps(result))
PY
