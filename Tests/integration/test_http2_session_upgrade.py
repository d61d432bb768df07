"""h2c by Upgrade (RFC 7540 section 3.2) on the nghttp2 engine (`http2.engine = "nghttp2"`): the
request that asks for the upgrade, with or without content, is answered on stream 1 after the
101 and the server's SETTINGS, the client's HTTP2-Settings apply, more streams follow on the
connection; a request whose HTTP2-Settings is not one valid field is answered on HTTP/1.1.
Clients: curl, the h2 library doing the upgrade by hand, raw sockets. The nio engine runs the
tests that hold for both, as the control. Loopback only."""
import base64
import json
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import pytest

from http2_client import SETTINGS, parse_frames, read_head, recv_some
from http2_site import run, tool

APP = r"""
moonwire.options{ http2 = { engine = "%s" } }
moonwire.get("/info", function(req, res)
  res:json({version = req.version, scheme = req.scheme, method = req.method, path = req.path,
            q = req.query.q, host = req:header("host"), upgrade = req:header("upgrade")})
end)
moonwire.post("/echo", function(req, res) res:send(req.method .. " " .. #req.body .. " " .. req.body) end)
"""

NO_RFC7540_PRIORITIES = 0x9   # in the nghttp2 engine's SETTINGS, not in nio's


@pytest.fixture(scope="module", params=["nghttp2", "nio"])
def server(request, moonwire_module):
    server = moonwire_module(APP % request.param)
    server.engine = request.param
    return server


@pytest.fixture
def session_server(server):
    if server.engine != "nghttp2":
        pytest.skip("the nio engine answers an upgrade request with content on HTTP/1.1")
    return server


def curl(*arguments):
    """[(body, HTTP version)] of curl's requests, in order."""
    result = run(tool("curl"), "-sS", "--max-time", "10", "--http2", "-w", "\n%{http_version}\n", *arguments, timeout=20)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return list(zip(lines[0::2], lines[1::2]))


def test_curl_upgrades_and_the_next_request_is_a_stream(server):
    (first, first_version), (second, second_version) = curl(f"{server.url}/info?q=up", f"{server.url}/info?q=again")
    assert (first_version, second_version) == ("2", "2"), "the server did not switch to h2c"
    upgraded, following = json.loads(first), json.loads(second)
    assert upgraded["q"] == "up" and upgraded["scheme"] == "http" and upgraded["method"] == "GET"
    assert upgraded["host"] == f"127.0.0.1:{server.port}" and "upgrade" not in upgraded
    assert following["q"] == "again" and following["version"] == "2"
    if server.engine == "nghttp2":
        assert upgraded["version"] == "2", "stream 1 is an HTTP/2 request like the others"


def test_curl_upgrades_a_request_with_content_on_nghttp2_only(server):
    """The nio engine replays the request as a HEADERS frame, which carries no content: it
    declines, and answers on HTTP/1.1."""
    (echoed, version), = curl("--data-binary", "hello there", f"{server.url}/echo")
    assert (echoed, version) == ("POST 11 hello there", "2" if server.engine == "nghttp2" else "1.1")


def test_content_larger_than_a_stream_window_is_answered_on_http11(server):
    (echoed, version), = curl("--data-binary", "z" * 70000, f"{server.url}/echo")
    assert (echoed[:9], len(echoed), version) == ("POST 7000", len("POST 70000 ") + 70000, "1.1")


def test_curl_upgrades_a_head_request(server):
    result = run(tool("curl"), "-sS", "--max-time", "10", "--http2", "-I", f"{server.url}/info?q=head", timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 101") and "HTTP/2 200" in result.stdout, result.stdout


# --- by hand -------------------------------------------------------------------------------

def upgrade_request(port, settings, method="GET", path="/info?q=up", body=b""):
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            f"Upgrade: h2c\r\n").encode()
    if settings is not None:
        head += b"HTTP2-Settings: " + settings + b"\r\n"
    if body:
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


class UpgradedClient:
    """An h2 client connection that upgraded by hand from HTTP/1.1."""

    def __init__(self, port, method="GET", path="/info?q=up", body=b""):
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        settings = self.conn.initiate_upgrade_connection()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.deadline = time.monotonic() + 10
        self.sock.sendall(upgrade_request(port, settings, method, path, body))
        self.head, rest = read_head(self.sock, self.deadline)
        assert self.head.startswith(b"HTTP/1.1 101"), self.head
        self.sock.sendall(self.conn.data_to_send())   # the client's preface and SETTINGS
        self.received = rest
        self.responses, self.ended, self.server_settings = {}, set(), {}
        self.feed(rest)

    def feed(self, data):
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.responses.setdefault(event.stream_id, {"body": b""})["headers"] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.responses.setdefault(event.stream_id, {"body": b""})["body"] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.server_settings.update({code: change.new_value for code, change in event.changed_settings.items()})
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise AssertionError(f"GOAWAY {event.error_code}")
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def wait(self, stream):
        while stream not in self.ended and time.monotonic() < self.deadline:
            chunk = recv_some(self.sock, self.deadline)
            if not chunk:
                break
            self.received += chunk
            self.feed(chunk)
        assert stream in self.ended, f"stream {stream} did not end"
        return self.responses[stream]

    def request(self, method, path, body=None):
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"),
                                        (":path", path)], end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream, body, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        return stream

    def close(self):
        self.sock.close()


def test_h2_upgrades_by_hand_then_opens_more_streams(server):
    client = UpgradedClient(server.port)
    try:
        first = client.wait(1)
        assert first["headers"][":status"] == "200" and json.loads(first["body"])["q"] == "up"
        frames = parse_frames(client.received)
        assert frames[0][:3] == (SETTINGS, 0, 0), "the server's SETTINGS come first"
        if server.engine == "nghttp2":
            assert client.server_settings.get(NO_RFC7540_PRIORITIES) == 1, "served by the nghttp2 engine"
        streams = [client.request("GET", f"/info?q={n}") for n in range(3)] + [client.request("POST", "/echo", b"x" * 5000)]
        assert streams == [3, 5, 7, 9]
        answers = [client.wait(stream) for stream in streams]
        assert [json.loads(answer["body"])["q"] for answer in answers[:3]] == ["0", "1", "2"]
        assert answers[3]["body"] == b"POST 5000 " + b"x" * 5000
    finally:
        client.close()


def test_h2_upgrades_a_request_with_content_by_hand(session_server):
    client = UpgradedClient(session_server.port, "POST", "/echo", b"upgraded content")
    try:
        assert client.wait(1)["body"] == b"POST 16 upgraded content"
        assert client.wait(client.request("GET", "/info?q=next"))["headers"][":status"] == "200"
    finally:
        client.close()


def test_the_clients_http2_settings_apply(session_server):
    """INITIAL_WINDOW_SIZE 100 in HTTP2-Settings: the answer on stream 1 stops at 100 bytes of
    DATA until the client's WINDOW_UPDATE."""
    settings = base64.urlsafe_b64encode(struct.pack(">HI", 0x4, 100)).rstrip(b"=")
    body = b"y" * 1000
    with socket.create_connection(("127.0.0.1", session_server.port), timeout=5) as sock:
        deadline = time.monotonic() + 5
        sock.sendall(upgrade_request(session_server.port, settings, "POST", "/echo", body))
        head, rest = read_head(sock, deadline)
        assert head.startswith(b"HTTP/1.1 101"), head
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + struct.pack(">HI", 0x4, 100))
        settle = time.monotonic() + 1
        while time.monotonic() < settle:
            chunk = recv_some(sock, settle)
            if not chunk:
                break
            rest += chunk
    data = [payload for kind, _, stream, payload in parse_frames(rest) if kind == 0x0 and stream == 1]
    assert sum(map(len, data)) == 100, "the stream window of the client's HTTP2-Settings"


@pytest.mark.parametrize("settings", [b"!!not base64!!", b"AAIAAA", b"AAUAAAAB", None],
                         ids=["not-base64url", "not-whole-settings", "frame-size-out-of-range", "missing"])
def test_invalid_http2_settings_is_answered_on_http11(server, settings):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        deadline = time.monotonic() + 5
        sock.sendall(upgrade_request(server.port, settings))
        head, rest = read_head(sock, deadline)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(rest) < length and time.monotonic() < deadline:
            rest += recv_some(sock, deadline)
        assert json.loads(rest[:length])["q"] == "up"
        sock.sendall(b"GET /info?q=again HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")   # still HTTP/1.1
        head, _ = read_head(sock, deadline)
        assert head.startswith(b"HTTP/1.1 200"), head
