"""WebSocket attacks on memory and time, each reproduced with a real client over loopback and
bounded by a limit the server has by default: ping floods, clients that stop reading, partial
compressed messages held inflated, and queued messages counted at their cost."""
import select
import socket
import time
import zlib

from websockets.sync.client import connect

from harness import wait_until
from websocket_client import masked, raw_upgrade, url


ATTACK_APP = """
moonwire.options{ limits = { send_timeout = 2 }, websocket = { %s } }
function OnMessage(ws, text)
  local count, size = text:match("^many (%%d+) (%%d+)$")
  if count then
    local message = string.rep("x", tonumber(size))
    for i = 1, tonumber(count) do if not ws:send(message) then break end end
  else
    ws:send(text)
  end
end
function OnError(conn, message) moonwire.log.warn("onerror", message) end
function OnDisconnect(ws, code, reason) moonwire.log.info("ondisconnect", code) end
"""


def rss_mib(server):
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def echo_seconds(server, text="are you there"):
    """Seconds a new client on the server takes to connect and get an echo (at most 10)."""
    started = time.monotonic()
    with connect(url(server), open_timeout=10, compression=None) as ws:
        ws.send(text)
        assert ws.recv(timeout=10) == text
    return time.monotonic() - started


class PingFlood:
    """A client that sends 125-byte pings as fast as the server takes them and reads nothing
    (its receive window stays at 4 KiB, so the pongs wait in the server, not in the kernel);
    its frames stay whole, however much of them a send takes."""
    PING = masked(0x9, b"p" * 125)

    def __init__(self, server):
        self.sock = raw_upgrade(server, receive_buffer=4096)
        self.sock.setblocking(False)
        self.pings = 0
        self.unsent = b""

    def push(self):
        """Sends what the socket takes now; sleeps a little when it takes nothing."""
        if not self.unsent:
            self.unsent, self.pings = self.PING * 256, self.pings + 256
        try:
            self.unsent = self.unsent[self.sock.send(self.unsent):]
        except BlockingIOError:
            time.sleep(0.01)

    @property
    def sent(self):
        return self.pings * len(self.PING) - len(self.unsent)


def test_a_ping_flood_from_a_client_that_does_not_read_is_held_back(moonwire):
    """Pongs count in the send queue and the server stops reading a client whose queue is half
    full: a client that sends 125-byte pings and reads nothing soon has its sends blocked by
    TCP (less than 100 kB taken in 2 s, within 12 s), the server's memory grows by what half
    the queue holds (1 MiB here), and the other clients on the loop are answered within 5 s
    (a few turns of the loop, each one read of pings: milliseconds with the release binary,
    up to a few seconds with the debug one on a busy 2-core machine). Once the client reads, every ping is answered and its messages are served again.
    (Before: the server read on; with the release binary, 256 MB of pings in 8 s took RSS to
    1.1 GB, and it stayed there.)"""
    server = moonwire(ATTACK_APP % "send_queue_limit = 1048576", threads=1)
    start = rss_mib(server)
    flood = PingFlood(server)
    peak, slowest, samples = start, 0.0, []
    began = time.monotonic()
    next_check = began + 0.5
    stalled = False
    while time.monotonic() - began < 12 and not stalled:
        flood.push()
        now = time.monotonic()
        if not samples or now - samples[-1][0] >= 0.1:
            samples.append((now, flood.sent))
            peak = max(peak, rss_mib(server))
            earlier = [sent for at, sent in samples if now - at >= 2]
            stalled = bool(earlier) and flood.sent - earlier[-1] < 100_000
        if now >= next_check:
            slowest = max(slowest, echo_seconds(server))
            next_check = time.monotonic() + 0.5
    attacker, pings, unsent, sent = flood.sock, flood.pings, flood.unsent, flood.sent
    assert stalled, f"the server read on: {sent / 1e6:.1f} MB of pings in 12 s"
    assert peak - start < 20, f"RSS grew from {start:.0f} to {peak:.0f} MiB under {sent / 1e6:.1f} MB of pings"
    assert slowest < 5.0, f"another client waited {slowest:.2f} s"

    # The attacker reads now: it gets a pong for every ping, then the echo of a message.
    unsent += masked(0x1, b"resumed")
    expected = pings * (2 + 125) + len(b"\x81\x07resumed")
    received, tail = 0, b""
    deadline = time.monotonic() + 30
    while received < expected and time.monotonic() < deadline:
        readable, writable, _ = select.select([attacker], [attacker] if unsent else [], [], 1)
        if readable:
            chunk = attacker.recv(1 << 20)
            assert chunk, "the server closed the connection"
            received += len(chunk)
            tail = (tail + chunk)[-16:]
        if writable:
            unsent = unsent[attacker.send(unsent):]
    attacker.close()
    assert received == expected, f"{received} of {expected} bytes: a pong for each of {pings} pings, then the echo"
    assert tail.endswith(b"\x81\x07resumed")
    assert wait_until(lambda: rss_mib(server) - start < 15, timeout=5), f"RSS stayed at {rss_mib(server):.0f} MiB"


def test_a_client_that_stops_reading_is_closed_after_the_send_timeout(moonwire):
    """A client whose send queue stays stuck for send_timeout (60 s by default, 2 s here) does
    not read: it is closed with 1008 (the close frame waits behind what it did not read; the
    server reports the code to OnDisconnect), OnError fires and the log says why."""
    server = moonwire(ATTACK_APP % "send_queue_limit = 1048576", threads=1)
    flood = PingFlood(server)
    began = time.monotonic()
    while time.monotonic() - began < 12 and "client did not read" not in server.log():
        try:
            flood.push()
        except (BrokenPipeError, ConnectionResetError):
            break
    assert server.wait_for_log("client did not read for 2.0 seconds (1008)", timeout=5), server.log()[-2000:]
    assert time.monotonic() - began < 12
    assert server.wait_for_log("onerror client did not read for 2.0 seconds (1008)")
    assert server.wait_for_log("ondisconnect 1008")
    flood.sock.close()
    assert echo_seconds(server) < 1.0


def read_close_code(sock, timeout):
    """The code of the close frame the server sends (skipping frames before it), or None if the
    connection ends or `timeout` passes first."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(data) >= 2:
            length = data[1] & 0x7F
            offset = 2 + {126: 2, 127: 8}.get(length, 0)
            if len(data) < offset:
                break
            if length >= 126:
                length = int.from_bytes(data[2:offset], "big")
            if len(data) < offset + length:
                break
            if data[0] & 0x0F == 0x8:
                return int.from_bytes(data[offset:offset + 2], "big")
            data = data[offset + length:]
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return None
        if not chunk:
            return None
        data += chunk
    return None


def test_compressed_fragments_held_inflated_are_bounded_by_the_budget_and_timed_out(moonwire):
    """Ten clients each send a 60 KB compressed first fragment that inflates to 60 MB and stop
    there. The server's budget of partial messages (256 MiB by default, for all connections
    together) holds four of them; the others are closed with 1009 at once, and the four with
    1008 when message_timeout (60 s by default, 3 s here) ends. OnError fires for each, the
    RSS never holds more than the budget, and another client is answered meanwhile. (Before:
    631 MB held, with no end.)"""
    server = moonwire(ATTACK_APP % "message_timeout = 3", threads=1)
    start = rss_mib(server)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    fragment = compressor.compress(b"a" * (60 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    attackers = []
    for _ in range(10):
        attacker = raw_upgrade(server, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
        attacker.sendall(masked(0x1, fragment, fin=False, rsv=0x40))
        attackers.append(attacker)
    peak = start
    began = time.monotonic()
    while time.monotonic() - began < 2:
        peak = max(peak, rss_mib(server))
        time.sleep(0.05)
    assert echo_seconds(server) < 2.0
    codes = [read_close_code(attacker, timeout=10) for attacker in attackers]
    for attacker in attackers:
        attacker.close()
    assert peak - start < 256 + 64, f"RSS grew from {start:.0f} to {peak:.0f} MiB"
    assert sorted(set(codes)) == [1008, 1009], codes
    assert codes.count(1008) >= 3, codes
    log = server.log()
    assert log.count("onerror partial messages over the server's budget") == codes.count(1009)
    assert log.count("onerror message not complete within 3.0 seconds (1008)") == codes.count(1008)
    assert wait_until(lambda: rss_mib(server) - start < 60, timeout=5), f"RSS stayed at {rss_mib(server):.0f} MiB"


def test_small_messages_to_a_client_that_does_not_read_count_at_their_cost(moonwire):
    """The send queue counts what a queued message costs (its payload and 400 bytes of frame,
    buffers and pending write), so send_queue_limit (16 MiB by default) bounds memory: a
    script sending 32-byte messages to a client that does not read fills the socket's buffers,
    then reaches the limit after some 39,000 more, and the client is closed with 1008 and
    OnError; RSS grows by about 23 MiB (debug build). (Before: the queue counted 32 bytes each
    and needed 520,000 of them to fill; in the test's 20 s the debug binary's RSS grew from 32
    to 286 MiB, the queue still not full.) Messages of 32 bytes rather than 1: the socket's buffers take
    3-byte frames for 40 s of the debug binary's sending before the queue grows at all."""
    server = moonwire(ATTACK_APP % "", threads=1)
    attacker = raw_upgrade(server, receive_buffer=4096)
    start = rss_mib(server)
    attacker.sendall(masked(0x1, b"many 500000 32"))
    peak = start
    began = time.monotonic()
    while time.monotonic() - began < 20 and "websocket send queue full" not in server.log():
        peak = max(peak, rss_mib(server))
        time.sleep(0.05)
    peak = max(peak, rss_mib(server))
    assert "websocket send queue full, closing with 1008" in server.log(), f"RSS {start:.0f} -> {peak:.0f} MiB"
    assert peak - start < 60, f"RSS grew from {start:.0f} to {peak:.0f} MiB"
    assert server.wait_for_log("onerror client does not read fast enough (1008)"), server.log()[-3000:]
    assert echo_seconds(server) < 1.0
    assert server.wait_for_log("ondisconnect", timeout=10)
    attacker.close()
    assert wait_until(lambda: rss_mib(server) - start < 30, timeout=5), f"RSS stayed at {rss_mib(server):.0f} MiB"
