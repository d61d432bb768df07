"""WebSocket on the HTTP port: the handshake and origins, echo, close codes, protocol
violations, big messages, compression, and faults in WebSocket events; Python's websockets
client and raw frames. Channels, broadcast and heartbeats are in test_websocket_broadcast.py."""
import asyncio
import json
import socket
import threading
import time

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from harness import APPS
from websocket_client import masked, raw_upgrade, run, url

# The chat app both WebSocket test files share (its commands: join, say, write, list, close...).
APP = (APPS / "websocket_chat" / "main.lua").read_text()


@pytest.fixture
def server(moonwire):
    return moonwire(APP, threads=2)


def test_echo_text_binary_and_fragments(server):
    async def scenario():
        async with websockets.connect(url(server), compression=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01\xff")
            assert await ws.recv() == b"\x00\x01\xff"
            await ws.send(["frag", "men", "ted"])
            assert await ws.recv() == "fragmented"
            await ws.send("héllo wörld ✓")
            assert await ws.recv() == "héllo wörld ✓"
    run(scenario())


def test_subprotocol_headers_and_data(server):
    async def scenario():
        async with websockets.connect(url(server), subprotocols=["chat", "other"], user_agent_header="tester/1") as ws:
            assert ws.subprotocol == "chat"
            await ws.send("ping")
            await ws.recv()
            await ws.send("me")
            me = json.loads(await ws.recv())
            assert me["protocol"] == "chat" and me["count"] == 2 and me["agent"] == "tester/1"
            assert len(me["guid"]) == 36
    run(scenario())



def test_close_codes_and_disconnect_event(moonwire):
    server = moonwire(APP, threads=1)  # one VM, so the events table sees every connection
    async def scenario():
        async with websockets.connect(url(server)) as ws:
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4001 and closed.value.rcvd.reason == "asked to"
        async with websockets.connect(url(server)) as ws:
            await ws.close(code=4002, reason="bye")
        await asyncio.sleep(0.3)
        async with websockets.connect(url(server)) as ws:
            await ws.send("events")
            return await ws.recv()
    events = run(scenario())
    assert "disconnect 4002 bye" in events


def test_handshake_and_origin_refusal(server):
    async def refused(path, origin=None):
        with pytest.raises(InvalidStatus) as error:
            async with websockets.connect(url(server, path), origin=origin):
                pass
        return error.value.response.status_code
    assert run(refused("/refuse")) == 403
    assert run(refused("/", origin="https://evil.test")) == 403
    async def allowed():
        async with websockets.connect(url(server), origin="https://www.example.com") as ws:
            await ws.send("ok")
            return await ws.recv()
    assert run(allowed()) == "ok"


def test_sixteen_mib_message_and_too_big(server):
    async def scenario():
        async with websockets.connect(url(server), max_size=None, compression=None) as ws:
            big = "y" * (16 * 1024 * 1024)
            await ws.send("size " + big)
            assert await ws.recv() == f"size {len(big)}"
        async with websockets.connect(url(server), max_size=None, compression=None) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.send("z" * (21 * 1024 * 1024))
                await ws.recv()
            assert closed.value.rcvd.code == 1009
    run(scenario())


def close_code(data):
    assert data[0] == 0x88, data[:4]
    return int.from_bytes(data[2:4], "big")


# The ids name the cases: the frames carry random masks, and xdist's workers must collect the
# same test ids.
@pytest.mark.parametrize("frame, code", [
    (masked(0x1, b"\xff\xfe"), 1007),
    (masked(0x1, b"x", rsv=0x40), 1002),
    (masked(0x0, b"orphan"), 1002),
    (masked(0x9, b"p", fin=False), 1002),
    (bytes([0x81, 0x02]) + b"hi", 1002),
    (masked(0xB, b""), 1002),
    (masked(0x8, (999).to_bytes(2, "big")), 1002),
], ids=["invalid UTF-8", "RSV1 without an extension", "continuation without a message",
        "fragmented control frame", "unmasked client frame", "reserved opcode", "invalid close code"])
def test_protocol_violations_close_with_the_right_code(server, frame, code):
    s = raw_upgrade(server)
    s.sendall(frame)
    data = s.recv(4096)
    assert close_code(data) == code
    s.close()
    async def still_serving():
        async with websockets.connect(url(server)) as ws:
            await ws.send("alive")
            return await ws.recv()
    assert run(still_serving()) == "alive"


def test_bad_handshake_is_400(server):
    reply = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 7\r\n\r\n").data
    assert reply.startswith(b"HTTP/1.1 400")


def test_refused_handshake_keeps_the_connection_for_http(server):
    """OnHandshake's refusal is an HTTP/1.1 answer: the request behind it on the same
    connection is answered too, not left waiting for an upgrade that never came."""
    reply = server.raw(b"GET /refuse HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                       b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").data
    assert reply.startswith(b"HTTP/1.1 403")
    assert reply.count(b"HTTP/1.1 ") == 2, reply


def test_non_reading_client_is_cut_off_and_others_are_fine(server):
    s = raw_upgrade(server)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for _ in range(3):
        s.sendall(masked(0x1, b"flood"))
    time.sleep(2)
    async def other():
        async with websockets.connect(url(server)) as ws:
            await ws.send("still here")
            return await ws.recv()
    assert run(other()) == "still here"
    assert server.wait_for_log("websocket send queue full, closing with 1008")
    s.close()


def test_compression_is_negotiated(server):
    async def scenario():
        async with websockets.connect(url(server), compression="deflate") as ws:
            assert "permessage-deflate" in ws.response.headers.get("sec-websocket-extensions", "")
            text = "compress me " * 1000
            await ws.send(text)
            assert await ws.recv() == text
    run(scenario())


def upgrade(server, path="/", key="dGhlIHNhbXBsZSBub25jZQ==", extra=""):
    """A raw upgrade request; returns the status line and the head."""
    with server.connect() as sock:
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n")[0].decode("latin-1")
    return head.split("\r\n")[0], head, data


def test_an_error_in_onhandshake_refuses_the_upgrade(moonwire):
    server = moonwire("""
        function OnHandshake(req, res) error("auth check broke") end
        function OnException(err, req) moonwire.log.warn("exception", err.event, req.path) end
        function OnConnect(ws) ws:send("let in") end
    """)
    status, _, _ = upgrade(server, "/chat")
    assert status.startswith("HTTP/1.1 500"), status
    assert server.wait_for_log("exception OnHandshake /chat")


def test_a_budget_fault_in_onhandshake_refuses_with_503(moonwire):
    server = moonwire("""
        moonwire.options{ limits = { instructions = 1000000 } }
        function OnHandshake(req, res) while true do end end
        function OnConnect(ws) end
    """)
    status, _, _ = upgrade(server, "/chat")
    assert status.startswith("HTTP/1.1 503"), status


def test_onbeforecommand_guards_upgrade_requests_too(moonwire):
    server = moonwire("""
        function OnBeforeCommand(req, res)
          res:header("X-Seen", "yes")
          if req.path:find("^/admin") then res.status = 403; res:send("no"); return true end
        end
        function OnHandshake(req, res) res:header("X-Handshake", req.path) end
        function OnConnect(ws) ws:send("welcome") end
    """)
    status, head, _ = upgrade(server, "/admin/ws")
    assert status.startswith("HTTP/1.1 403"), status
    status, head, _ = upgrade(server, "/open")
    assert status.startswith("HTTP/1.1 101"), status
    assert "x-seen: yes" in head.lower() and "x-handshake: /open" in head.lower()


def test_onbeforecommand_may_wait_before_an_upgrade(moonwire):
    server = moonwire("""
        function OnBeforeCommand(req, res) moonwire.sleep(0.2) end
        function OnHandshake(req, res) moonwire.sleep(0.1) end
        function OnConnect(ws) ws:send("after waiting") end
    """)
    started = time.monotonic()
    with connect(url(server), open_timeout=5) as ws:
        assert ws.recv(timeout=5) == "after waiting"
    assert time.monotonic() - started >= 0.3


def test_without_websocket_events_an_upgrade_is_an_ordinary_request(moonwire):
    server = moonwire("""
        function OnCommandGet(req, res) res:send("plain " .. req.path .. " " .. tostring(req:header("upgrade"))) end
    """)
    status, _, data = upgrade(server, "/anything")
    assert status.startswith("HTTP/1.1 200"), status
    assert data.endswith(b"plain /anything websocket")


@pytest.mark.parametrize("key", ["short", "!!!notbase64!!!", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQAA",
                                 "dGhlIHNhbXBsZSBub25jZQ==dGhl"])
def test_a_malformed_websocket_key_gets_400(moonwire, key):
    server = moonwire("""
        function OnError(conn, message) moonwire.log.warn("onerror", message) end
        function OnConnect(ws) end
    """)
    status, _, _ = upgrade(server, "/", key=key)
    assert status.startswith("HTTP/1.1 400"), (key, status)
    assert server.wait_for_log("onerror bad WebSocket handshake")


def test_ws_send_in_ondisconnect_returns_false(moonwire):
    server = moonwire("""
        function OnConnect(ws) end
        function OnMessage(ws, text)
          if text == "bye" then
            ws:close(1000)
            moonwire.log.warn("send after close", tostring(ws:send("late")))
          else
            ws:send(text)
          end
        end
        function OnDisconnect(ws) moonwire.log.warn("send in OnDisconnect", tostring(ws:send("late"))) end
    """)
    with connect(url(server), open_timeout=5) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    assert server.wait_for_log("send in OnDisconnect false")
    with connect(url(server), open_timeout=5) as ws:
        ws.send("bye")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert server.wait_for_log("send after close false")


FAULT_APP = """
moonwire.options{ limits = { instructions = 2000000 } }
function OnException(err, req) moonwire.log.warn("exception", err.kind, err.event) end
function OnCommandGet(req, res)
  if req.path == "/spin" then while true do end end
  res:send("ok")
end
function OnConnect(ws) end
function OnMessage(ws, text)
  if text == "spin" then while true do end end
  if text == "fail" then error("message handler broke") end
  if text:find("^work") then local n = 0 for i = 1, 300000 do n = n + i end end
  ws:send(text)
end
"""


def test_a_budget_fault_on_one_loop_never_closes_a_socket_on_another(moonwire):
    server = moonwire(FAULT_APP, threads=2)
    spins, echoes, failures = [], [0, 0], []
    done = threading.Event()

    def talk(ws, index):
        # Each socket keeps its loop busy in OnMessage while the other loop spins.
        try:
            while not done.is_set() and echoes[index] < 5000:
                ws.send(f"work {echoes[index]}")
                assert ws.recv(timeout=10) == f"work {echoes[index]}"
                echoes[index] += 1
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(repr(error))

    with connect(url(server), open_timeout=5) as first, connect(url(server), open_timeout=5) as second:
        talkers = [threading.Thread(target=talk, args=(ws, i)) for i, ws in enumerate((first, second))]
        for talker in talkers:
            talker.start()
        # New connections take the loops in turn: the spins land on both loops.
        for _ in range(16):
            spins.append(httpx.get(server.url + "/spin", timeout=30).status_code)
        done.set()
        for talker in talkers:
            talker.join()
    assert not failures, failures
    assert spins == [503] * 16
    assert min(echoes) > 20, f"the messages did not overlap the spins: {echoes}"
    assert server.log().count("exception cpu_budget OnCommandGet") == 16


def test_a_budget_fault_in_a_websocket_event_closes_only_that_socket(moonwire):
    server = moonwire(FAULT_APP, threads=1)
    with connect(url(server), open_timeout=5) as bystander, connect(url(server), open_timeout=5) as spinner:
        spinner.send("spin")
        with pytest.raises(ConnectionClosed) as closed:
            spinner.recv(timeout=10)
        assert closed.value.rcvd.code == 1011
        bystander.send("still here")
        assert bystander.recv(timeout=5) == "still here"
    assert server.wait_for_log("exception cpu_budget OnMessage")


def test_an_error_in_a_websocket_event_reaches_onexception_and_keeps_the_socket(moonwire):
    server = moonwire(FAULT_APP, threads=1)
    with connect(url(server), open_timeout=5) as ws:
        ws.send("fail")
        ws.send("after")
        assert ws.recv(timeout=5) == "after"
    assert server.wait_for_log("exception error OnMessage")
    assert "message handler broke" in server.log()
