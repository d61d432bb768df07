"""HTTP/2 under bad input and load: protocol errors answered with GOAWAY (RFC 9113), 10 MiB
bodies both ways through flow control, 200 streams on one connection, stream resets, h2load,
and clients that stall or open more streams than allowed; each checks that other streams and
connections go on. Loopback only. Each test runs on both HTTP/2 engines (nio, nghttp2:
http2_site.py), the send timeout on nio only."""
import asyncio
import hashlib
import os
import re
import socket
import time

import h2.errors
import httpx
import pytest

from http2_client import (ACK, CANCEL, COMPRESSION_ERROR, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, PREFACE,
                          PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, SETTINGS_ENABLE_PUSH, SETTINGS_FRAME,
                          SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, WINDOW_UPDATE, RawH2, frame,
                          goaway_codes, parse_frames, raw_connect, read_until_closed, target_of)
from harness import wait_until
from http2_site import (BIG, engine, moonwire, moonwire_module, run,  # noqa: F401 (fixtures)
                        server, site, target, tool)
from tls_certs import client_context, start_tls

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
