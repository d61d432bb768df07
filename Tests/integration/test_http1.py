"""HTTP/1.1 over real sockets: keep-alive and the timeouts between requests, Connection: close
and HTTP/1.0, pipelining (and a client that pipelines without reading), chunked and split
request bodies, Expect: 100-continue, HEAD, and an Upgrade that no upgrader takes. apps/protocol answers `METHOD PATH BODY-LENGTH:BODY`; its
limits: max_body_size 1024 bytes, header_timeout 1 s, keepalive_timeout 2 s."""
import select
import time

import pytest

from harness import Bystander, parse_one, parse_responses, read_responses, read_until_close, wait_until


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(app="protocol", threads=2)


# --- keep-alive and connection handling -----------------------------------------------------

def test_keep_alive_with_a_client(server):
    with server.client() as client:
        ports = set()
        for i in range(6):
            reply = client.get(f"/k{i}")
            assert reply.status_code == 200 and reply.text == f"GET /k{i} 0:"
            ports.add(reply.headers["x-remote-port"])
        reply = client.post("/post", content=b"data")
        assert reply.text == "POST /post 4:data"
        ports.add(reply.headers["x-remote-port"])
    assert len(ports) == 1, f"expected one connection, saw client ports {ports}"


def test_keep_alive_raw_several_requests_one_connection(server):
    with server.connect() as s:
        for i in range(5):
            s.sendall(f"GET /raw{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            (response,) = read_responses(s, 1)
            assert response.status == 200 and response.body == f"GET /raw{i} 0:".encode()
            assert (response.header("connection") or "").lower() != "close"
        s.sendall(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = read_until_close(s, idle=5)
    assert reply.closed
    assert parse_one(reply.data).body == b"GET /last 0:"


def test_connection_close_is_honoured(server):
    with server.connect() as s:
        s.sendall(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = read_until_close(s, idle=5)
    assert reply.closed and reply.elapsed < 1.5   # closed right away, not at keepalive_timeout
    assert parse_one(reply.data).body == b"GET /bye 0:"
    assert parse_one(reply.data).header("connection") == "close"


def test_http10_closes_unless_keep_alive_asked(server):
    with server.connect() as s:
        s.sendall(b"GET /ten HTTP/1.0\r\n\r\n")
        reply = read_until_close(s, idle=5)
    assert reply.closed and reply.elapsed < 1.5
    response = parse_one(reply.data)
    assert response.status == 200 and response.header("x-version") == "1.0"
    assert response.version == "HTTP/1.0"

    with server.connect() as s:
        s.sendall(b"GET /ka1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        (first,) = read_responses(s, 1)
        assert first.status == 200 and first.body == b"GET /ka1 0:"
        s.sendall(b"GET /ka2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        (second,) = read_responses(s, 1)
        assert second.status == 200 and second.body == b"GET /ka2 0:"


def test_later_http1_minor_version_is_answered_as_http11(server):
    # RFC 9110 section 2.5: HTTP/1.2 is handled as 1.1, the highest version the server speaks,
    # and the answer names 1.1 (it used to echo "HTTP/1.2 200").
    reply = server.raw(b"GET /v HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.data.startswith(b"HTTP/1.1 200 "), reply.data[:100]
    assert parse_one(reply.data).header("x-version") == "1.1"


# --- keepalive_timeout and header_timeout between requests ----------------------------------

def test_idle_keep_alive_connection_closed_silently(server):
    with server.connect() as s:
        s.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
        (response,) = read_responses(s, 1)
        assert response.status == 200
        started = time.monotonic()
        rest = read_until_close(s, idle=5, total=6)
    elapsed = time.monotonic() - started
    assert rest.closed, "idle keep-alive connection was not closed"
    assert rest.data == b"", f"idle close must be silent, got {rest.data[:200]!r}"
    assert 1.5 < elapsed < 4.0, f"closed after {elapsed:.2f} s with keepalive_timeout = 2"
    server.assert_alive()


def test_active_keep_alive_connection_is_not_closed_early(server):
    # requests every 0.6 s for ~2.4 s: each idle gap is below keepalive_timeout (2 s)
    with server.connect() as s:
        for i in range(5):
            s.sendall(f"GET /busy{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            (response,) = read_responses(s, 1)
            assert response.body == f"GET /busy{i} 0:".encode()
            time.sleep(0.6)


def test_header_timeout_counts_from_the_first_byte(server):
    # silence longer than header_timeout (1 s) but shorter than keepalive_timeout (2 s) is not
    # a slow request: before the first request on a fresh connection ...
    with server.connect() as s:
        time.sleep(1.4)
        s.sendall(b"GET /late-first HTTP/1.1\r\nHost: x\r\n\r\n")
        (response,) = read_responses(s, 1)
        assert response.status == 200 and response.body == b"GET /late-first 0:"
        # ... and between requests on a keep-alive connection
        time.sleep(1.4)
        s.sendall(b"GET /late-second HTTP/1.1\r\nHost: x\r\n\r\n")
        (response,) = read_responses(s, 1)
        assert response.status == 200 and response.body == b"GET /late-second 0:"


# --- pipelining -----------------------------------------------------------------------------

def test_pipelining_three_requests_in_one_write(server):
    # the first is the slowest: answers must still come back in request order
    payload = (b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = server.raw(payload, idle=4)
    assert reply.closed
    responses = parse_responses(reply.data)
    assert [r.status for r in responses] == [200, 200, 200]
    assert [r.body for r in responses] == [b"GET /sleep 0:", b"POST /two 3:abc", b"GET /three 0:"]
    assert len({r.header("x-remote-port") for r in responses}) == 1


def test_pipelining_with_head_in_the_middle(server):
    payload = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
               b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    responses = parse_responses(server.raw(payload).data, head=(1,))
    assert [r.status for r in responses] == [200, 200, 200]
    assert [r.body for r in responses] == [b"GET /a 0:", b"", b"GET /c 0:"]
    assert responses[1].header("content-length") == str(len(b"HEAD /b 0:"))


def test_client_that_pipelines_without_reading_is_bounded_then_closed(moonwire):
    # Such a client used to have every request read and answered: 104 MB of `GET /hello` in
    # 12 s grew the server from 27 MB to 1.9 GB, and it stayed there after the client left.
    # Now requests wait unparsed (and reads wait) while the answers sent are unread, and a
    # client that reads nothing for send_timeout (2 s here) is closed.
    server = moonwire(app="protocol", threads=1)   # one loop: the other client shares it
    server.assert_alive()
    start_rss = server.rss_mib()
    flood = b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
    sent = 0
    closed_after = None
    with Bystander(server, interval=0.3) as others, server.connect() as attacker:
        attacker.setblocking(False)
        started = time.monotonic()
        while closed_after is None and time.monotonic() - started < 20:
            select.select([], [attacker], [], 0.2)
            try:
                sent += attacker.send(flood)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
        peak = max(others.peak_rss, server.rss_mib())
    assert closed_after is not None, f"not closed: {sent / 1e6:.1f} MB sent in 20 s, RSS {peak:.0f} MiB"
    assert peak < start_rss + 40, f"RSS {start_rss:.0f} -> {peak:.0f} MiB for {sent / 1e6:.1f} MB of requests"
    assert not others.failures, others.failures
    # The requests of one read batch are handled in one turn of the loop, as for any
    # pipelining client: about 1.5 s in a debug build here, 0.2 s in a release one.
    assert others.worst < 5.0, f"another client waited {others.worst:.2f} s"
    after = wait_until(lambda: server.rss_mib() < start_rss + 10, timeout=10)
    assert after, f"RSS {start_rss:.0f} -> {server.rss_mib():.0f} MiB after the client left"
    server.assert_alive()
    print(f"\n{sent / 1e6:.1f} MB sent, closed after {closed_after:.1f} s, RSS {start_rss:.0f} -> {peak:.0f} MiB, "
          f"others' worst {others.worst:.2f} s")


# --- request bodies -------------------------------------------------------------------------

def test_chunked_request_body_is_assembled(server):
    payload = (b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\nA;ext=1\r\n0123456789\r\n0\r\n\r\n")
    response = parse_one(server.raw(payload).data)
    assert response.status == 200
    assert response.body == b"POST /chunked 21:hello world0123456789"


def test_chunked_body_in_separate_writes_with_trailer(server):
    with server.connect() as s:
        s.sendall(b"PUT /pieces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in [b"3\r\nabc\r\n", b"4\r\ndefg\r\n", b"1\r\nh\r\n"]:
            time.sleep(0.1)
            s.sendall(piece)
        s.sendall(b"0\r\nX-Trailer: t\r\n\r\n")
        (response,) = read_responses(s, 1)
    assert response.status == 200 and response.body == b"PUT /pieces 8:abcdefgh"


def test_body_in_separate_writes_with_content_length(server):
    with server.connect() as s:
        s.sendall(b"POST /slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        time.sleep(0.3)   # well under header_timeout (1 s)
        s.sendall(b"56789")
        (response,) = read_responses(s, 1)
    assert response.body == b"POST /slowbody 10:0123456789"


def test_expect_100_continue(server):
    with server.connect() as s:
        s.sendall(b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        s.settimeout(3)
        interim = b""
        for _ in range(50):
            if b"\r\n\r\n" in interim:
                break
            chunk = s.recv(4096)
            assert chunk, "closed before 100 Continue"
            interim += chunk
        head, _, rest = interim.partition(b"\r\n\r\n")
        assert head == b"HTTP/1.1 100 Continue", interim   # an interim answer without headers
        assert rest == b""          # the final answer waits for the body
        s.sendall(b"body")
        (response,) = read_responses(s, 1)
    assert response.status == 200 and response.body == b"POST /expect 4:body"


# --- HEAD and Upgrade -----------------------------------------------------------------------

def test_head_answers_headers_without_body(server):
    reply = server.raw(b"HEAD /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, sep, body = reply.data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200 ")
    assert body == b""
    response = parse_one(reply.data, head=True)
    assert response.header("content-length") == str(len(b"HEAD /h 0:"))


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
