"""HTTP/2: h2 over TLS (ALPN) and cleartext h2c (prior knowledge and Upgrade) feeding the same
request model and Lua routes, SETTINGS from moonwire.options{http2}, server push, the worker
pool of OnHTTP2BeforeAsyncRequest, protocol errors answered with GOAWAY, flow control with
10 MiB bodies, multiplexing and stream resets; the h2 library (http2_client.py), httpx, curl,
nghttp and h2load as clients, loopback only."""
import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time

import h2.errors
import httpx
import pytest

from http2_client import (ACK, CANCEL, COMPRESSION_ERROR, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING,
                          PREFACE, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, SETTINGS, SETTINGS_ENABLE_PUSH,
                          SETTINGS_FRAME, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS,
                          WINDOW_UPDATE, RawH2, frame, goaway_codes, parse_frames, raw_connect, read_until_closed,
                          recv_some, target_of)
from harness import wait_until
from tls_certs import client_context, start_tls

BIG = 10 * 1024 * 1024

APP = r"""
moonwire.options{ limits = { max_body_size = 32 * 1024 * 1024 } }
moonwire.get("/info", function(req, res)
  res:json({version = req.version, scheme = req.scheme, method = req.method, path = req.path,
            q = req.query.q, agent = req:header("user-agent")})
end)
moonwire.post("/length", function(req, res) res:send(tostring(#req.body)) end)
moonwire.get("/custom", function(req, res)
  res.status = 201
  res:header("X-Custom", "yes")
  res:send("made")
end)
moonwire.get("/stream", function(req, res)
  for i = 1, 5 do res:write("part" .. i .. ";"); moonwire.sleep(0.02) end
  res:finish()
end)
moonwire.get([[/sleep/(\d+)]], function(req, res) moonwire.sleep(0.1); res:send("slept " .. req.params[1]) end)
moonwire.get("/fast", function(req, res) res:send("ok") end)
local a = moonwire.vhost([[^a\.test$]])
a:get("/who", function(req, res) res:send("vhost a") end)
moonwire.get("/who", function(req, res) res:send("default host") end)
"""

PUSH_APP = r"""
moonwire.get("/generated.js", function(req, res)
  res:header("Content-Type", "application/javascript")
  res:send("// made by a route")
end)
moonwire.push_preload("/index.html", {"/style.css", "/app.js", "/generated.js"})
moonwire.push_preload("/gone.html", {"/style.css"})
moonwire.push_remove("/gone.html")
"""

POOL_APP = r"""
moonwire.options{ limits = { instructions = 0 } }   -- no VM instruction budget: /heavy spins on purpose
local function where(req, res) res:send(tostring(moonwire.worker)) end
moonwire.get("/worker", where)
moonwire.get("/pool/worker", where)
moonwire.get("/fast", function(req, res) res:send("fast") end)
moonwire.get("/heavy", function(req, res)
  local started = os.clock()
  while os.clock() - started < 2 do end
  res:send("heavy done")
end)
function OnHTTP2BeforeAsyncRequest(req)
  return req.path == "/heavy" or req.path:sub(1, 6) == "/pool/"
end
"""

SITE = {
    "index.html": b"<!doctype html><link rel=stylesheet href=/style.css><script src=/app.js></script>index",
    "gone.html": b"<!doctype html><p>no pushes here</p>",
    "style.css": b"body { color: #123456 }\n" * 20,
    "app.js": b"console.log('app');\n" * 30,
}


# --- servers and targets -------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    for name, content in SITE.items():
        (www / name).write_bytes(content)
    (www / "big.bin").write_bytes(os.urandom(BIG))
    return www


@pytest.fixture(scope="module")
def server(moonwire_module, certs, site):
    """One server with APP for the tests that only read: a TLS listener and the plain port."""
    return start_tls(moonwire_module, certs, APP, www=site, threads=2)


@pytest.fixture(params=["tls", "h2c"])
def target(request, server, certs):
    return target_of(server, certs, request.param)


def tool(name):
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    return name


def run(*arguments, timeout=60):
    return subprocess.run(list(arguments), capture_output=True, text=True, timeout=timeout)


# --- the request model ---------------------------------------------------------------------

def test_request_model_on_h2(target):
    with target.h2() as client:
        reply = client.get("/info?q=hi%20there", headers=[("user-agent", "h2-test/1")])
    assert reply.status == 200
    assert json.loads(reply.body) == {
        "version": "2", "scheme": target.scheme, "method": "GET", "path": "/info", "q": "hi there",
        "agent": "h2-test/1"}


def test_status_headers_and_json_on_h2(target):
    with target.httpx() as client:
        made = client.get(target.url + "/custom")
        info = client.get(target.url + "/info")
    assert made.http_version == "HTTP/2"
    assert made.status_code == 201 and made.headers["x-custom"] == "yes" and made.text == "made"
    assert info.headers["content-type"].startswith("application/json") and info.json()["version"] == "2"


def test_streamed_response_on_h2(target):
    with target.httpx() as client:
        reply = client.get(target.url + "/stream")
    assert reply.http_version == "HTTP/2" and reply.status_code == 200
    assert reply.text == "part1;part2;part3;part4;part5;"


def test_static_files_and_404_on_h2(target):
    with target.httpx() as client:
        css = client.get(target.url + "/style.css")
        missing = client.get(target.url + "/missing.css")
    assert css.status_code == 200 and css.content == SITE["style.css"]
    assert css.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404


def test_virtual_host_by_authority_on_h2(target):
    with target.h2() as client:
        assert bytes(client.get("/who", authority="a.test").body) == b"vhost a"
        assert bytes(client.get("/who").body) == b"default host"


def test_sleeping_streams_run_side_by_side(target):
    with target.h2() as client:
        started = time.monotonic()
        streams = [client.request("GET", f"/sleep/{i}") for i in range(20)]
        assert client.wait(lambda: all(client.responses[s].done for s in streams), timeout=15)
        elapsed = time.monotonic() - started
    assert [bytes(client.responses[s].body) for s in streams] == [f"slept {i}".encode() for i in range(20)]
    assert elapsed < 1.5, f"20 streams sleeping 0.1 s each took {elapsed:.2f} s: they did not overlap"


# --- h2c -----------------------------------------------------------------------------------

def curl_version_and_body(*arguments):
    result = run(tool("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_version}", *arguments, timeout=20)
    assert result.returncode == 0, result.stderr
    body, version = result.stdout.rsplit("\n", 1)
    return version, body


def test_h2c_by_prior_knowledge_with_curl(server):
    version, body = curl_version_and_body("--http2-prior-knowledge", f"{server.url}/info")
    assert version == "2"
    data = json.loads(body)
    assert data["version"] == "2" and data["scheme"] == "http"


def test_h2c_by_upgrade_with_curl(server):
    """curl --http2 on http:// sends `Upgrade: h2c`; after the 101 the next request on the same
    connection is a plain HTTP/2 stream."""
    result = run(tool("curl"), "-sS", "--max-time", "10", "--http2", "-w", "\n%{http_version}\n",
                 f"{server.url}/info?q=up", f"{server.url}/info?q=again", timeout=20)
    assert result.returncode == 0, result.stderr
    first, first_version, second, second_version = result.stdout.splitlines()
    assert first_version == "2" and second_version == "2", "the server did not switch to h2c"
    upgraded, following = json.loads(first), json.loads(second)
    assert upgraded["q"] == "up" and upgraded["scheme"] == "http"
    assert upgraded["version"] in ("1.1", "2")   # the upgrading request itself came as HTTP/1.1
    assert following == {"version": "2", "scheme": "http", "method": "GET", "path": "/info", "q": "again",
                         "agent": following["agent"]}


def stream_one_body(frames):
    return b"".join(payload for kind, _, stream, payload in frames if kind == DATA and stream == 1)


def stream_one_ended(frames):
    return any(stream == 1 and kind in (DATA, HEADERS) and flags & END_STREAM for kind, flags, stream, _ in frames)


def test_h2c_upgrade_answers_101_then_frames(server):
    settings = base64.urlsafe_b64encode(b"\x00\x02\x00\x00\x00\x00").rstrip(b"=")   # ENABLE_PUSH = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
        received, deadline = b"", time.monotonic() + 5
        while b"\r\n\r\n" not in received and time.monotonic() < deadline:
            chunk = recv_some(sock, deadline)
            if not chunk:
                break
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"upgrade: h2c" in head.lower()
        sock.sendall(PREFACE + SETTINGS_FRAME)
        while not stream_one_ended(parse_frames(rest)) and time.monotonic() < deadline:
            chunk = recv_some(sock, deadline)   # the answer to the upgraded request is on stream 1
            if not chunk:
                break
            rest += chunk
    frames = parse_frames(rest)
    assert frames and frames[0][:3] == (SETTINGS, 0, 0), "the server preface (SETTINGS) comes first"
    assert any(kind == HEADERS and stream == 1 for kind, _, stream, _ in frames)
    assert stream_one_ended(frames) and stream_one_body(frames) == b"ok"


def test_http11_still_works_on_both_ports(server, certs):
    assert server.get("/info").json()["version"] == "1.1"
    with httpx.Client(verify=client_context(certs), timeout=10) as client:   # ALPN http/1.1 only
        reply = client.get(f"https://127.0.0.1:{server.tls_port}/info")
    assert reply.http_version == "HTTP/1.1" and reply.json() == {
        "version": "1.1", "scheme": "https", "method": "GET", "path": "/info", "agent": reply.request.headers["user-agent"]}


# --- SETTINGS ------------------------------------------------------------------------------

SETTINGS_APP = """
moonwire.options{ http2 = { max_concurrent_streams = 37, initial_window_size = 123456,
                            max_frame_size = 32768, header_table_size = 8192 } }
moonwire.post("/length", function(req, res) res:send(tostring(#req.body)) end)
"""


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_settings_come_from_options(moonwire, certs, kind):
    target = target_of(start_tls(moonwire, certs, SETTINGS_APP), certs, kind)
    with target.h2() as client:
        assert client.wait(lambda: client.settings_received, timeout=5), "no SETTINGS from the server"
        remote = client.conn.remote_settings
        assert remote.max_concurrent_streams == 37
        assert remote.initial_window_size == 123456
        assert remote.max_frame_size == 32768
        assert remote.header_table_size == 8192
        body = os.urandom(300_000)     # more than one initial window: flow control with the new size
        reply = client.finish(client.request("POST", "/length", body=body))
    assert reply.status == 200 and bytes(reply.body) == b"300000"


def test_settings_seen_by_nghttp(moonwire, certs):
    server = start_tls(moonwire, certs, SETTINGS_APP)
    result = run(tool("nghttp"), "-nv", f"{server.url}/length", timeout=20)   # http:// : h2c prior knowledge
    assert "recv SETTINGS frame" in result.stdout, result.stdout + result.stderr
    for setting in ("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):37", "SETTINGS_INITIAL_WINDOW_SIZE(0x04):123456",
                    "SETTINGS_MAX_FRAME_SIZE(0x05):32768", "SETTINGS_HEADER_TABLE_SIZE(0x01):8192"):
        assert setting in result.stdout, f"{setting} missing:\n{result.stdout}"


# --- server push ---------------------------------------------------------------------------

@pytest.fixture
def push_server(moonwire, certs, site):
    return start_tls(moonwire, certs, PUSH_APP, www=site)


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_push_preload_promises_each_link(push_server, certs, kind):
    target = target_of(push_server, certs, kind)
    with target.h2() as client:
        page = client.request("GET", "/index.html")
        assert client.wait(lambda: client.responses[page].done and len(client.pushes) == 3
                           and all(client.responses[pushed].done for pushed, _, _ in client.pushes), timeout=10), \
            f"pushes: {client.pushes}"
    assert client.responses[page].status == 200 and bytes(client.responses[page].body) == SITE["index.html"]
    promised = [headers[":path"] for _, _, headers in client.pushes]
    assert sorted(promised) == ["/app.js", "/generated.js", "/style.css"]
    for pushed, parent, headers in client.pushes:
        assert parent == page and pushed % 2 == 0, "pushed streams are even and belong to the page's stream"
        assert headers[":method"] == "GET" and headers[":scheme"] == target.scheme
        assert client.responses[pushed].status == 200
    bodies = {headers[":path"]: bytes(client.responses[pushed].body) for pushed, _, headers in client.pushes}
    assert bodies == {"/style.css": SITE["style.css"], "/app.js": SITE["app.js"],
                      "/generated.js": b"// made by a route"}


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_no_push_when_the_client_disables_it(push_server, certs, kind):
    target = target_of(push_server, certs, kind)
    with target.h2(push=False) as client:     # the h2 library raises if a PUSH_PROMISE arrives anyway
        reply = client.get("/index.html")
        client.wait(lambda: False, timeout=0.5)
    assert reply.status == 200 and bytes(reply.body) == SITE["index.html"]
    assert client.pushes == []


def test_push_remove_drops_the_entry(push_server, certs):
    with target_of(push_server, certs, "tls").h2() as client:
        reply = client.get("/gone.html")
        client.wait(lambda: False, timeout=0.5)
        assert reply.status == 200 and bytes(reply.body) == SITE["gone.html"]
        assert client.pushes == []
        client.get("/index.html")
        assert client.wait(lambda: len(client.pushes) == 3, timeout=5), "control: /index.html still pushes"


def test_push_seen_by_nghttp(push_server):
    nghttp = tool("nghttp")
    pushed = run(nghttp, "-nv", f"https://127.0.0.1:{push_server.tls_port}/index.html", timeout=20)
    assert pushed.stdout.count("recv PUSH_PROMISE") == 3, pushed.stdout + pushed.stderr
    for path in ("/style.css", "/app.js", "/generated.js"):
        assert f":path: {path}" in pushed.stdout
    refused = run(nghttp, "-nv", "--no-push", f"https://127.0.0.1:{push_server.tls_port}/index.html", timeout=20)
    assert "PUSH_PROMISE" not in refused.stdout
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", refused.stdout), refused.stdout


def test_curl_gets_the_pushed_page_without_push(push_server, certs):
    version, body = curl_version_and_body("--http2", "--cacert", str(certs.ca),
                                          f"https://127.0.0.1:{push_server.tls_port}/index.html")
    assert version == "2" and body.encode() == SITE["index.html"]


# --- the worker pool -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_async_requests_run_on_worker_vms(moonwire, certs, kind):
    server = start_tls(moonwire, certs, POOL_APP)
    with target_of(server, certs, kind).h2() as client:
        assert bytes(client.get("/pool/worker").body) == b"true"
        assert bytes(client.get("/worker").body) == b"false"
    assert server.get("/pool/worker").text == "false", "OnHTTP2BeforeAsyncRequest is for HTTP/2 requests only"


def test_heavy_pool_request_does_not_stall_others(moonwire, certs):
    server = start_tls(moonwire, certs, POOL_APP, threads=1)   # one event loop: a stall would show
    target = target_of(server, certs, "h2c")
    with target.h2() as client:
        heavy = client.request("GET", "/heavy")
        time.sleep(0.3)
        started = time.monotonic()
        fast = client.request("GET", "/fast")
        same_connection = client.finish(fast, timeout=10)
        same_elapsed = time.monotonic() - started
        started = time.monotonic()
        other = httpx.get(server.url + "/fast", timeout=10)
        other_elapsed = time.monotonic() - started
        heavy_still_running = not client.responses[heavy].done
        slow = client.finish(heavy, timeout=20)
    assert same_connection.status == 200 and bytes(same_connection.body) == b"fast"
    assert other.status_code == 200 and other.text == "fast"
    assert same_elapsed < 1.0, f"a stream on the same connection waited {same_elapsed:.2f} s behind /heavy"
    assert other_elapsed < 1.0, f"an HTTP/1.1 request waited {other_elapsed:.2f} s behind /heavy"
    assert heavy_still_running, "/heavy (2 s of CPU) finished before the fast requests: it did not overlap them"
    assert slow.status == 200 and bytes(slow.body) == b"heavy done"


# --- protocol errors -----------------------------------------------------------------------

BAD_PREFACES = {
    "broken preface": b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SETTINGS_FRAME,
    "frame instead of SETTINGS": PREFACE + frame(DATA, END_STREAM, 1, b"garbage"),
}

CONNECTION_ERRORS = {      # after a valid preface; RFC 9113 names the error code for each
    "DATA on stream 0": (frame(DATA, 0, 0, b"data"), PROTOCOL_ERROR),
    "HEADERS on stream 0": (frame(HEADERS, END_HEADERS | END_STREAM, 0, b"\x82"), PROTOCOL_ERROR),
    "RST_STREAM on stream 0": (frame(RST_STREAM, 0, 0, (8).to_bytes(4, "big")), PROTOCOL_ERROR),
    "PING on stream 1": (frame(PING, 0, 1, bytes(8)), PROTOCOL_ERROR),
    "bad HPACK block": (frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xc6"), COMPRESSION_ERROR),  # index 70: no such entry
}


def assert_others_unharmed(target, earlier):
    reply = earlier.get("/fast", timeout=5)
    assert reply.status == 200 and bytes(reply.body) == b"ok", "a connection opened before was harmed"
    with target.h2() as fresh:
        assert fresh.get("/fast", timeout=5).status == 200


@pytest.mark.parametrize("case", list(BAD_PREFACES))
def test_bad_preface_closes_the_connection(target, case):
    with target.h2() as earlier:
        assert earlier.get("/fast").status == 200
        with raw_connect(target) as sock:
            sock.sendall(BAD_PREFACES[case])
            data, closed = read_until_closed(sock)
        assert closed, f"the server kept the connection open after a {case}"
        assert b"HTTP/1.1 200" not in data
        if goaway_codes(data):                 # optional here: the peer is not speaking HTTP/2
            assert goaway_codes(data)[0] == PROTOCOL_ERROR
        assert_others_unharmed(target, earlier)


@pytest.mark.parametrize("case", list(CONNECTION_ERRORS))
def test_connection_error_sends_goaway_and_closes(target, case):
    bad, code = CONNECTION_ERRORS[case]
    with target.h2() as earlier:
        assert earlier.get("/fast").status == 200
        with raw_connect(target) as sock:
            sock.sendall(PREFACE + SETTINGS_FRAME + bad)
            data, closed = read_until_closed(sock)
        codes = goaway_codes(data)
        assert codes and set(codes) == {code}, \
            f"expected GOAWAY with error {code}, got frames {[f[:3] for f in parse_frames(data)]} codes {codes}"
        assert closed, "the server should close after its GOAWAY"
        assert_others_unharmed(target, earlier)


# --- flow control and large bodies ---------------------------------------------------------

def test_ten_mib_request_body(target):
    body = os.urandom(BIG)
    with target.httpx() as client:
        reply = client.post(target.url + "/length", content=body)
    assert reply.http_version == "HTTP/2" and reply.status_code == 200
    assert reply.text == str(BIG)


def test_ten_mib_request_body_with_the_h2_library(target):
    with target.h2() as client:
        reply = client.finish(client.request("POST", "/length", body=b"z" * BIG), timeout=30)
    assert reply.status == 200 and bytes(reply.body) == str(BIG).encode()


def test_ten_mib_response_body(target, site):
    expected = hashlib.sha256((site / "big.bin").read_bytes()).hexdigest()
    with target.httpx() as client:
        reply = client.get(target.url + "/big.bin", headers={"Accept-Encoding": "identity"})
    assert reply.http_version == "HTTP/2" and reply.status_code == 200
    assert len(reply.content) == BIG and hashlib.sha256(reply.content).hexdigest() == expected


# --- multiplexing and resets ---------------------------------------------------------------

def test_two_hundred_streams_on_one_connection(target):
    total, done = 200, {}
    with target.h2() as client:
        assert client.wait(lambda: client.settings_received, timeout=5)
        in_flight, next_index = {}, 0
        deadline = time.monotonic() + 30
        while len(done) < total and time.monotonic() < deadline and not client.closed:
            limit = min(client.conn.remote_settings.max_concurrent_streams, 100)
            while next_index < total and len(in_flight) < limit:
                in_flight[client.request("GET", f"/sleep/{next_index}")] = next_index
                next_index += 1
            client.read_once()
            for stream in [s for s in in_flight if client.responses[s].done]:
                response = client.responses[stream]
                done[in_flight.pop(stream)] = (response.status, bytes(response.body))
    assert len(done) == total, f"{len(done)} of {total} streams finished"
    assert all(done[i] == (200, f"slept {i}".encode()) for i in range(total))


def test_two_hundred_requests_with_httpx_async(target, certs):
    async def scenario():
        options = {"http2": True, "timeout": 30}
        options.update({"verify": client_context(certs)} if target.tls else {"http1": False})
        async with httpx.AsyncClient(**options) as client:
            replies = await asyncio.gather(*(client.get(f"{target.url}/sleep/{i}") for i in range(200)))
        return [(r.status_code, r.http_version, r.text) for r in replies]
    replies = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert replies == [(200, "HTTP/2", f"slept {i}") for i in range(200)]


def test_reset_stream_mid_body_keeps_the_connection(target, server):
    with target.h2() as client:
        stream = client.request("POST", "/length", headers=[("content-length", "100000")], body=b"p" * 1000,
                                end_stream=False)
        client.conn.reset_stream(stream, error_code=h2.errors.ErrorCodes.CANCEL)
        client.flush()
        reply = client.get("/info", timeout=5)
        assert reply.status == 200, "the connection should stay usable after a client RST_STREAM"
        again = client.finish(client.request("POST", "/length", body=b"q" * 5000))
        assert bytes(again.body) == b"5000"
        assert client.terminated is None and not client.closed
    assert server.get("/fast").text == "ok"


# --- load ----------------------------------------------------------------------------------

def test_h2load_all_requests_succeed(target):
    result = run(tool("h2load"), "-n", "2000", "-c", "4", "-m", "8", f"{target.url}/fast", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Application protocol: h2" in result.stdout or "Application protocol: h2c" in result.stdout, result.stdout
    succeeded = re.search(r"(\d+) succeeded", result.stdout)
    assert succeeded and int(succeeded.group(1)) == 2000, result.stdout
    assert re.search(r"status codes: 2000 2xx", result.stdout), result.stdout


# --- clients that stall or overreach -------------------------------------------------------

STALL_APP = r"""
moonwire.options{ limits = { send_timeout = 2 } }
moonwire.get("/fast", function(req, res) res:send("ok") end)
"""


@pytest.fixture(scope="module")
def stall_server(moonwire_module, certs, site):
    """A server whose send timeout is 2 s, serving the 10 MiB big.bin."""
    return start_tls(moonwire_module, certs, STALL_APP, www=site, threads=2)


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_streams_stalled_by_flow_control_hold_no_descriptors_and_are_reset(stall_server, certs, kind):
    # 120 streams of a 10 MiB file with SETTINGS_INITIAL_WINDOW_SIZE=0: none can send a byte.
    # Each held its file open for as long as the client liked (129 descriptors per connection;
    # 8 such clients exhausted a 1,024 limit). Now a stream that cannot send holds no file,
    # and after the send timeout (2 s here) each is reset with RST_STREAM(CANCEL).
    server, target, streams = stall_server, target_of(stall_server, certs, kind), list(range(1, 241, 2))
    mark, rss_before = server.log_mark(), server.rss()
    with RawH2(target, {SETTINGS_INITIAL_WINDOW_SIZE: 0, SETTINGS_ENABLE_PUSH: 0}) as client:
        baseline = server.descriptors()
        started = time.monotonic()
        client.send(b"".join(client.get(stream, "/big.bin") for stream in streams))
        assert client.wait(lambda: client.answered() >= set(streams), timeout=10), "not every stream got its head"
        held = wait_until(lambda: server.descriptors() <= baseline + 4, timeout=5)
        assert held, f"stalled streams hold {server.descriptors() - baseline} descriptors"
        assert server.rss() - rss_before < 64 << 20, "stalled streams grew the server by more than 64 MiB"
        with target.h2() as other:                          # others are served meanwhile
            reply = other.get("/fast", timeout=2)
            assert reply.status == 200 and bytes(reply.body) == b"ok"
        assert client.wait(lambda: set(client.resets()) >= set(streams), timeout=10), \
            f"{len(client.resets())} of {len(streams)} stalled streams were reset"
        elapsed = time.monotonic() - started
        assert set(client.resets().values()) == {CANCEL}
        assert 2 <= elapsed < 8, f"reset after {elapsed:.1f} s with a send timeout of 2 s"
        assert not client.of_type(DATA) and not client.of_type(GOAWAY)
    assert server.wait_for_log("could send nothing for 2 s: reset (CANCEL)", since=mark), server.log_since(mark)
    assert wait_until(lambda: server.descriptors() < baseline, timeout=5), "the connection's descriptor stayed"


def test_a_client_that_reads_nothing_is_closed_after_the_send_timeout(stall_server, certs):
    # Big windows, but the socket is never read: the server's socket buffer fills, and after
    # the send timeout the connection is closed, its streams with it.
    server = stall_server
    target = target_of(server, certs, "h2c")
    mark = server.log_mark()
    with RawH2(target, {SETTINGS_INITIAL_WINDOW_SIZE: 0x7FFFFFFF, SETTINGS_ENABLE_PUSH: 0}) as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        baseline = server.descriptors()
        client.send(frame(WINDOW_UPDATE, 0, 0, (0x7FFFFFFF - 65535).to_bytes(4, "big")) +
                    b"".join(client.get(stream, "/big.bin") for stream in (1, 3, 5, 7)))
        assert server.wait_for_log("read nothing for 2 s: connection closed", since=mark, timeout=10), \
            server.log_since(mark)
        assert wait_until(lambda: server.descriptors() < baseline, timeout=5), "the connection stayed open"
    assert server.get("/fast").text == "ok"


def test_a_stream_over_the_limit_is_refused_alone(stall_server, certs):
    # The 129th concurrent stream got GOAWAY(PROTOCOL_ERROR), which killed the 128 legitimate
    # ones with it; RFC 9113 section 5.1.2 lets the server refuse that stream alone.
    server, target = stall_server, target_of(stall_server, certs, "tls")
    mark = server.log_mark()
    with RawH2(target, {SETTINGS_INITIAL_WINDOW_SIZE: 0, SETTINGS_ENABLE_PUSH: 0}) as client:
        assert client.server_settings()[SETTINGS_MAX_CONCURRENT_STREAMS] == 128
        streams = list(range(1, 257, 2))                    # 128 streams, held open by the zero window
        client.send(b"".join(client.get(stream, "/big.bin") for stream in streams))
        assert client.wait(lambda: client.answered() >= set(streams), timeout=10)
        client.send(client.get(257, "/big.bin") + frame(PING, 0, 0, b"stillhere"[:8]))
        assert client.wait(lambda: 257 in client.resets(), timeout=5), "the stream over the limit was not refused"
        assert client.resets() == {257: REFUSED_STREAM}
        assert client.wait(lambda: any(flags & ACK for _, flags, _ in client.of_type(PING)), timeout=5)
        assert not client.of_type(GOAWAY) and not client.closed
        client.send(frame(WINDOW_UPDATE, 0, 1, (1000).to_bytes(4, "big")))    # the first stream goes on
        assert client.wait(lambda: any(stream == 1 for stream, _, _ in client.of_type(DATA)), timeout=5)
    assert server.wait_for_log("more than 128 concurrent streams: refused (REFUSED_STREAM)", since=mark)
