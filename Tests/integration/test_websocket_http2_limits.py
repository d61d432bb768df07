"""WebSockets over HTTP/2 (RFC 8441) at their limits: the message size (1009), the heartbeat
(ping, then 1001), a client that opens no stream window (its send queue closes it, its stream is
reset) and a graceful stop (1001, and the server exits once the client answered), each ending
only its stream. Frame by frame (http2_client.RawH2) where the h2 library would not misbehave
or takes no frame after a GOAWAY; the protocol itself is in test_websocket_http2.py. Every test runs on both HTTP/2 engines
(http2_site.py's `engine` fixture)."""
import signal
import time

from http2_client import ACK, CANCEL, DATA, END_STREAM, PING, WINDOW_UPDATE, RawH2, frame, target_of
from http2_site import engine, moonwire  # noqa: F401 (fixtures)
from tls_certs import start_tls
from websocket_client import masked, split_frame

LIMITS_APP = r"""
moonwire.options{ websocket = { max_message_size = 1024, send_queue_limit = 256 * 1024 },
                  heartbeat = { interval = 0.3, timeout = 0.6 }, drain_timeout = 30 }
moonwire.get("/hello", function(req, res) res:send("hello") end)
function OnMessage(ws, text)
  if text == "flood" then for i = 1, 64 do ws:send(string.rep("x", 16384)) end else ws:send(text) end
end
function OnDisconnect(ws, code, reason) moonwire.log.info("disconnect " .. code .. " " .. reason) end
"""


def test_limits_and_heartbeat_end_only_their_stream(moonwire, certs):
    server = start_tls(moonwire, certs, LIMITS_APP, threads=1)
    with target_of(server, certs, "tls").h2() as client:
        big, silent = client.websocket("/"), client.websocket("/")
        big.send_text("x" * 2000)
        first, payload = big.receive()
        assert first == 0x88 and payload[:2] == (1009).to_bytes(2, "big")
        assert big.ended(5)
        # The silent one is pinged, does not answer (a raw client), and is closed with 1001.
        assert silent.receive(timeout=5) == (0x89, b"moonwire")
        first, payload = silent.receive(timeout=5)
        assert first == 0x88 and payload[:2] == (1001).to_bytes(2, "big")
        assert silent.ended(5)
        assert server.wait_for_log("disconnect 1009") and server.wait_for_log("websocket heartbeat timeout")
        # No closing handshake: as over HTTP/1.1, OnDisconnect hears 1006 once the stream is gone.
        assert server.wait_for_log("disconnect 1006"), server.log()
        assert client.get("/nothing").status == 404, "the connection goes on"


def test_a_graceful_stop_closes_http2_websockets_with_1001(moonwire, certs, engine):
    """Frame by frame (the h2 library takes no frame after a GOAWAY): the stop's GOAWAY (and
    PING, on NIO's engine), the WebSocket's close 1001 on its stream; the client answers and
    ends its side, and the server exits without waiting for its drain timeout."""
    server = start_tls(moonwire, certs, LIMITS_APP.replace("interval = 0.3", "interval = 0"), threads=1)
    with RawH2(target_of(server, certs, "tls")) as client:
        client.send(client.websocket_connect(1))
        assert client.wait(lambda: 1 in client.answered(), 5)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        received = lambda: b"".join(payload for stream, _, payload in client.of_type(DATA) if stream == 1)  # noqa: E731
        assert client.wait(lambda: split_frame(received()) is not None, 5), client.frames
        assert split_frame(received())[:2] == (0x88, (1001).to_bytes(2, "big") + b"server stopping")
        if engine == "nio":   # NIO times its last GOAWAY by a PING; nghttp2 sends one GOAWAY
            assert client.wait(lambda: any(not flags & ACK for _, flags, _ in client.of_type(PING)), 5)
            ping = next(payload for _, flags, payload in client.of_type(PING) if not flags & ACK)
            client.send(frame(PING, ACK, 0, ping))
        client.send(frame(DATA, END_STREAM, 1, masked(0x8, (1001).to_bytes(2, "big"))))
        assert client.wait(lambda: client.closed, 10), client.frames
        assert 1 not in client.resets(), "the stream ended by END_STREAM both ways"
    assert server.process.wait(timeout=10) == 0
    assert time.monotonic() - started < 8, server.log()
    assert "drained" in server.log()


def test_a_client_that_opens_no_window_is_closed_by_its_send_queue(moonwire, certs):
    """The stream's flow-control window is the WebSocket's back-pressure: a client that never
    opens it (no WINDOW_UPDATE for the stream) fills the send queue, which closes the WebSocket
    (1008) and, its close frame never read, resets the stream; the connection goes on."""
    server = start_tls(moonwire, certs, LIMITS_APP.replace("interval = 0.3", "interval = 0"), threads=1)
    with RawH2(target_of(server, certs, "tls")) as client:
        client.send(client.websocket_connect(1))
        assert client.wait(lambda: 1 in client.answered(), 5)
        client.send(frame(DATA, 0, 1, masked(0x1, b"flood")))
        # The connection's window opens wide, the stream's never does.
        client.send(frame(WINDOW_UPDATE, 0, 0, (1 << 30).to_bytes(4, "big")))
        assert server.wait_for_log("websocket send queue full", timeout=10), server.log()
        assert client.wait(lambda: 1 in client.resets(), 15), "the stream was not reset"
        assert client.resets()[1] == CANCEL
        client.send(client.get(3, "/hello"))
        assert client.wait(lambda: 3 in client.answered(), 5) and not client.closed
