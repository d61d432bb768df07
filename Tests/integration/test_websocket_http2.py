"""WebSockets over HTTP/2 (RFC 8441): the server's SETTINGS_ENABLE_CONNECT_PROTOCOL, an extended
CONNECT (`:protocol = websocket`) through the same handshake hooks as an upgrade, RFC 6455
frames in the stream's DATA both ways (echo, fragments, subprotocol, permessage-deflate, a large
message through flow control), a chat with an HTTP/1.1 WebSocket, several WebSockets and
requests on one connection, closes from either side that end only their stream, and bad input
(refusals, unknown protocols, a plain CONNECT, `:protocol` outside CONNECT or before the
setting, a frame breaking RFC 6455, a reset); the limits are in test_websocket_http2_limits.py.
The raw client is http2_client.H2WebSocket (the h2 library) over TLS with ALPN h2 and over h2c
by prior knowledge; Chromium headless (Selenium) opens a wss WebSocket from a page it loaded
over HTTP/2, on that page's connection. Every test runs on both HTTP/2 engines (http2_site.py's
`engine` fixture: `nio` and `nghttp2`)."""
import os
import re
import zlib

import hpack
import pytest
from websockets.sync.client import connect

from http2_client import (CANCEL, END_HEADERS, END_STREAM, HEADERS, PREFACE, PROTOCOL_ERROR, SETTINGS, RawH2, frame,
                          parse_frames, raw_connect, read_until_closed, target_of)
from harness import chromium_driver, wait_until
from http2_site import engine, moonwire, moonwire_module  # noqa: F401 (fixtures)
from tls_certs import spki_sha256, start_tls
from websocket_client import masked, url

APP = r"""
moonwire.options{
  origins = { [[https?://(www\.)?example\.com]] },
  websocket = { max_message_size = 8 * 1024 * 1024 },
}
moonwire.get("/hello", function(req, res) res:send("hello " .. req.version) end)
moonwire.proxy("/upstream/.*", "http://127.0.0.1:9/")   -- forwards HTTP/1.1 upgrades only

function OnBeforeCommand(req, res)
  if req.path == "/busy" then res.status = 429; res:send("busy"); return true end
end

function OnHandshake(req, res)
  if req.path == "/refuse" then res.status = 403; res:header("X-Why", "refused"); res:send("no") return end
  res:header("X-Handshake", req.method .. " " .. req.version .. " " .. req.path)
  local offered = req:header("Sec-WebSocket-Protocol")
  if offered and offered:find("chat") then res:header("Sec-WebSocket-Protocol", "chat") end
end

function OnConnect(ws) moonwire.log.info("connect " .. ws.version .. " " .. ws.guid) end

function OnMessage(ws, text)
  local command, argument = text:match("^(%w+) ?(.*)$")
  if command == "join" then ws:subscribe(argument); ws:send("joined " .. argument)
  elseif command == "say" then
    local channel, words = argument:match("^(%S+) (.*)$")
    ws:send("sent " .. moonwire.broadcast(words, {channel = channel, exclude = {ws.guid}}))
  elseif command == "version" then ws:send(ws.version .. " " .. (ws.protocol or "-"))
  elseif command == "guid" then ws:send(ws.guid)
  elseif command == "close" then ws:close(4001, "asked to")
  else ws:send(text) end
end

function OnBinary(ws, data) ws:send_binary(data) end
function OnDisconnect(ws, code, reason) moonwire.log.info("disconnect " .. ws.guid .. " " .. code) end
function OnError(conn, message) moonwire.log.info("OnError " .. message) end
"""

OK_ORIGIN = [("origin", "https://example.com")]


@pytest.fixture(scope="module")
def server(moonwire_module, certs):
    """A TLS listener (ALPN h2) and the plain port (h2c by prior knowledge, and HTTP/1.1)."""
    return start_tls(moonwire_module, certs, APP, threads=2)


@pytest.fixture(params=["tls", "h2c"])
def target(request, server, certs):
    return target_of(server, certs, request.param)


def guid_of(ws):
    ws.send_text("guid")
    return ws.text()


def test_settings_allow_extended_connect(target):
    with RawH2(target) as client:
        assert client.server_settings()[0x8] == 1, "SETTINGS_ENABLE_CONNECT_PROTOCOL"


def test_echo_handshake_and_version(target, server):
    with target.h2() as client:
        ws = client.websocket("/echo?x=1", headers=[("sec-websocket-protocol", "other, chat"), *OK_ORIGIN])
        assert ws.status == 200 and not ws.response.done
        headers = ws.response.headers
        assert headers["sec-websocket-protocol"] == "chat"
        assert headers["x-handshake"] == "CONNECT 2 /echo", "OnHandshake sees the extended CONNECT as HTTP/2"
        assert "sec-websocket-accept" not in headers and "upgrade" not in headers and "connection" not in headers
        ws.send_text("hello")
        assert ws.text() == "hello"
        ws.send(0x2, b"\x00\x01\xff")
        assert ws.receive() == (0x82, b"\x00\x01\xff")
        ws.send(0x1, b"frag", fin=False)
        ws.send(0x0, "ment ✓".encode(), fin=True)
        assert ws.text() == "fragment ✓"
        ws.send(0x9, b"are you there")
        assert ws.receive() == (0x8A, b"are you there"), "a ping is answered with a pong"
        ws.send_text("version")
        assert ws.text() == "2 chat"
        guid = guid_of(ws)
    assert server.wait_for_log(f"connect 2 {guid}")


def test_permessage_deflate_and_a_large_message(target):
    with target.h2() as client:
        ws = client.websocket("/", headers=[("sec-websocket-extensions", "permessage-deflate"), *OK_ORIGIN])
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        text = "compress me " * 200
        deflater = zlib.compressobj(wbits=-15)
        compressed = deflater.compress(text.encode()) + deflater.flush(zlib.Z_SYNC_FLUSH)
        ws.send(0x1, compressed[:-4], rsv=0x40)
        first, payload = ws.receive()
        assert first == 0xC1, "a compressed text frame (RSV1)"
        inflater = zlib.decompressobj(wbits=-15)    # the server may keep its window across messages
        assert inflater.decompress(payload + b"\x00\x00\xff\xff").decode() == text
        # 3 MiB each way: more than the stream's flow-control window (1 MiB) both ways.
        big = os.urandom(3 * 1024 * 1024)
        client.send_body(ws.stream, masked(0x2, big), end_stream=False)
        first, payload = ws.receive(timeout=30)
        if first == 0xC2:
            payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
        assert first in (0x82, 0xC2) and payload == big


def test_chat_between_http2_and_http1_websockets(server, certs):
    target = target_of(server, certs, "tls")
    with target.h2() as client, connect(url(server, "/chat"), origin="https://example.com") as http1:
        ws = client.websocket("/chat", headers=OK_ORIGIN)
        ws.send_text("join lobby")
        assert ws.text() == "joined lobby"
        http1.send("join lobby")
        assert http1.recv(timeout=5) == "joined lobby"
        http1.send("say lobby hello from HTTP/1.1")
        assert http1.recv(timeout=5) == "sent 1"
        assert ws.text() == "hello from HTTP/1.1"
        ws.send_text("say lobby hello from HTTP/2")
        assert ws.text() == "sent 1"
        assert http1.recv(timeout=5) == "hello from HTTP/2"
        http1.send("version")
        assert http1.recv(timeout=5) == "1.1 -"


def test_websockets_and_requests_share_a_connection(target, server):
    """Two WebSockets and requests on one connection; closing one WebSocket, from the server
    or from the client, ends its stream alone."""
    with target.h2() as client:
        first = client.websocket("/one", headers=OK_ORIGIN)
        second = client.websocket("/two", headers=OK_ORIGIN)
        assert first.status == second.status == 200
        requests = [client.request("GET", "/hello") for _ in range(3)]
        first.send_text("a")
        second.send_text("b")
        assert (first.text(), second.text()) == ("a", "b")
        assert all(bytes(client.finish(stream).body) == b"hello 2" for stream in requests)
        first_guid, second_guid = guid_of(first), guid_of(second)

        # The server closes the first: its close frame, then END_STREAM once the client answers.
        first.send_text("close")
        assert first.receive() == (0x88, (4001).to_bytes(2, "big") + b"asked to")
        first.close(4001)
        assert first.ended(5) and first.response.ended and first.response.reset is None
        first.end()
        assert server.wait_for_log(f"disconnect {first_guid} 4001")
        second.send_text("still here")
        assert second.text() == "still here"
        assert bytes(client.get("/hello").body) == b"hello 2"

        # The client closes the second: the server answers the close and ends the stream.
        second.close(1000)
        assert second.receive() == (0x88, (1000).to_bytes(2, "big"))
        assert second.ended(5) and second.response.reset is None
        second.end()
        assert server.wait_for_log(f"disconnect {second_guid} 1000")
        assert bytes(client.get("/hello").body) == b"hello 2"
        third = client.websocket("/three", headers=OK_ORIGIN)
        third.send_text("again")
        assert third.text() == "again"
        assert client.terminated is None and not client.closed


def test_a_client_that_never_ends_its_side_is_reset(target):
    with target.h2() as client:
        ws = client.websocket("/", headers=OK_ORIGIN)
        ws.close(1000)
        assert ws.receive() == (0x88, (1000).to_bytes(2, "big"))
        assert ws.ended(5)
        assert client.wait(lambda: ws.response.reset is not None, 5), "no RST_STREAM after the grace"
        assert ws.response.reset == CANCEL
        assert bytes(client.get("/hello").body) == b"hello 2"


def test_a_frame_breaking_rfc6455_closes_1002_and_ends_only_its_stream(target, server):
    with target.h2() as client:
        bad = client.websocket("/", headers=OK_ORIGIN)
        good = client.websocket("/", headers=OK_ORIGIN)
        bad_guid = guid_of(bad)
        bad.client.conn.send_data(bad.stream, b"\x81\x05hello")    # not masked: RFC 6455 section 5.1
        bad.client.flush()
        first, payload = bad.receive()
        assert first == 0x88 and payload[:2] == (1002).to_bytes(2, "big")
        assert bad.ended(5) and client.wait(lambda: bad.response.reset is not None, 5)
        assert server.wait_for_log(f"disconnect {bad_guid} 1002")
        good.send_text("unaffected")
        assert good.text() == "unaffected"
        assert bytes(client.get("/hello").body) == b"hello 2"


def test_a_reset_stream_is_a_lost_connection(target, server):
    with target.h2() as client:
        ws = client.websocket("/", headers=OK_ORIGIN)
        guid = guid_of(ws)
        client.conn.reset_stream(ws.stream, error_code=CANCEL)
        client.flush()
        assert server.wait_for_log(f"disconnect {guid} 1006")
        assert bytes(client.get("/hello").body) == b"hello 2"


def test_refusals_are_answered_on_their_stream(target):
    with target.h2() as client:
        refused = client.websocket("/refuse", headers=OK_ORIGIN)
        assert refused.status == 403 and refused.response.headers["x-why"] == "refused"
        assert client.wait(lambda: refused.response.ended and refused.response.reset == 0, 5), "END_STREAM, then RST(NO_ERROR)"
        assert bytes(refused.response.body) == b"no"
        foreign = client.websocket("/", headers=[("origin", "https://evil.test")])
        assert foreign.status == 403
        busy = client.websocket("/busy", headers=OK_ORIGIN)
        assert busy.status == 429 and client.wait(lambda: bytes(busy.response.body) == b"busy", 5), "OnBeforeCommand"
        unknown = client.websocket("/", protocol="connect-udp", headers=OK_ORIGIN)
        assert unknown.status == 501 and client.wait(lambda: unknown.response.reset == 0, 5)
        ended = client.request("CONNECT", "/", headers=[(":protocol", "websocket"), *OK_ORIGIN], end_stream=True)
        assert client.finish(ended).status == 400
        proxied = client.websocket("/upstream/ws", headers=OK_ORIGIN)
        assert proxied.status == 501, "a proxy route has no HTTP/2 WebSocket to forward"
        assert bytes(client.get("/hello").body) == b"hello 2"
        assert client.terminated is None


def test_plain_connect_and_protocol_outside_connect(target, server):
    """A plain CONNECT (a proxy's tunnel) is answered 400 as on HTTP/1.1; `:protocol` on a GET
    is a malformed request (RFC 8441 section 4), as is a connection-specific field (RFC 9113
    section 8.2.2): that stream is reset with PROTOCOL_ERROR, with a "bad HTTP/2 request" line
    and OnError, on both engines. None ends the connection."""
    mark = server.log_mark()
    with RawH2(target) as client:
        client.send(frame(HEADERS, END_HEADERS, 1, client.encoder.encode(
            [(":method", "CONNECT"), (":authority", "example.com:443")])))
        client.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, client.encoder.encode(
            [(":method", "GET"), (":scheme", target.scheme), (":authority", "x"), (":path", "/hello"),
             (":protocol", "websocket")])))
        client.send(frame(HEADERS, END_HEADERS | END_STREAM, 5, client.encoder.encode(
            [(":method", "GET"), (":scheme", target.scheme), (":authority", "x"), (":path", "/hello"),
             ("connection", "keep-alive")])))
        client.send(client.get(7, "/hello"))
        body = lambda stream: b"".join(payload for s, _, payload in client.of_type(0) if s == stream)  # noqa: E731
        assert client.wait(lambda: {1, 3, 5} <= set(client.resets()) and body(7) == b"hello 2", 5), client.frames
        assert client.resets() == {1: 0, 3: PROTOCOL_ERROR, 5: PROTOCOL_ERROR}
        assert body(1) == b"400 Bad Request\n", "the reset came after the whole answer"
        assert not client.closed and not client.of_type(7), "no GOAWAY"
    log = lambda: server.log_since(mark)  # noqa: E731
    assert wait_until(lambda: log().count("OnError HTTP/2: ") >= 2), log()
    assert log().count("bad HTTP/2 request") == 2 and log().count("OnError HTTP/2: ") == 2, log()


def test_extended_connect_before_the_setting_applies(target, server):
    """RFC 8441 section 3: a client must see SETTINGS_ENABLE_CONNECT_PROTOCOL first; one that
    sends `:protocol` before acknowledging the server's SETTINGS gets a stream error, logged and
    reported as a malformed request on both engines."""
    mark = server.log_mark()
    sock = raw_connect(target)
    try:
        block = hpack.Encoder().encode([(":method", "CONNECT"), (":scheme", target.scheme), (":authority", "x"),
                                        (":path", "/"), (":protocol", "websocket")])
        sock.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS, 1, block))
        data, closed = read_until_closed(sock, 1.5)
    finally:
        sock.close()
    frames = parse_frames(data)
    assert (3, 0, 1, PROTOCOL_ERROR.to_bytes(4, "big")) in frames, frames
    assert not closed and 7 not in [kind for kind, *_ in frames], "the connection goes on"
    log = lambda: server.log_since(mark)  # noqa: E731
    assert wait_until(lambda: "OnError HTTP/2: " in log()), log()
    assert log().count("bad HTTP/2 request") == 1 and log().count("OnError HTTP/2: ") == 1, log()


# --- a browser -----------------------------------------------------------------------------

BROWSER_APP = APP.replace("origins = { ", "origins = { [[^https://localhost:\\d+$]], ") + r"""
moonwire.get("/page", function(req, res)
  moonwire.log.info("page " .. req.version .. " " .. req.remote_port)
  res:header("Content-Type", "text/html")
  res:send([[<!doctype html><pre id=log></pre><script>
const ws = new WebSocket("wss://" + location.host + "/chat");
const log = text => document.getElementById("log").textContent += text + "\n";
ws.onopen = () => ws.send("join lobby");
ws.onmessage = event => log(event.data);
ws.onclose = event => log("closed " + event.code);
window.say = text => ws.send("say lobby " + text);
</script>]])
end)
local handshake = OnHandshake
function OnHandshake(req, res)
  moonwire.log.info("handshake " .. req.version .. " " .. req.remote_port)
  return handshake(req, res)
end
"""


def test_chromium_opens_its_websocket_on_the_pages_http2_connection(moonwire, certs):
    """A page loaded over https with HTTP/2 opens a wss WebSocket to its origin: Chromium sends
    it as an extended CONNECT on the page's connection (the server's SETTINGS allow it), and
    chat messages flow both ways with an HTTP/1.1 WebSocket."""
    server = start_tls(moonwire, certs, BROWSER_APP, threads=2)
    driver = chromium_driver(f"--ignore-certificate-errors-spki-list={spki_sha256(certs.localhost.cert)}")
    try:
        driver.get(f"https://localhost:{server.tls_port}/page")
        text = lambda: driver.find_element("id", "log").text  # noqa: E731
        assert wait_until(lambda: "joined lobby" in text(), timeout=10), (text(), server.log())
        pages = [line.split("page ")[1].split() for line in server.log().splitlines() if "] page " in line]
        handshakes = [line.split("handshake ")[1].split() for line in server.log().splitlines() if "] handshake " in line]
        assert pages[0][0] == "2" and handshakes == [pages[0]], "the WebSocket came as a stream of the page's connection"
        assert "connect 2 " in server.log()
        with connect(url(server, "/chat"), origin="https://example.com") as http1:
            http1.send("join lobby")
            assert http1.recv(timeout=5) == "joined lobby"
            http1.send("say lobby hello browser")
            assert http1.recv(timeout=5) == "sent 1"
            assert wait_until(lambda: "hello browser" in text(), timeout=5), text()
            driver.execute_script("say('hello from chromium')")
            assert http1.recv(timeout=5) == "hello from chromium"
        driver.execute_script("ws.close(1000)")
        assert wait_until(lambda: "closed 1000" in text(), timeout=5), text()
        assert wait_until(lambda: re.search(r"disconnect \S+ 1000", server.log()), timeout=5), server.log()
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert [entry for entry in errors if "favicon.ico" not in entry["message"]] == []
    finally:
        driver.quit()
