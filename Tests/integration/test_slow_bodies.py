"""Slow request bodies (limits.min_body_rate): a body gets header_timeout seconds from its head
plus one second per min_body_rate bytes, else 408 with a log line naming the peer: on HTTP/1.1
the connection closes, on HTTP/2 the stream alone is reset. Clients on the same loop are not
delayed, and an upload above the rate is answered however long it takes. The silence and
slow-header 408s of HTTP/1.1 are in
test_http1_bad_input.py; the arithmetic is tested without sockets in
HTTPReadTimeoutStateMachineTests."""
import socket
import threading
import time

import pytest

from harness import Bystander, parse_one
from http2_client import Target

SLOW_BODY_APP = """
moonwire.options{ limits = { header_timeout = 3, min_body_rate = 50 } }
function OnCommandGet(req, res) res:send(req.method .. " " .. #req.body) end
"""
TRICKLE_HEAD = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"


@pytest.fixture(scope="module")
def slow_body_server(moonwire_module):
    # One loop, so the tricklers and the other clients share it.
    return moonwire_module(main=SLOW_BODY_APP, threads=1)


def trickle(server, answers, pieces=1, interval=1.0, limit=8.0):
    """Sends TRICKLE_HEAD, then `pieces` bytes every `interval` s (1000 in all) until an answer
    comes or `limit` s pass; appends (seconds to the answer's first byte, answer) to `answers`."""
    with server.connect() as s:
        s.sendall(TRICKLE_HEAD)
        started = time.monotonic()
        s.settimeout(interval)
        sent, reply, first = 0, b"", None
        while time.monotonic() - started < limit and b"\r\n\r\n" not in reply:
            try:
                if sent < 1000:
                    s.sendall(b"x" * pieces)
                    sent += pieces
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            first = first or time.monotonic() - started
            reply += chunk
        answers.append((first, reply))


def test_trickled_bodies_408_while_others_are_answered(slow_body_server):
    # A body gets header_timeout (3 s) plus 1 s per min_body_rate (50) bytes. Twenty clients
    # sending a byte a second are never silent for 3 s, so only the rate cuts them: 408 after
    # about 3.06 s. A client on the same loop is answered meanwhile.
    server = slow_body_server
    mark = server.log_mark()
    answers = []
    with Bystander(server, interval=0.1) as others:
        attackers = [threading.Thread(target=trickle, args=(server, answers)) for _ in range(20)]
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join(timeout=15)
    assert len(answers) == 20
    for seconds, reply in answers:
        assert reply.startswith(b"HTTP/1.1 408 "), f"after {seconds} s: {reply[:100]!r}"
        assert 2.8 < seconds < 4.5, f"408 after {seconds:.2f} s (expected about 3.06 s)"
    assert not others.failures, others.failures
    assert others.worst < 0.5, f"another client waited {others.worst:.2f} s"
    log = server.log_since(mark)
    assert log.count("request body slower than 50 bytes/s") == 20, log
    assert "127.0.0.1:" in log, f"the log does not name the peer:\n{log}"
    server.assert_alive()


def test_slow_upload_above_the_rate_is_answered(slow_body_server):
    # 100 bytes every 0.5 s is 200 B/s, four times the minimum: the 1000-byte body takes 5 s,
    # longer than its 3 s of grace, and is answered.
    answers = []
    trickle(slow_body_server, answers, pieces=100, interval=0.5, limit=10)
    ((seconds, reply),) = answers
    response = parse_one(reply)
    assert response.status == 200 and response.body == b"POST 1000", reply[:200]
    assert 4.0 < seconds < 7, f"answered after {seconds:.2f} s"


def test_http2_trickled_body_408_on_its_stream_alone(slow_body_server):
    # The same rule on an HTTP/2 stream (h2c): a byte a second gets 408 and RST_STREAM at about
    # 3.06 s, while a request on the same connection is answered meanwhile and after.
    with Target(False, slow_body_server.port, None).h2() as client:
        stream = client.request("POST", "/upload", headers=[("content-length", "1000")], end_stream=False)
        started, latencies = time.monotonic(), []
        while not client.responses[stream].done and time.monotonic() - started < 8:
            client.conn.send_data(stream, b"x")
            client.flush()
            client.wait(lambda: client.responses[stream].done, timeout=1)
            if len(latencies) < 2:
                sent = time.monotonic()
                assert client.get("/meanwhile").status == 200
                latencies.append(time.monotonic() - sent)
        response = client.responses[stream]
        assert response.status == 408, response
        seconds = response.ended_at - started
        assert 2.8 < seconds < 4.5, f"408 after {seconds:.2f} s (expected about 3.06 s)"
        assert max(latencies) < 0.5, latencies
        assert client.get("/after").status == 200, "the connection did not go on"
    slow_body_server.assert_alive()
