"""moonwire.tcp (docs/lua-api.md, "TCP sockets") against real servers the tests start: a line
server in Python (asyncio, in a thread), the same over TLS with the test CA, and redis-server
from Debian driven by a pure-Lua RESP client (apps/tcp/resp.lua). apps/tcp answers each route
with JSON describing what the socket calls returned."""
import asyncio
import concurrent.futures
import pathlib
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request

import pytest
import websockets

from cluster_servers import RedisServer
from harness import free_port, wait_until

APP_DIR = pathlib.Path(__file__).parent / "apps" / "tcp"


class LineServer:
    """A line-protocol server on a loopback port, served by asyncio in its own thread. The first
    word of each line says what to do: PING, ECHO text, HELLO text, ALL (three lines, then
    close), BYTES (16 bytes, kept open), HALF ("abc", then close), SPLIT (a line whose CR LF
    arrives in pieces), SILENT (nothing), SLOW seconds, ENDLESS (a line that never ends)."""

    def __init__(self, tls_context=None):
        self.port = free_port()
        self.endless_sent = 0
        self.closed_greetings = []
        self._tls = tls_context
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        assert started.wait(5), "the line server did not start"

    def _run(self, started):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._tls))
        started.set()
        self._loop.run_forever()

    async def _serve(self, reader, writer):
        greeting = None
        try:
            while line := await reader.readline():
                word, _, rest = line.decode(errors="replace").strip().partition(" ")
                if word == "PING":
                    writer.write(b"+PONG\r\n")
                elif word == "ECHO":
                    writer.write(rest.encode() + b"\r\n")
                elif word == "HELLO":
                    greeting = rest
                    writer.write(b"hello " + rest.encode() + b"\r\n")
                elif word == "ALL":
                    writer.write(b"one\r\ntwo\r\nthree")
                    await writer.drain()
                    break
                elif word == "BYTES":
                    writer.write(b"0123456789abcdef")
                elif word == "HALF":
                    writer.write(b"abc")
                    await writer.drain()
                    break
                elif word == "SPLIT":
                    for piece in (b"spl", b"it\r", b"\nnext\r\n"):
                        writer.write(piece)
                        await writer.drain()
                        await asyncio.sleep(0.1)
                elif word == "SLOW":
                    await asyncio.sleep(float(rest))
                    writer.write(b"done\r\n")
                elif word == "ENDLESS":
                    chunk = b"x" * 65536
                    while self.endless_sent < 256 << 20:
                        writer.write(chunk)
                        await writer.drain()
                        self.endless_sent += len(chunk)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            if greeting is not None:
                self.closed_greetings.append(greeting)
            writer.close()

    def stop(self):
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def lines():
    server = LineServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_lines(certs):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.localhost.cert), str(certs.localhost.key))
    server = LineServer(context)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis():
    server = RedisServer()
    yield server.port
    server.stop()


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(app="tcp")


def ask(server, path, http_timeout=15, **query):
    response = server.get(path + "?" + urllib.parse.urlencode(query), timeout=http_timeout)
    assert response.status_code == 200, (response.status_code, response.text, server.log()[-2000:])
    return response.json()


def exchange(server, port, command, reads="*l", **query):
    return ask(server, "/exchange", port=port, command=command, reads=reads, **query)


# --- receiving ------------------------------------------------------------------------------

def test_a_line_comes_back_without_its_cr_lf(server, lines):
    data = exchange(server, lines.port, "ECHO hello world")
    assert data["sent"] == len("ECHO hello world\r\n")
    assert data["results"] == [{"data": "hello world"}]
    assert data["after_close"] == {"err": "closed"}


def test_lua_socket_3_names_and_a_cr_lf_split_across_reads(server, lines):
    data = exchange(server, lines.port, "SPLIT", reads="l,l")
    assert data["results"] == [{"data": "split"}, {"data": "next"}]


def test_all_reads_until_the_peer_closes_without_an_error(server, lines):
    data = exchange(server, lines.port, "ALL", reads="*l,a,*a")
    assert data["results"] == [{"data": "one"}, {"data": "two\r\nthree"}, {"data": ""}]


def test_byte_counts(server, lines):
    data = exchange(server, lines.port, "BYTES", reads="4,0,10,2")
    assert data["results"] == [{"data": "0123"}, {"data": ""}, {"data": "456789abcd"}, {"data": "ef"}]


def test_the_peer_closing_mid_pattern_gives_closed_and_the_partial(server, lines):
    data = exchange(server, lines.port, "HALF", reads="10,*l")
    assert data["results"] == [{"err": "closed", "partial": "abc"}, {"err": "closed", "partial": ""}]
    data = exchange(server, lines.port, "HALF", reads="*l")
    assert data["results"] == [{"err": "closed", "partial": "abc"}]


def test_a_silent_peer_gives_timeout_within_bounds(server, lines):
    started = time.monotonic()
    data = exchange(server, lines.port, "SILENT", reads="*l,5", settimeout=0.5)
    elapsed = time.monotonic() - started
    assert data["results"] == [{"err": "timeout", "partial": ""}, {"err": "timeout", "partial": ""}]
    assert 0.9 <= elapsed < 3, elapsed
    started = time.monotonic()
    data = exchange(server, lines.port, "SILENT", settimeouts=300)   # OpenResty's, in ms
    assert data["results"] == [{"err": "timeout", "partial": ""}]
    assert 0.25 <= time.monotonic() - started < 2


def test_a_timeout_hands_back_what_had_come(server, lines):
    data = exchange(server, lines.port, "BYTES", reads="20,*l", settimeout=0.3)
    assert data["results"] == [{"err": "timeout", "partial": "0123456789abcdef"}, {"err": "timeout", "partial": ""}]


def test_an_endless_line_is_refused_and_memory_stays_bounded(server, lines):
    before = server.rss_mib()
    data = exchange(server, lines.port, "ENDLESS", reads="*l,*l")
    assert data["results"] == [{"err": "line too long", "partial": ""}, {"err": "closed", "partial": ""}]
    # Reading stops at the cap (1 MiB) plus what the kernel buffers: the peer cannot push 256 MiB.
    assert lines.endless_sent < 32 << 20, lines.endless_sent
    assert server.rss_mib() - before < 64
    server.assert_alive("/meanwhile")


# --- sending, LuaSocket's other forms, closing ---------------------------------------------

def test_send_with_indexes_receive_with_a_prefix_and_close_variables(server, lines):
    data = ask(server, "/forms", port=lines.port)
    assert data == {"sent": 15, "line": "got: sliced", "text": True}


def test_a_second_call_on_a_busy_socket_is_refused(moonwire, lines):
    one_loop = moonwire(app="tcp", threads=1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        holding = pool.submit(ask, one_loop, "/hold", port=lines.port, wait=2)
        time.sleep(0.5)
        busy = ask(one_loop, "/busy")
        assert busy == {"err": "socket busy reading", "closed": 1}
        # Closing the socket ends the receive the first request waits in.
        assert holding.result(10) == {"err": "closed"}


def test_a_dropped_socket_is_closed_by_the_collector(moonwire, lines):
    one_loop = moonwire(app="tcp", threads=1)
    assert ask(one_loop, "/drop", port=lines.port) == {"line": "hello dropped"}
    ask(one_loop, "/collect")
    assert wait_until(lambda: "dropped" in lines.closed_greetings, timeout=5), lines.closed_greetings


def test_other_requests_are_served_while_a_handler_waits_on_a_slow_socket(moonwire, lines):
    one_loop = moonwire(app="tcp", threads=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(exchange, one_loop, lines.port, "SLOW 2")
        time.sleep(0.2)
        for _ in range(5):
            assert one_loop.get("/meanwhile").text == "ok"
        assert not slow.done(), "the other requests waited for the slow socket"
        assert slow.result(10)["results"] == [{"data": "done"}]


def test_a_wait_cut_off_by_the_handler_timeout_leaves_the_server_well(moonwire, lines):
    source = (APP_DIR / "main.lua").read_text()
    cut = moonwire("moonwire.options{limits = {handler_timeout = 1}}\n" + source,
                   files={"resp.lua": (APP_DIR / "resp.lua").read_text()}, threads=1)
    response = cut.get("/exchange?" + urllib.parse.urlencode({"port": lines.port, "command": "SILENT"}))
    assert response.status_code == 503
    ask(cut, "/collect")
    assert exchange(cut, lines.port, "PING")["results"] == [{"data": "+PONG"}]


# --- connecting -----------------------------------------------------------------------------

def test_connect_refused_is_a_value(server):
    port = free_port()
    assert ask(server, "/connect", port=port) == {"ok": False, "err": f"connect to 127.0.0.1:{port} refused"}


def test_a_name_that_does_not_resolve_is_a_value(server):
    data = ask(server, "/connect", host="nothing-here.invalid", port=80)
    assert data == {"ok": False, "err": "cannot resolve nothing-here.invalid: no such host"}


def test_a_connect_that_hangs_times_out(server):
    # A listener whose backlog is full never completes a handshake... on Linux it drops SYNs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        started = time.monotonic()
        data = ask(server, "/connect", port=port, timeout=1)
        elapsed = time.monotonic() - started
        for filler in fillers:
            filler.close()
    assert data == {"ok": False, "err": f"connect to 127.0.0.1:{port}: timeout after 1 s"}
    assert 0.9 <= elapsed < 3


def test_tls_is_verified_against_the_system_store_by_default(server, tls_lines):
    data = ask(server, "/connect", port=tls_lines.port, tls=1)
    assert data["ok"] is False
    assert data["err"].startswith(f"TLS handshake with 127.0.0.1:{tls_lines.port} failed: "), data
    assert data["err"].endswith(" failed: CERTIFICATE_VERIFY_FAILED"), data


def test_tls_with_the_test_ca(server, tls_lines, certs):
    data = exchange(server, tls_lines.port, "ECHO over tls", tls=1, ca=str(certs.ca))
    assert data["results"] == [{"data": "over tls"}]
    data = exchange(server, tls_lines.port, "ALL", reads="*a", tls=1, ca=str(certs.ca), host="localhost")
    assert data["results"] == [{"data": "one\r\ntwo\r\nthree"}]


def test_tls_checks_the_server_name(server, certs):
    # a.test's certificate names only a.test (no IP entry): the name decides.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.a_test.cert), str(certs.a_test.key))
    a_test = LineServer(context)
    try:
        data = ask(server, "/connect", port=a_test.port, tls=1, ca=str(certs.ca), server_name="a.test")
        assert data == {"ok": True}
        for name in ("b.test", None):
            query = {"server_name": name} if name else {}
            data = ask(server, "/connect", port=a_test.port, tls=1, ca=str(certs.ca), **query)
            assert data["ok"] is False and data["err"].startswith("TLS handshake with"), data
    finally:
        a_test.stop()


def test_tls_verify_false_accepts_any_certificate(server, tls_lines):
    data = exchange(server, tls_lines.port, "PING", tls=1, verify="false")
    assert data["results"] == [{"data": "+PONG"}]


def test_a_ca_file_that_does_not_load_is_a_value(server, tls_lines, tmp_path):
    data = ask(server, "/connect", port=tls_lines.port, tls=1, ca=str(tmp_path / "missing.pem"))
    assert data["ok"] is False and data["err"].startswith(f"TLS setup failed: tls.ca {tmp_path / 'missing.pem'}: "), data


def test_tls_against_a_plain_server_fails_as_a_value(server):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer_in_plain_text():
            peer, _ = listener.accept()
            with peer:
                peer.sendall(b"HTTP/1.0 400 not TLS\r\n\r\n")
                peer.recv(4096)

        plain = threading.Thread(target=answer_in_plain_text, daemon=True)
        plain.start()
        data = ask(server, "/connect", port=port, tls=1, verify="false", timeout=2)
        plain.join(5)
    assert data == {"ok": False, "err": f"TLS handshake with 127.0.0.1:{port} failed: WRONG_VERSION_NUMBER"}


# --- redis-server through a pure-Lua client --------------------------------------------------

def test_redis_through_a_pure_lua_resp_client(server, redis):
    data = ask(server, "/redis", port=redis)
    assert data["ping"] == "PONG"
    assert data["set"] == "OK" and data["get"] == "hello\r\nworld"
    assert data["missing"] is True
    assert data["incr"] == [1, 42]
    assert data["error_reply"]["ok"] is False
    assert data["error_reply"]["message"].startswith("ERR wrong number of arguments")
    assert data["big_ok"] is True
    assert data["pipeline"] == [0, 3, ["a", "b", "c"], None]


def test_many_redis_clients_at_once(server, redis):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: ask(server, "/redis", port=redis, key=f"k{i}"), range(16)))
    assert all(result["incr"] == [1, 42] and result["big_ok"] for result in results)


def test_redis_from_websocket_messages_and_a_timer_keeps_each_sockets_order(moonwire, redis):
    # Each message does a Redis round trip (RPUSH) before it answers; a timer counts with INCR.
    # The replies come in the order sent, and Redis saw the pushes in that order too.
    main = f"""
local resp = require "resp"
local function call(...)
  local client = assert(resp.connect("127.0.0.1", {redis}, {{timeout = 5}}))
  local reply, err = client:call(...)
  client:close()
  return reply, err
end
moonwire.every(0.05, function() call("INCR", "ticks") end)
function OnMessage(ws, text)
  local length = call("RPUSH", "order:" .. ws.guid, text)
  ws:send(text .. " " .. tostring(length))
end
moonwire.get("/order", function(req, res)
  res:json(call("LRANGE", "order:" .. req.query.guid, 0, -1))
end)
moonwire.get("/ticks", function(req, res) res:send(tostring(call("GET", "ticks"))) end)
function OnConnect(ws) ws:send(ws.guid) end
"""
    server = moonwire(main, files={"resp.lua": (APP_DIR / "resp.lua").read_text()})

    async def scenario():
        async with websockets.connect(server.url.replace("http", "ws") + "/") as ws:
            guid = await ws.recv()
            texts = [f"m{i}" for i in range(20)]
            for text in texts:
                await ws.send(text)
            return guid, texts, [await ws.recv() for _ in texts]

    guid, texts, replies = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert replies == [f"{text} {i + 1}" for i, text in enumerate(texts)]
    assert ask(server, "/order", guid=guid) == texts
    assert wait_until(lambda: int(urllib.request.urlopen(server.url + "/ticks").read() or 0) >= 3, timeout=5)


# --- arguments and contexts ------------------------------------------------------------------

def test_bad_arguments_raise_and_connect_may_not_run_at_load(moonwire):
    bad = moonwire('moonwire.get("/x", function(req, res)\n'
                   '  local ok, err = pcall(moonwire.tcp.connect, "127.0.0.1", 70000)\n'
                   '  local ok2, err2 = pcall(moonwire.tcp.connect, "127.0.0.1", 80, {tls = "yes"})\n'
                   '  res:json{ err = err, err2 = err2 }\n'
                   'end)\n')
    data = bad.get("/x").json()
    assert "moonwire.tcp.connect: expected a port from 1 to 65535, got 70000" in data["err"]
    assert "tls must be true, false or a table" in data["err2"]

