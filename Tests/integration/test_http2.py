"""HTTP/2: h2 over TLS (ALPN) and cleartext h2c (prior knowledge and Upgrade) feeding the same
request model and Lua routes, SETTINGS from moonwire.options{http2}, server push and the worker
pool of OnHTTP2BeforeAsyncRequest; the h2 library (http2_client.py), httpx, curl and nghttp as
clients, loopback only. Bad input, large bodies and flow control: test_http2_limits.py.
Each test runs on both HTTP/2 engines (nio, nghttp2: http2_site.py), server push on nio only."""
import base64
import json
import os
import re
import socket
import time

import httpx
import pytest

from http2_client import (DATA, END_STREAM, HEADERS, PREFACE, SETTINGS, SETTINGS_FRAME, parse_frames, read_head, recv_some,
                          target_of)
from http2_site import (SITE, curl_version_and_body, engine, moonwire, moonwire_module, run,  # noqa: F401 (fixtures)
                        server, site, target, tool)
from tls_certs import client_context, start_tls

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
        deadline = time.monotonic() + 5
        head, rest = read_head(sock, deadline)
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
