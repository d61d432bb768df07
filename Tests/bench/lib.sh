# Shared by Tests/bench/run.sh and Tests/bench/websocket.sh (sourced, not run): messages, a
# work folder removed on exit with every server started into `pids` stopped, free ports, and
# waiting for a server to answer.

say() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

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

# Busy jiffies and all jiffies of one CPU so far (/proc/stat), for how busy a CPU was.
cpu_jiffies() {
    awk -v cpu="cpu$1" '$1 == cpu { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers `body`, or fails showing the server's logs (and `ready_hint`).
# An https URL must verify against the run's certificate and answer over HTTP/2.
ready_hint=""
wait_ready() {
    local url=$1 body=$2 pid=$3 options=()
    shift 3
    [[ $url == https:* ]] && options=(--cacert "$work/tls/localhost.pem" --http2)
    for _ in {1..200}; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$@" >&2 2>/dev/null || true
            die "the server for $url exited"
        fi
        if [[ $(curl -s --max-time 1 "${options[@]}" "$url" 2>/dev/null) == "$body" ]]; then
            [[ $url == https:* ]] || return 0
            local version
            version=$(curl -s --max-time 1 "${options[@]}" -o /dev/null -w '%{http_version}' "$url" 2>/dev/null || true)
            [[ $version == 2 ]] && return 0
            die "$url answers over HTTP/$version, not HTTP/2 (no h2 in its TLS ALPN)"
        fi
        sleep 0.1
    done
    cat "$@" >&2 2>/dev/null || true
    die "no answer \"$body\" from $url within 20 s${ready_hint:+; $ready_hint}"
}

