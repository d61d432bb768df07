"""HTTP/1.1 behaviour and every bad-input case: the protocol's answer, OnError, a log line,
and a server that still answers everyone else afterwards."""
import socket
import threading
import time

import httpx
import pytest

from harness import read_until_close

APP = """
moonwire.options{ limits = { max_body_size = 1024, header_timeout = 1, keepalive_timeout = 2 } }
errors = 0
function OnError(conn, message) errors = errors + 1 end
function OnCommandGet(req, res)
  if req.path == "/sleep" then moonwire.sleep(1) end
  if req.path == "/errors" then res:send(tostring(errors)) return end
  res:send(req.method .. " " .. req.path .. " " .. #req.body .. " " .. req.body)
end
function OnCommandOther(req, res) OnCommandGet(req, res) end
"""


@pytest.fixture
def server(moonwire):
    return moonwire(APP, threads=1)


def assert_still_serving(server):
    reply = server.get("/alive")
    assert reply.status_code == 200 and reply.text == "GET /alive 0 "


def test_keep_alive_reuses_one_connection(server):
    with server.connect() as s:
        for i in range(5):
            s.sendall(f"GET /k{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while not data.endswith(f"GET /k{i} 0 ".encode()):
                chunk = s.recv(4096)
                assert chunk, "connection closed"
                data += chunk
            assert data.startswith(b"HTTP/1.1 200")


def test_pipelining_three_requests_in_one_write(server):
    reply = server.raw(
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    one, two, three = reply.index(b"GET /one"), reply.index(b"POST /two 3 abc"), reply.index(b"GET /three")
    assert one < two < three


def test_upgrade_that_is_not_made_keeps_http(server):
    """An Upgrade no upgrader takes (first request, then a later one) is answered as HTTP/1.1
    and the requests behind it on the connection are answered too."""
    upgrade = b"Connection: Upgrade\r\nUpgrade: %s\r\n"
    reply = server.raw(
        b"GET /u1 HTTP/1.1\r\nHost: x\r\n" + upgrade % b"foo" + b"\r\n"
        b"GET /u2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /u3 HTTP/1.1\r\nHost: x\r\n" + upgrade % b"h2c" + b"\r\n"
        b"GET /u4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", idle=5).data
    assert reply.count(b"HTTP/1.1 200 OK") == 4, reply
    assert reply.index(b"GET /u1") < reply.index(b"GET /u2") < reply.index(b"GET /u3") < reply.index(b"GET /u4")


def test_connection_close_and_http10(server):
    reply = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", idle=3).data
    assert b"connection: close" in reply.lower()
    reply = server.raw(b"GET / HTTP/1.0\r\n\r\n", idle=3).data
    assert reply.startswith(b"HTTP/1.0 200")


def test_chunked_request_body(server):
    reply = server.raw(
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").data
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"POST /c 11 hello world")


def test_expect_100_continue(server):
    with server.connect() as s:
        s.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"body")
        assert read_until_close(s, idle=1).data.endswith(b"POST /e 4 body")


def test_expect_with_oversize_length_gets_413_without_100(server):
    reply = server.raw(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n").data
    assert reply.startswith(b"HTTP/1.1 413")
    assert_still_serving(server)


def test_head_has_headers_but_no_body(server):
    reply = server.raw(b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 10" in head and body == b""


def test_parallel_sleeps_do_not_block_the_loop(server):
    started = time.monotonic()
    results = []

    def fetch():
        results.append(httpx.get(server.url + "/sleep", timeout=10).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert results == [200] * 20
    assert elapsed < 3.5, f"20 parallel 1 s sleeps took {elapsed:.2f} s"


def errors_seen(server):
    return int(server.get("/errors").text)


@pytest.mark.parametrize("name, payload, status", [
    ("header block over 64 KiB", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ("many headers over 64 KiB", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(700)) + b"\r\n", 431),
    ("body over the maximum by length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + b"x" * 2048, 413),
    ("chunked body over the maximum", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n", 413),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    ("bad request line", b"GET\r\n\r\n", 400),
    ("bad header line", b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400),
    ("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("non-origin-form target", b"GET relative/path HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("bad percent-encoding", b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("encoded NUL in path", b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("binary noise", bytes(range(256)) * 8, 400),
])
def test_bad_input_gets_protocol_answer(server, name, payload, status):
    before = errors_seen(server)
    reply = server.raw(payload).data
    assert reply.startswith(b"HTTP/1.1 %d" % status), f"{name}: {reply[:80]!r}"
    assert b"connection: close" in reply.lower()
    assert errors_seen(server) == before + 1, "OnError did not fire"
    assert f"({status})" in server.log()
    assert_still_serving(server)


def test_slow_header_gets_408_and_close(server):
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        reply = read_until_close(s, idle=4).data
    assert reply.startswith(b"HTTP/1.1 408")
    assert 0.8 < time.monotonic() - started < 3.5
    assert "408" in server.log()
    assert_still_serving(server)


def test_trickled_header_still_times_out(server):
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        reply = b""
        while time.monotonic() - started < 4:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            time.sleep(0.2)
            s.setblocking(False)
            try:
                reply += s.recv(4096)
            except (BlockingIOError, ConnectionResetError):
                pass
            s.setblocking(True)
            if reply:
                break
    assert reply.startswith(b"HTTP/1.1 408")


def test_stalled_body_gets_408(server):
    with server.connect() as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        reply = read_until_close(s, idle=4).data
    assert reply.startswith(b"HTTP/1.1 408")


def test_idle_keep_alive_connection_is_closed_silently(server):
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        rest = read_until_close(s, idle=5).data
        assert rest == b""
        assert 1.5 < time.monotonic() - started < 4.5


def test_slow_client_does_not_delay_others(server):
    with server.connect() as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHo")
        started = time.monotonic()
        for _ in range(5):
            assert_still_serving(server)
        assert time.monotonic() - started < 1
