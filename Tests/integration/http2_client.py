"""A small HTTP/2 client for the HTTP/2 tests, on the h2 library, and raw frames for the
protocol-error cases. `Target` says where a client connects: the TLS listener (ALPN h2) or the
plain port (h2c by prior knowledge). Every wait is bounded in time."""
import dataclasses
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import httpx

from tls_certs import client_context
from websocket_client import masked, split_frame


@dataclasses.dataclass
class Target:
    """Where an HTTP/2 client connects: the TLS listener (ALPN h2) or the plain port (h2c)."""
    tls: bool
    port: int
    certs: object

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def context(self, alpn=("h2",)):
        return client_context(self.certs, alpn=list(alpn)) if self.tls else None

    def httpx(self):
        if self.tls:
            return httpx.Client(http2=True, verify=client_context(self.certs), timeout=30)
        return httpx.Client(http1=False, http2=True, timeout=30)   # h2c by prior knowledge

    def h2(self, **options):
        return H2Client(self, **options)


def target_of(server, certs, kind):
    return Target(True, server.tls_port, certs) if kind == "tls" else Target(False, server.port, certs)


# --- a small HTTP/2 client on the h2 library -----------------------------------------------

@dataclasses.dataclass
class Response:
    headers: dict = dataclasses.field(default_factory=dict)
    body: bytearray = dataclasses.field(default_factory=bytearray)
    ended: bool = False
    reset: int = None
    ended_at: float = None
    informational: list = dataclasses.field(default_factory=list)   # the 1xx heads, as dicts
    trailers: dict = None                                           # the trailing HEADERS frame, if any

    @property
    def status(self):
        return int(self.headers[":status"]) if ":status" in self.headers else None

    @property
    def done(self):
        return self.ended or self.reset is not None


class H2Client:
    """One HTTP/2 connection driven by the h2 library; every wait is bounded in time."""

    def __init__(self, target, push=True, timeout=10):
        sock = socket.create_connection(("127.0.0.1", target.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # many small frames: no Nagle delays
        if target.tls:
            sock = target.context().wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock, self.scheme, self.authority = sock, target.scheme, f"127.0.0.1:{target.port}"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        if not push:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            })
        self.conn.initiate_connection()
        self.responses = {}      # stream id -> Response (pushed streams too)
        self.pushes = []         # (pushed stream id, parent stream id, request headers) in arrival order
        self.settings_received = False
        self.terminated = None   # the ConnectionTerminated event (GOAWAY), if any
        self.closed = False
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        try:
            if not self.closed and self.terminated is None:
                self.conn.close_connection()
                self.flush()
        except Exception:
            pass
        self.sock.close()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read_once(self, timeout=0.2):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return
        for event in self.conn.receive_data(data):
            self.handle(event)
        self.flush()

    def handle(self, event):
        if isinstance(event, h2.events.ResponseReceived):
            self.responses.setdefault(event.stream_id, Response()).headers = dict(event.headers)
        elif isinstance(event, h2.events.InformationalResponseReceived):
            self.responses.setdefault(event.stream_id, Response()).informational.append(dict(event.headers))
        elif isinstance(event, h2.events.TrailersReceived):
            self.responses.setdefault(event.stream_id, Response()).trailers = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self.responses.setdefault(event.stream_id, Response()).body += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            response = self.responses.setdefault(event.stream_id, Response())
            response.ended, response.ended_at = True, time.monotonic()
        elif isinstance(event, h2.events.StreamReset):
            self.responses.setdefault(event.stream_id, Response()).reset = event.error_code
        elif isinstance(event, h2.events.PushedStreamReceived):
            self.pushes.append((event.pushed_stream_id, event.parent_stream_id, dict(event.headers)))
            self.responses[event.pushed_stream_id] = Response()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_received = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event

    def wait(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate() and not self.closed and time.monotonic() < deadline:
            self.read_once()
        return predicate()

    def request(self, method, path, headers=(), body=None, authority=None, end_stream=True):
        stream = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", self.scheme), (":authority", authority or self.authority),
                  (":path", path), *headers]
        self.conn.send_headers(stream, fields, end_stream=body is None and end_stream)
        self.responses[stream] = Response()
        self.flush()
        if body is not None:
            self.send_body(stream, body, end_stream)
        return stream

    def send_body(self, stream, body, end_stream=True, timeout=30):
        view, offset, deadline = memoryview(body), 0, time.monotonic() + timeout
        while offset < len(body):
            if self.responses[stream].done:    # the server answered or reset before the whole body
                return
            assert time.monotonic() < deadline and not self.closed, "the server did not open its flow-control window"
            room = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size, len(body) - offset)
            if room <= 0:
                self.read_once()
                continue
            self.conn.send_data(stream, bytes(view[offset:offset + room]))
            offset += room
            self.flush()
        if end_stream:
            self.conn.end_stream(stream)
            self.flush()

    def finish(self, stream, timeout=10):
        self.wait(lambda: self.responses[stream].done, timeout)
        return self.responses[stream]

    def get(self, path, timeout=10, **options):
        return self.finish(self.request("GET", path, **options), timeout)

    def websocket(self, path="/", headers=(), protocol="websocket", timeout=10):
        """An H2WebSocket on a new stream of this connection, once the server answered."""
        return H2WebSocket(self, path, headers, protocol, timeout)


class H2WebSocket:
    """A WebSocket on one stream (RFC 8441): the extended CONNECT (once the server's SETTINGS
    allow it), then RFC 6455 frames, masked as a client's, in DATA frames both ways.
    `response` is the stream's Response (its status, and its body: the server's frames)."""

    def __init__(self, client, path, headers, protocol, timeout):
        assert client.wait(lambda: client.settings_received, timeout), "no SETTINGS from the server"
        self.client, self.read = client, 0
        self.stream = client.request("CONNECT", path, headers=[(":protocol", protocol), ("sec-websocket-version", "13"),
                                                             *headers], end_stream=False)
        self.response = client.responses[self.stream]
        client.wait(lambda: self.response.status is not None or self.response.done, timeout)

    @property
    def status(self):
        return self.response.status

    def send(self, opcode, payload, fin=True, rsv=0):
        self.client.conn.send_data(self.stream, masked(opcode, payload, fin, rsv))
        self.client.flush()

    def send_text(self, text):
        self.send(0x1, text.encode())

    def close(self, code=1000, reason=""):
        self.send(0x8, code.to_bytes(2, "big") + reason.encode())

    def end(self):
        """END_STREAM from the client."""
        self.client.conn.end_stream(self.stream)
        self.client.flush()

    def receive(self, timeout=10):
        """The next server frame: (first byte, payload), or None if none came in time."""
        if not self.client.wait(lambda: split_frame(self.response.body[self.read:]) is not None, timeout):
            return None
        first, payload, length = split_frame(self.response.body[self.read:])
        self.read += length
        return first, payload

    def text(self, timeout=10):
        """The payload of the next frame as text (it must be a text frame)."""
        received = self.receive(timeout)
        assert received is not None, "no frame from the server"
        assert received[0] == 0x81, f"not a text frame: {received}"
        return received[1].decode()

    def ended(self, timeout=10):
        """Whether the server ended or reset the stream within `timeout`."""
        return self.client.wait(lambda: self.response.done, timeout)


# --- raw frames ----------------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 2, 3, 4, 5, 6, 7, 8
END_STREAM, END_HEADERS = 0x1, 0x4
PROTOCOL_ERROR, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x1, 0x6, 0x7, 0x8, 0x9
ACK = 0x1
SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_INITIAL_WINDOW_SIZE = 0x2, 0x3, 0x4


def frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


SETTINGS_FRAME = frame(SETTINGS, 0, 0)


def parse_frames(data):
    """The whole frames in `data`: (type, flags, stream, payload)."""
    frames, offset = [], 0
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset:offset + 3], "big")
        if offset + 9 + length > len(data):
            break
        stream = int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFFFFFF
        frames.append((data[offset + 3], data[offset + 4], stream, data[offset + 9:offset + 9 + length]))
        offset += 9 + length
    return frames


def goaway_codes(data):
    return [int.from_bytes(payload[4:8], "big") for kind, _, _, payload in parse_frames(data) if kind == GOAWAY]


def raw_connect(target):
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=5)
    if target.tls:
        sock = target.context().wrap_socket(sock, server_hostname="localhost")
    return sock


def read_until_closed(sock, timeout=5.0):
    """(bytes received, whether the server closed) within `timeout` seconds."""
    deadline, chunks = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:               # reset, or a TLS connection cut without close_notify
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def recv_some(sock, deadline):
    """Up to 64 KiB, or b"" at close or when the deadline has passed."""
    sock.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        return sock.recv(65536)
    except (socket.timeout, OSError):
        return b""


def read_head(sock, deadline):
    """An HTTP/1.1 response head (an h2c upgrade's 101), and the bytes after it."""
    received = b""
    while b"\r\n\r\n" not in received and time.monotonic() < deadline:
        chunk = recv_some(sock, deadline)
        if not chunk:
            break
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


class RawH2:
    """An HTTP/2 connection spoken frame by frame, for clients that break the rules the h2
    library keeps (more streams than the server allows, windows that never open). `frames`
    holds every frame received: (type, flags, stream, payload). Every wait is bounded."""

    def __init__(self, target, settings=None):
        self.sock = raw_connect(target)
        self.scheme = target.scheme
        self.encoder = hpack.Encoder()
        self.frames, self.closed, self._pending = [], False, b""
        payload = b"".join(struct.pack("!HI", key, value) for key, value in (settings or {}).items())
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, payload))
        assert self.wait(lambda: self.server_settings() is not None), "no SETTINGS from the server"
        self.sock.sendall(frame(SETTINGS, ACK, 0))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.sock.close()

    def server_settings(self):
        for kind, flags, _, payload in self.frames:
            if kind == SETTINGS and not flags & ACK:
                return dict(struct.unpack("!HI", payload[i:i + 6]) for i in range(0, len(payload), 6))
        return None

    def get(self, stream, path):
        block = self.encoder.encode([(":method", "GET"), (":scheme", self.scheme),
                                     (":authority", "127.0.0.1"), (":path", path)])
        return frame(HEADERS, END_HEADERS | END_STREAM, stream, block)

    def websocket_connect(self, stream):
        """An extended CONNECT for a WebSocket on `stream` (RFC 8441), the stream left open."""
        block = self.encoder.encode([(":method", "CONNECT"), (":scheme", self.scheme), (":authority", "localhost"),
                                     (":path", "/"), (":protocol", "websocket")])
        return frame(HEADERS, END_HEADERS, stream, block)

    def send(self, data):
        self.sock.sendall(data)

    def pump(self, timeout=0.2):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self._pending += data
        offset = 0
        while offset + 9 <= len(self._pending):
            length = int.from_bytes(self._pending[offset:offset + 3], "big")
            if offset + 9 + length > len(self._pending):
                break
            offset += 9 + length
        self.frames += parse_frames(self._pending[:offset])
        self._pending = self._pending[offset:]

    def wait(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate() and not self.closed and time.monotonic() < deadline:
            self.pump()
        return predicate()

    def of_type(self, kind):
        return [(stream, flags, payload) for k, flags, stream, payload in self.frames if k == kind]

    def resets(self):
        """stream -> RST_STREAM error code."""
        return {stream: int.from_bytes(payload[:4], "big") for stream, _, payload in self.of_type(RST_STREAM)}

    def answered(self):
        """Streams that got a response head."""
        return {stream for stream, _, _ in self.of_type(HEADERS)}
