"""Bad input on HTTP/1.1: each case gets the protocol's answer (400, 408, 413, 414, 431) with
`connection: close` and a close, fires OnError once, writes a log line naming the status, and
the server answers the next client normally; slow and garbage clients do not delay the others.
Limits come from apps/protocol/main.lua: max_body_size 1024, header_timeout 1 s,
keepalive_timeout 2 s; max_header_size keeps its default (64 KiB)."""
import re
import socket
import threading
import time

import pytest

from harness import Bystander, parse_one, parse_responses, read_until_close

LEVEL = re.compile(r"^\S+\s+(notice|warning|error|critical|info)\s", re.M)


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(app="protocol", threads=2)


class Watch:
    """Remembers OnError records and the log position before a bad input."""

    def __init__(self, server):
        self.server = server
        self.errors_before = len(server.records("errors.log"))
        self.mark = server.log_mark()

    def assert_reported(self, status):
        server = self.server
        expected = self.errors_before + 1
        records = server.wait_for_records("errors.log", expected, timeout=5)
        assert len(records) >= expected, "OnError did not fire"
        time.sleep(0.2)
        records = server.records("errors.log")
        assert len(records) == expected, f"OnError fired {len(records) - self.errors_before} times: {records[self.errors_before:]}"
        line = records[-1]
        assert line.split(" | ", 1)[1].strip(), f"OnError got an empty message: {line!r}"
        assert LEVEL.search(server.log_since(self.mark)), \
            f"no log line for the bad input:\n{server.log_since(self.mark)}"
        assert f"({status})" in server.log_since(self.mark), \
            f"the log line does not name the {status}:\n{server.log_since(self.mark)}"


def assert_protocol_answer(reply, status):
    assert reply.data.startswith(b"HTTP/1.1 %d " % status), \
        f"expected {status}, got {reply.data[:200]!r} (closed={reply.closed})"
    assert reply.closed, f"connection left open after {status}"
    # closed right after the answer, not later by keepalive_timeout (2 s)
    assert reply.close_delay < 1.0, f"closed {reply.close_delay:.2f} s after the {status} answer"
    response = parse_one(reply.data)
    assert response.header("connection") == "close", f"{status} answer without connection: close"
    return response


def assert_standard_headers(response):
    """Every response has content-length, `server: moonwire` and `date` (checked last, so a
    missing header does not hide the rest of a case's behaviour)."""
    missing = [name for name in ("content-length", "server", "date") if response.header(name) is None]
    assert not missing, f"{response.status} answer without {missing}: {response.header_list}"
    assert response.header("server") == "moonwire"
    assert response.header("content-length") == str(len(response.body))


def check_bad_input(server, payload, status, idle=5.0):
    watch = Watch(server)
    reply = server.raw(payload, idle=idle)
    response = assert_protocol_answer(reply, status)
    watch.assert_reported(status)
    server.assert_alive()
    assert_standard_headers(response)
    return reply


def headers_of_size(total):
    """A request whose header block is `total` bytes long (request line + headers + CRLFCRLF)."""
    start = b"GET /h HTTP/1.1\r\nHost: x\r\nX-Fill: "
    end = b"\r\n\r\n"
    return start + b"f" * (total - len(start) - len(end)) + end


# --- 431 ------------------------------------------------------------------------------------

TOO_LARGE = [
    ("one header over 64 KiB", headers_of_size(70000)),
    ("many headers over 64 KiB",
     b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(700)) + b"\r\n"),
    ("header block over 64 KiB, never finished", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000),
]


@pytest.mark.parametrize("name, payload", TOO_LARGE, ids=[name for name, _ in TOO_LARGE])
def test_header_block_too_large_431(server, name, payload):
    check_bad_input(server, payload, 431)


# --- 414 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [70_000, 2_000_000], ids=["70 KB", "2 MB"])
def test_request_target_over_max_header_size_414(server, size):
    # RFC 9112 section 3: a request line longer than the server takes is 414, not 431; refused
    # once 64 KiB of it arrived, so the rest is never kept.
    start_rss = server.rss_mib()
    with Bystander(server) as others:
        check_bad_input(server, b"GET /" + b"a" * size + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)
    assert others.worst < 1.0, f"another client waited {others.worst:.2f} s"
    assert others.peak_rss < start_rss + 20, f"RSS {start_rss:.0f} -> {others.peak_rss:.0f} MiB"


def test_header_block_under_the_limit_is_fine(server):
    reply = server.raw(headers_of_size(60000)[:-2] + b"Connection: close\r\n\r\n")
    response = parse_one(reply.data)
    assert response.status == 200 and response.body == b"GET /h 0:"


def test_max_header_size_from_the_script(moonwire):
    small = moonwire(app="small_headers")
    ok = small.raw(headers_of_size(3000)[:-2] + b"Connection: close\r\n\r\n")
    assert parse_one(ok.data).status == 200
    watch = Watch(small)
    reply = small.raw(headers_of_size(5000))
    response = assert_protocol_answer(reply, 431)
    watch.assert_reported(431)
    assert small.assert_alive().body == b"small ok"
    assert_standard_headers(response)


# --- 413 ------------------------------------------------------------------------------------

def test_body_over_maximum_by_content_length_413_at_once(server):
    # only the head is sent: the answer must not wait for the body (nor for header_timeout)
    watch = Watch(server)
    with server.connect() as s:
        s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
        reply = read_until_close(s, idle=5)
    response = assert_protocol_answer(reply, 413)
    watch.assert_reported(413)
    server.assert_alive()
    assert_standard_headers(response)


def test_body_over_maximum_with_body_sent_413(server):
    check_bad_input(server, b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + b"x" * 2048, 413)


def test_body_one_byte_over_the_maximum_413(server):
    check_bad_input(server, b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n" + b"x" * 1025, 413)


def test_body_at_the_maximum_is_fine(server):
    reply = server.raw(b"POST /max HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n"
                       + b"y" * 1024)
    response = parse_one(reply.data)
    assert response.status == 200 and response.body == b"POST /max 1024:" + b"y" * 1024


def test_chunked_body_over_maximum_413_mid_stream(server):
    # 600 + 600 bytes of chunks and no terminating chunk: the 413 must come mid-stream
    watch = Watch(server)
    with server.connect() as s:
        s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.sendall(b"258\r\n" + b"c" * 600 + b"\r\n")
        s.sendall(b"258\r\n" + b"c" * 600 + b"\r\n")
        reply = read_until_close(s, idle=5)
    response = assert_protocol_answer(reply, 413)
    watch.assert_reported(413)
    server.assert_alive()
    assert_standard_headers(response)


def test_chunked_body_over_maximum_complete_413(server):
    check_bad_input(server, b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                            + (b"200\r\n" + b"z" * 512 + b"\r\n") * 3 + b"0\r\n\r\n", 413)


def test_chunk_larger_than_the_maximum_413(server):
    check_bad_input(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n"
                            + b"x" * 2048 + b"\r\n0\r\n\r\n", 413)


def test_chunked_body_at_the_maximum_is_fine(server):
    reply = server.raw(b"POST /max HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                       + (b"200\r\n" + b"z" * 512 + b"\r\n") * 2 + b"0\r\n\r\n")
    response = parse_one(reply.data)
    assert response.status == 200 and response.body == b"POST /max 1024:" + b"z" * 1024


def test_expect_continue_with_oversize_length_413_without_100(server):
    watch = Watch(server)
    with server.connect() as s:
        s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        reply = read_until_close(s, idle=5)
    assert b"100 Continue" not in reply.data
    response = assert_protocol_answer(reply, 413)
    watch.assert_reported(413)
    server.assert_alive()
    assert_standard_headers(response)


# --- 400 ------------------------------------------------------------------------------------

BAD_400 = [
    # garbage
    ("tls client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)) + b"\r\n\r\n"),
    ("binary noise", bytes(range(256)) * 4),
    ("words", b"hello there, this is not http\r\n\r\n"),
    # bad request line
    ("invalid method token", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("bad http version", b"GET / HTTP/9.Z\r\nHost: x\r\n\r\n"),
    ("missing target", b"GET HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("only a method", b"GET\r\n\r\n"),
    ("space inside the target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
    # bad header line
    ("header without colon", b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad : v\r\n\r\n"),
    ("invalid header name", b"GET / HTTP/1.1\r\nHost: x\r\nX(Bad): v\r\n\r\n"),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
    ("non-numeric content-length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
    ("negative content-length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
    ("conflicting content-lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
    # bad chunk encoding
    ("non-hex chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    ("chunk size overflow", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n"),
    ("chunk longer than its size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"),
    # request target not origin-form / '*' for OPTIONS / absolute-form
    ("relative target", b"GET relative/path HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("authority-form for GET", b"GET example.com:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("asterisk for GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"),
    # Host (RFC 9112 section 3.2): HTTP/1.1 needs one, no request may have two or an invalid one
    ("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
    ("two Host fields", b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n"),
    ("invalid Host", b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n"),
    ("invalid Host on HTTP/1.0", b"GET / HTTP/1.0\r\nHost: a@b\r\n\r\n"),
    ("user information in an absolute-form target", b"GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n"),
    # bad percent-encoding in the path
    ("bad hex digits", b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("truncated escape", b"GET /a%2 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("lone percent", b"GET /100%/x HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("encoded NUL in the path", b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n"),
]


@pytest.mark.parametrize("name, payload", BAD_400, ids=[name for name, _ in BAD_400])
def test_bad_request_400(server, name, payload):
    check_bad_input(server, payload, 400)


def test_garbage_after_a_pipelined_good_request(server):
    watch = Watch(server)
    reply = server.raw(b"GET /good HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    responses = parse_responses(reply.data)
    assert [r.status for r in responses] == [200, 400], reply.data[:400]
    assert responses[0].body == b"GET /good 0:"
    assert reply.closed and reply.close_delay < 1.0
    watch.assert_reported(400)
    server.assert_alive()


# --- trailers -------------------------------------------------------------------------------

def trailer_flood():
    """A chunked request with 16,000 trailer fields: 64 KB, within max_header_size."""
    return (b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n"
            + b"a:\r\n" * 16000 + b"\r\n")


def test_trailer_flood_431_without_stalling_the_loop(moonwire):
    # Each such request cost seconds of CPU on the loop (every trailer field copied all those
    # before it); four attackers made the other clients of that loop wait past 5 s. Now more
    # than 100 trailer fields are 431, and the attackers' loop (the only one) stays free.
    server = moonwire(app="protocol", threads=1)
    watch = Watch(server)
    response = assert_protocol_answer(server.raw(trailer_flood()), 431)
    watch.assert_reported(431)
    assert_standard_headers(response)

    errors_before = len(server.records("errors.log"))
    start_rss = server.rss_mib()
    answers = []

    def attacker():
        deadline = time.monotonic() + 3
        for _ in range(100):
            if time.monotonic() > deadline:
                break
            answers.append(server.raw(trailer_flood(), idle=5, total=6).data[:12])

    with Bystander(server) as others:
        attackers = [threading.Thread(target=attacker) for _ in range(4)]
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join(timeout=60)
    assert answers and set(answers) == {b"HTTP/1.1 431"}, set(answers)
    assert len(server.wait_for_records("errors.log", errors_before + len(answers))) == errors_before + len(answers)
    assert not others.failures, others.failures
    assert others.worst < 1.0, f"{len(answers)} floods: another client waited {others.worst:.2f} s"
    assert others.peak_rss < start_rss + 50, f"RSS {start_rss:.0f} -> {others.peak_rss:.0f} MiB"


# --- 408 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("request_bytes, least", [
    (b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: ", 0.8),
    (b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial", 0.7),
], ids=["slow header", "stalled body"])
def test_silence_mid_request_408_and_close(server, request_bytes, least):
    watch = Watch(server)
    with server.connect() as s:
        s.sendall(request_bytes)
        started = time.monotonic()
        reply = read_until_close(s, idle=5, total=6)
        elapsed = time.monotonic() - started
    response = assert_protocol_answer(reply, 408)
    assert least < elapsed < 3.5, f"408 after {elapsed:.2f} s with header_timeout = 1"
    watch.assert_reported(408)
    server.assert_alive()
    assert_standard_headers(response)


def test_trickled_header_408(server):
    # bytes keep arriving, but the header block is not complete within header_timeout
    watch = Watch(server)
    with server.connect() as s:
        s.sendall(b"GET /trickle HTTP/1.1\r\n")
        started = time.monotonic()
        reply = b""
        s.settimeout(0.25)
        for i in range(20):   # at most ~5 s
            try:
                s.sendall(b"X-T%d: v\r\n" % i)
            except OSError:
                break
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
            if b"\r\n\r\n" in reply:
                break
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert elapsed < 3.5, f"trickled header block kept alive for {elapsed:.2f} s"
    watch.assert_reported(408)
    server.assert_alive()


# --- other clients are unaffected -----------------------------------------------------------

def test_slow_and_garbage_clients_do_not_delay_others(server):
    stop = threading.Event()

    def trickle_garbage():
        with server.connect() as g:
            for _ in range(40):
                if stop.is_set():
                    break
                try:
                    g.sendall(b"\x00\xff garbage ")
                except OSError:
                    break
                time.sleep(0.02)

    slow = server.connect()
    stalled = server.connect()
    garbage = threading.Thread(target=trickle_garbage)
    try:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half")
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nonly a bit")
        garbage.start()
        time.sleep(0.05)
        started = time.monotonic()
        for i in range(8):
            t0 = time.monotonic()
            reply = server.raw(f"GET /meanwhile{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            response = parse_one(reply.data)
            assert response.status == 200 and response.body == f"GET /meanwhile{i} 0:".encode()
            assert time.monotonic() - t0 < 0.5
        total = time.monotonic() - started
    finally:
        stop.set()
        garbage.join(timeout=5)
        slow.close()
        stalled.close()
    assert total < 0.9, f"other clients were delayed: {total:.2f} s for 8 requests"
    server.assert_alive()
