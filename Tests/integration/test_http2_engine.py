"""What the choice of HTTP/2 engine (`moonwire.options{ http2 = { engine = ... } }`, issue 27)
brings of its own: the option is checked at load; with "nghttp2", curl (h2c by prior knowledge,
h2 over TLS by ALPN) and h2load are served by the Lua routes, streams over
SETTINGS_MAX_CONCURRENT_STREAMS are refused alone (REFUSED_STREAM), garbage after the preface
ends that connection only (GOAWAY), a malformed request resets its stream alone with a log
line and OnError (as nio does), 5 MB go both ways through flow control, a streamed Lua
answer arrives whole, 100 Continue, 413 and 431 are answered on their stream, and a graceful
stop sends GOAWAY and finishes the stream under way; an h2c Upgrade switches the connection to
the engine (test_http2_session_upgrade.py has the rest of it).
These run on nio too (the `engine` fixture of http2_site.py), as the control that tells a
fault of the new engine from one of the test. The rest of what the two engines share is in
test_http2.py and test_http2_limits.py. Loopback only."""
import hashlib
import os
import random
import re
import signal
import time

import pytest

from harness import run_cli, wait_until
from http2_client import (ACK, DATA, END_HEADERS, END_STREAM, FRAME_SIZE_ERROR, GOAWAY, HEADERS, PING, PREFACE,
                          PROTOCOL_ERROR, REFUSED_STREAM, SETTINGS_FRAME, RawH2, Target, frame, goaway_codes,
                          raw_connect, read_until_closed)
# `target` is http2_site's, over this module's `server`.
from http2_site import curl_version_and_body, engine, moonwire, moonwire_module, run, target, tool  # noqa: F401
from tls_certs import start_tls

ENGINE_ERROR = 'http2.engine must be "nio" or "nghttp2"'
FIVE_MB = 5 * 1000 * 1000
CHUNKS = 64     # of 1 KiB: what /chunks writes

APP = r"""
moonwire.options{ limits = { max_body_size = 16 * 1024 * 1024, max_header_size = 8 * 1024 } }
local hex, sha256 = moonwire.crypto.hex, moonwire.crypto.sha256
moonwire.get("/hello", function(req, res) res:send("hello from lua over " .. req.version) end)
moonwire.get([[/sleep/(\d+)]], function(req, res) moonwire.sleep(0.3); res:send("slept " .. req.params[1]) end)
moonwire.post("/echo", function(req, res)
  res:header("X-Body-SHA256", hex(sha256(req.body)))
  res:send(req.body)
end)
moonwire.post("/echo-stream", function(req, res)
  while true do
    local chunk, err = req:read(65536)
    if err then error(err) end
    if not chunk then break end
    res:write(chunk)
  end
  res:finish()
end, {stream_body = true})
moonwire.post("/length", function(req, res) res:send(tostring(#req.body)) end)
moonwire.get("/chunks", function(req, res)
  for i = 1, 64 do res:write(string.rep(string.char(64 + i % 26), 1023) .. "\n") end
  res:finish()
end)
function OnError(conn, message) moonwire.log.info("OnError " .. message) end
"""

CHUNKED = b"".join(bytes([64 + i % 26]) * 1023 + b"\n" for i in range(1, CHUNKS + 1))


@pytest.fixture(scope="module")
def server(moonwire_module, certs):
    """One server for the tests that only read, per engine: TLS and the plain port."""
    return start_tls(moonwire_module, certs, APP, threads=2)



# --- the option ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ['"bogus"', '"NGHTTP2"', "2", "true"], ids=["bogus", "upper-case", "number", "boolean"])
def test_an_unknown_engine_is_refused_at_load(tmp_path, value):
    (tmp_path / "main.lua").write_text(f"-- first line\nmoonwire.options{{ http2 = {{ engine = {value} }} }}\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 1
    assert "main.lua:2:" in result.stdout and ENGINE_ERROR in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("value", ["nio", "nghttp2"])
def test_both_engines_are_accepted(tmp_path, value):
    (tmp_path / "main.lua").write_text(f'moonwire.options{{ http2 = {{ engine = "{value}" }} }}\n')
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --- clients -------------------------------------------------------------------------------

def test_curl_h2c_by_prior_knowledge(server):
    assert curl_version_and_body("--http2-prior-knowledge", f"{server.url}/hello") == ("2", "hello from lua over 2")


def test_curl_h2_over_tls_by_alpn(server, certs):
    assert curl_version_and_body("--http2", "--cacert", str(certs.ca), f"{server.tls_url}/hello") == \
        ("2", "hello from lua over 2")


def test_curl_h2c_by_upgrade_still_served(server):
    """A connection that upgrades from HTTP/1.1 switches to the engine: the next request on
    it is an HTTP/2 stream."""
    result = run(tool("curl"), "-sS", "--max-time", "10", "--http2", "-w", "\n%{http_version}\n",
                 f"{server.url}/hello", f"{server.url}/hello", timeout=20)
    assert result.returncode == 0, result.stderr
    upgrading, upgrading_version, following, following_version = result.stdout.splitlines()
    assert (upgrading_version, following_version) == ("2", "2"), "the server did not switch to h2c"
    assert upgrading in ("hello from lua over 1.1", "hello from lua over 2")
    assert following == "hello from lua over 2"


def test_h2load_without_errors(target):
    result = run(tool("h2load"), "-n", "2000", "-c", "4", "-m", "10", f"{target.url}/hello", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"2000 succeeded, 0 failed, 0 errored, 0 timeout", result.stdout), result.stdout
    assert re.search(r"status codes: 2000 2xx", result.stdout), result.stdout


# --- streams and connections ---------------------------------------------------------------

def test_streams_over_the_limit_are_refused_alone(moonwire):
    # The ten HEADERS go out before the client reads the server's SETTINGS (the h2 library
    # allows any number until then), so four streams are open when the fifth arrives.
    server = moonwire('moonwire.options{ http2 = { max_concurrent_streams = 4 } }\n' + APP)
    with Target(False, server.port, None).h2() as client:
        streams = [client.request("GET", f"/sleep/{i}") for i in range(10)]
        assert client.wait(lambda: all(client.responses[s].done for s in streams), timeout=10)
        assert client.conn.remote_settings.max_concurrent_streams == 4
        answered = {i: bytes(client.responses[s].body) for i, s in enumerate(streams) if client.responses[s].ended}
        refused = {i: client.responses[s].reset for i, s in enumerate(streams) if client.responses[s].reset is not None}
        assert answered == {i: f"slept {i}".encode() for i in range(4)}, f"answered {answered}, reset {refused}"
        assert refused == {i: REFUSED_STREAM for i in range(4, 10)}
        assert client.terminated is None and not client.closed, "a stream error, not a connection error"
        again = client.get("/sleep/4")                      # the refused request, tried again
        assert again.status == 200 and bytes(again.body) == b"slept 4"


def test_garbage_after_the_preface_ends_that_connection_only(target):
    garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + random.Random(27).randbytes(2000)
    with target.h2() as earlier:
        assert earlier.get("/hello").status == 200
        with raw_connect(target) as sock:
            sock.sendall(PREFACE + SETTINGS_FRAME + garbage)
            data, closed = read_until_closed(sock)
        codes = goaway_codes(data)
        # "GET / HT" reads as a frame of 4.6 MB, over SETTINGS_MAX_FRAME_SIZE (RFC 9113 section 4.2)
        assert codes and set(codes) <= {FRAME_SIZE_ERROR, PROTOCOL_ERROR}, f"GOAWAY codes {codes}"
        assert closed, "the server should close after its GOAWAY"
        reply = earlier.get("/hello", timeout=5)
        assert reply.status == 200 and bytes(reply.body) == b"hello from lua over 2", "a connection opened before was harmed"
    with target.h2() as fresh:
        assert bytes(fresh.get("/hello", timeout=5).body) == b"hello from lua over 2"


def malformed_head(client, stream, fields, path="/hello", end_stream=True):
    """A HEADERS frame of a GET (a POST without END_STREAM) with `fields` after the pseudo-header
    fields; `path` None leaves `:path` out."""
    pseudo = [(":method", "GET" if end_stream else "POST"), (":scheme", client.scheme), (":authority", "127.0.0.1")]
    block = client.encoder.encode(pseudo + ([(":path", path)] if path else []) + fields)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block)


MALFORMED = {
    "an uppercase field name": lambda client: malformed_head(client, 1, [("X-Upper", "1")]),
    "no :path": lambda client: malformed_head(client, 1, [], path=None),
    "a doubled :path": lambda client: malformed_head(client, 1, [(":path", "/again")]),
    "a content-length the content contradicts": lambda client: (
        malformed_head(client, 1, [("content-length", "5")], path="/length", end_stream=False)
        + frame(DATA, END_STREAM, 1, b"12")),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_request_is_reset_alone_logged_and_reported(target, server, engine, case):
    """RFC 9113 section 8.1.1: the stream alone is reset (PROTOCOL_ERROR), with one
    "bad HTTP/2 request" line and one OnError, on both engines; the request after it on the
    same connection is answered."""
    mark = server.log_mark()
    with RawH2(target) as client:
        client.send(MALFORMED[case](client) + client.get(3, "/hello"))
        body = lambda: b"".join(payload for stream, _, payload in client.of_type(DATA) if stream == 3)  # noqa: E731
        assert client.wait(lambda: 1 in client.resets() and body() == b"hello from lua over 2", 5), client.frames
        assert client.resets() == {1: PROTOCOL_ERROR}
        assert not client.closed and not client.of_type(GOAWAY), "the connection goes on"
    log = lambda: server.log_since(mark)  # noqa: E731
    assert wait_until(lambda: "OnError HTTP/2: " in log()), log()
    time.sleep(0.2)
    assert log().count("bad HTTP/2 request") == 1 and log().count("OnError HTTP/2: ") == 1, log()


def test_a_flood_of_malformed_requests_ends_the_connection_after_two_hundred(target, server):
    """nio-http2 ends a connection at its 201st stream error (GOAWAY ENHANCE_YOUR_CALM), and the
    nghttp2 engine at its 201st malformed request: a client that floods them costs at most 200
    "bad HTTP/2 request" lines per connection on either engine."""
    enhance_your_calm = 0xb
    mark = server.log_mark()
    with RawH2(target) as client:
        client.send(b"".join(malformed_head(client, stream, [("connection", "close")]) for stream in range(1, 403, 2)))
        assert client.wait(lambda: client.of_type(GOAWAY), 10), client.frames[-5:]
        assert [int.from_bytes(payload[4:8], "big") for _, _, payload in client.of_type(GOAWAY)] == [enhance_your_calm]
        assert client.wait(lambda: False, 2) is False and client.closed, "the connection is closed"
    log = lambda: server.log_since(mark)  # noqa: E731
    assert wait_until(lambda: log().count("OnError HTTP/2") >= 201), log()[-2000:]
    assert log().count("bad HTTP/2 request") == 200, log().count("bad HTTP/2 request")


@pytest.mark.parametrize("path", ["/echo", "/echo-stream"])
def test_five_megabytes_echoed_through_flow_control(target, path):
    # Beyond the 64 KiB initial windows both ways: the server must open the client's window
    # as the body arrives, and wait for the client's WINDOW_UPDATEs as the echo leaves.
    body = os.urandom(FIVE_MB)
    with target.h2() as client:
        reply = client.finish(client.request("POST", path, body=body), timeout=60)
    assert reply.status == 200 and reply.ended
    assert len(reply.body) == FIVE_MB and hashlib.sha256(reply.body).hexdigest() == hashlib.sha256(body).hexdigest()
    if path == "/echo":
        assert reply.headers["x-body-sha256"] == hashlib.sha256(body).hexdigest()


def test_streamed_answer_arrives_whole(target):
    with target.h2() as client:
        reply = client.get("/chunks")
    assert reply.status == 200 and reply.ended and reply.reset is None
    assert len(reply.body) == CHUNKS * 1024 and bytes(reply.body) == CHUNKED


# --- answers on the stream: 1xx, 413, 431 --------------------------------------------------

def test_expect_100_continue_gets_an_interim_head(target):
    with target.h2() as client:
        stream = client.request("POST", "/length", headers=[("expect", "100-continue"), ("content-length", "5")],
                                end_stream=False)
        assert client.wait(lambda: client.responses[stream].informational or client.responses[stream].done, timeout=5)
        assert [head[":status"] for head in client.responses[stream].informational] == ["100"]
        client.send_body(stream, b"hello")
        reply = client.finish(stream)
    assert reply.status == 200 and bytes(reply.body) == b"5"


def test_a_body_over_the_limit_gets_413_on_its_stream(target):
    with target.h2() as client:
        stream = client.request("POST", "/length", headers=[("content-length", str(17 * 1024 * 1024))],
                                body=b"x" * 1000, end_stream=False)
        reply = client.finish(stream)
        assert reply.status == 413
        assert bytes(client.get("/hello").body) == b"hello from lua over 2", "the connection should go on"
        assert client.terminated is None


def test_a_head_over_the_limit_gets_431_on_its_stream(target):
    with target.h2() as client:
        # Under nio-http2's own bound on a header block, which ends the connection instead.
        reply = client.get("/hello", headers=[("x-big", "b" * (10 * 1024))])
        assert reply.status == 431
        assert bytes(client.get("/hello").body) == b"hello from lua over 2", "the connection should go on"
        assert client.terminated is None


# --- graceful stop -------------------------------------------------------------------------

def test_a_graceful_stop_sends_goaway_and_finishes_the_stream(moonwire):
    server = moonwire(APP)
    with RawH2(Target(False, server.port, None)) as client:
        client.send(client.get(1, "/sleep/1"))
        client.wait(lambda: False, timeout=0.1)
        server.process.send_signal(signal.SIGTERM)
        acknowledged = set()

        def closed_while_answering_pings():   # a server may time its last GOAWAY by a PING
            for _, flags, payload in client.of_type(PING):
                if not flags & ACK and payload not in acknowledged:
                    acknowledged.add(payload)
                    client.send(frame(PING, ACK, 0, payload))
            return client.closed
        assert client.wait(closed_while_answering_pings, timeout=10), "the server should close once stream 1 is answered"
        goaways = [payload for _, _, payload in client.of_type(GOAWAY)]
        assert goaways and {int.from_bytes(payload[4:8], "big") for payload in goaways} == {0}, \
            f"a graceful stop is GOAWAY NO_ERROR: {goaways}"
        assert int.from_bytes(goaways[-1][:4], "big") & 0x7FFFFFFF >= 1, "the last GOAWAY must keep stream 1"
        assert b"".join(payload for stream, _, payload in client.of_type(DATA) if stream == 1) == b"slept 1"
        assert any(stream == 1 and flags & END_STREAM for stream, flags, _ in client.of_type(DATA) + client.of_type(HEADERS))
    assert server.process.wait(timeout=10) == 0, server.log()
