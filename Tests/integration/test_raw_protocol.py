"""Raw protocols on the HTTP port (OnUnknownProtocol, docs/lua-api.md "Raw connections"): a line
protocol served by a Lua script beside HTTP/1.1 and HTTP/2 on the same port, over real sockets.
The app's protocol: the first line may be anything that is not HTTP; then `PING` (answered
`PONG`), `echo <text>`, `flood <n>` (n MiB written, with a 2 s write timeout), `hang` (a read
with the default timeout), `patient` (reads again after every timeout), `spin` (a loop without
end), `quit`. First bytes `nope` make the event return false, `boom`
raise an error, `truthy` return "yes" (not true), `spawn` serve the connection from a thread moonwire.spawn started."""
import signal
import socket
import time

import httpx
import pytest

from harness import LUA_RECORD, Bystander, exchange, wait_until
from tls_certs import client_context, start_tls

APP = LUA_RECORD + r"""
moonwire.options{ limits = { header_timeout = 2, handler_timeout = 4 } }

moonwire.get("/alive", function(req, res) res:send("alive") end)
moonwire.get("/meanwhile", function(req, res) res:send("meanwhile") end)

local chunk = string.rep("x", 1024 * 1024)

local function serve(conn, pending)
  local opening = pending:match("^[^\r\n]*")
  conn:write(("first %d bytes from %s\r\n"):format(#pending, conn.remote_ip))
  while true do
    local stop = pending:find("\n", 1, true)
    if not stop then
      local more, err = conn:read()
      if more == nil then
        record("raw.log", ("end %s after %s"):format(tostring(err), opening))
        conn:close()
        return true
      end
      pending = pending .. more
    else
      local line = pending:sub(1, stop - 1):gsub("\r$", "")
      pending = pending:sub(stop + 1)
      local word, rest = line:match("^(%S*)%s?(.*)$")
      if word == "PING" then
        conn:write("PONG\r\n")
      elseif word == "echo" then
        conn:write(rest .. "\r\n")
      elseif word == "flood" then
        conn:settimeout(2)
        for i = 1, tonumber(rest) do
          local ok, err = conn:write(chunk)
          if not ok then
            record("flood.log", ("stopped after %d MiB: %s"):format(i - 1, err))
            return true
          end
        end
        record("flood.log", "all written")
      elseif word == "hang" then
        local more, err = conn:read()
        conn:write("read: " .. tostring(more) .. " " .. tostring(err) .. "\r\n")
      elseif word == "patient" then
        repeat local more, err = conn:read() until err ~= "timeout"
      elseif word == "spin" then
        while true do end
      elseif word == "quit" then
        conn:write("BYE\r\n")
        conn:close()
        return true
      end
    end
  end
end

function OnUnknownProtocol(conn, first)
  record("first.log", (first:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
  if first:find("^nope") then return false end
  if first:find("^truthy") then return "yes" end
  if first:find("^boom") then error("refused on purpose") end
  if first:find("^spawn") then
    moonwire.spawn(serve, conn, first)
    return true
  end
  return serve(conn, first)
end
"""


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(APP)


def lines(sock, count, timeout=5.0):
    """Reads until `count` lines (CR LF) arrived; the text."""
    sock.settimeout(timeout)
    data = b""
    while data.count(b"\r\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def closed_by_server(sock, timeout=5.0):
    """True when the server closes the connection within `timeout` (what it sent is dropped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# --- a line protocol on the HTTP port ---------------------------------------------------------

def test_line_protocol_ping_pong_echo_quit(server):
    with server.connect() as sock:
        sock.sendall(b"PING\r\n")
        assert lines(sock, 2) == "first 6 bytes from 127.0.0.1\r\nPONG\r\n"
        sock.sendall(b"echo hello raw\r\nPING\r\n")
        assert lines(sock, 2) == "hello raw\r\nPONG\r\n"
        sock.sendall(b"quit\r\n")
        assert lines(sock, 1) == "BYE\r\n"
        assert closed_by_server(sock)


@pytest.mark.parametrize("first", [b"HELO\r\n", b"PING\n", b"hello\n", b"SSH-2.0-test\r\n"])
def test_short_first_lines_reach_the_event(server, first):
    with server.connect() as sock:
        sock.sendall(first)
        assert lines(sock, 1).startswith(f"first {len(first)} bytes from 127.0.0.1\r\n")
    assert wait_until(lambda: first.hex() in server.records("first.log"))


def test_bytes_split_across_many_small_writes(server):
    with server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"PING\r\necho split into single bytes\r\n":
            sock.send(bytes([byte]))
            time.sleep(0.005)
        # The event got what had come when "PING\r" ruled HTTP out; the rest came by conn:read.
        answer = lines(sock, 3)
        assert answer.endswith("PONG\r\nsplit into single bytes\r\n"), answer
        assert answer.startswith("first ")


def test_garbage_binary_first_bytes(server):
    garbage = bytes([0x00, 0xFF, 0x16, 0x01, 0x80, 0x7F]) + b"\n"
    with server.connect() as sock:
        sock.sendall(garbage)
        assert lines(sock, 1) == f"first {len(garbage)} bytes from 127.0.0.1\r\n"
        sock.sendall(b"PING\n")
        assert lines(sock, 1) == "PONG\r\n"
    assert wait_until(lambda: garbage.hex() in server.records("first.log"))


def test_client_that_closes_mid_read_gives_nil(server):
    # Named by its opening line: the other tests' connections end on this log too, and late.
    with server.connect() as sock:
        sock.sendall(b"echo closes mid read\r\n")
        assert "closes mid read" in lines(sock, 2)
    # conn:read() returned a single nil: err is nil too.
    mine = lambda: [r for r in server.records("raw.log") if r.endswith(" after echo closes mid read")]
    assert wait_until(lambda: mine() == ["end nil after echo closes mid read"]), server.records("raw.log")
    time.sleep(0.2)
    assert mine() == ["end nil after echo closes mid read"]


def test_client_that_shuts_down_its_side_still_gets_the_answer(server):
    with server.connect() as sock:
        sock.sendall(b"PING\necho after my end\n")
        sock.shutdown(socket.SHUT_WR)
        assert lines(sock, 3).endswith("PONG\r\nafter my end\r\n")
        assert closed_by_server(sock), "the script closes once conn:read returned nil"


def test_spawned_thread_serves_the_connection(server):
    with server.connect() as sock:
        sock.sendall(b"spawn\n")
        assert lines(sock, 1) == "first 6 bytes from 127.0.0.1\r\n"
        sock.sendall(b"echo from a thread\n")
        assert lines(sock, 1) == "from a thread\r\n"


def test_silent_client_read_times_out_after_header_timeout(server):
    with server.connect() as sock:
        sock.sendall(b"hang\n")
        assert lines(sock, 1).startswith("first ")
        started = time.monotonic()
        assert lines(sock, 1, timeout=6) == "read: nil timeout\r\n"
        assert 1.5 < time.monotonic() - started < 4, "header_timeout is 2 s in this app"
        sock.sendall(b"PING\n")
        assert lines(sock, 1) == "PONG\r\n", "a read that timed out leaves the connection open"


def test_silent_client_is_not_held_past_handler_timeout(server):
    mark = server.log_mark()
    with server.connect() as sock:
        sock.sendall(b"patient\n")
        assert lines(sock, 1).startswith("first ")
        started = time.monotonic()
        assert closed_by_server(sock, timeout=10)
        assert 3 < time.monotonic() - started < 7, "handler_timeout is 4 s in this app"
    assert server.wait_for_log("timed out after 4.0 seconds (limits.handler_timeout)", since=mark), server.log_since(mark)


def test_runaway_script_loses_its_connection_to_the_cpu_budget(server):
    mark = server.log_mark()
    with server.connect() as sock:
        sock.sendall(b"spin\n")
        assert lines(sock, 1).startswith("first ")
        assert closed_by_server(sock, timeout=10)
    assert server.wait_for_log("OnUnknownProtocol failed", since=mark), server.log_since(mark)
    server.assert_alive()


def test_client_that_never_reads_holds_the_writer_not_memory(server):
    mark = len(server.records("flood.log"))
    before = server.rss_mib()
    with Bystander(server) as others:
        with server.connect() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(b"flood 500\n")
            # 500 MiB asked for: the kernel's buffers take a few, then conn:write waits until
            # its 2 s timeout closes the connection.
            assert wait_until(lambda: len(server.records("flood.log")) > mark, timeout=10)
            grown = server.rss_mib() - before
    outcome = server.records("flood.log")[mark]
    print(f"flood to a client that never reads: {outcome}; RSS grew {grown:.1f} MiB")
    assert outcome.startswith("stopped after ") and outcome.endswith(": timeout"), outcome
    assert int(outcome.split()[2]) < 32, outcome
    assert grown < 64, f"RSS grew {grown:.0f} MiB while the client did not read"
    assert not others.failures and others.worst < 1.0, (others.failures, others.worst)


# --- refusals and failures close the connection -------------------------------------------------

@pytest.mark.parametrize("first, returned", [(b"nope\n", "false"), (b"truthy\n", "yes")])
def test_event_that_does_not_return_true_closes_with_a_log_line(server, first, returned):
    mark = server.log_mark()
    with server.connect() as sock:
        sock.sendall(first)
        assert closed_by_server(sock)
    assert server.wait_for_log("OnUnknownProtocol returned ", since=mark), server.log_since(mark)
    line = next(line for line in server.log_since(mark).splitlines() if "OnUnknownProtocol returned" in line)
    assert returned in line and "not true: the connection from 127.0.0.1:" in line, line
    server.assert_alive()


def test_event_that_raises_closes_with_a_log_line(server):
    mark = server.log_mark()
    with server.connect() as sock:
        sock.sendall(b"boom\n")
        assert closed_by_server(sock)
    assert server.wait_for_log("refused on purpose", since=mark), server.log_since(mark)
    assert "OnUnknownProtocol failed" in server.log_since(mark)
    server.assert_alive()


def test_no_handler_keeps_http_behaviour(moonwire):
    plain = moonwire('moonwire.get("/alive", function(req, res) res:send("alive") end)')
    reply = exchange(plain.port, b"PING\r\n", idle=3)
    assert reply.data.startswith(b"HTTP/1.1 400 "), reply.data[:200]
    plain.assert_alive()


def test_a_reload_adds_and_removes_the_event_and_kept_connections_stay(moonwire):
    without = 'moonwire.get("/alive", function(req, res) res:send("alive") end)\n'
    server = moonwire(without, threads=1)
    assert exchange(server.port, b"PING\r\n", idle=3).data.startswith(b"HTTP/1.1 400 ")
    main = server.scripts / "main.lua"

    def reload(source, generation):
        main.write_text(source)
        server.process.send_signal(signal.SIGHUP)
        assert server.wait_for_log(f"generation={generation}"), server.log()[-2000:]

    reload(APP, 2)
    with server.connect() as kept:
        kept.sendall(b"PING\r\n")
        assert lines(kept, 2).endswith("PONG\r\n")
        reload(without, 3)
        assert exchange(server.port, b"PING\r\n", idle=3).data.startswith(b"HTTP/1.1 400 ")
        kept.sendall(b"echo still served by the generation that took it\n")
        assert lines(kept, 1) == "still served by the generation that took it\r\n"
    server.assert_alive()


# --- HTTP on the same port ----------------------------------------------------------------------

def test_http1_and_http2_still_served(server):
    assert server.get("/alive").text == "alive"
    with httpx.Client(http1=False, http2=True, base_url=server.url, timeout=10) as client:
        answer = client.get("/alive")
        assert (answer.http_version, answer.text) == ("HTTP/2", "alive")


def test_slow_http_client_byte_by_byte_is_served_as_http(server):
    request = b"GET /alive HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.send(b"GE")
        time.sleep(0.3)
        for byte in request[2:]:
            sock.send(bytes([byte]))
            time.sleep(0.005)
        sock.settimeout(5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"alive"), data[:200]


# --- over TLS -----------------------------------------------------------------------------------

def test_raw_protocol_over_tls_is_decided_on_the_decrypted_bytes(moonwire, certs):
    tls_server = start_tls(moonwire, certs, APP)
    context = client_context(certs)
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=5) as plain:
        with context.wrap_socket(plain, server_hostname="localhost") as sock:
            sock.sendall(b"PING\r\n")
            assert lines(sock, 2) == "first 6 bytes from 127.0.0.1\r\nPONG\r\n"
    answer = httpx.get(f"https://localhost:{tls_server.tls_port}/alive", verify=context, timeout=10)
    assert answer.text == "alive"
