"""Broadcasts to more subscribers than an event loop serves at once (FanoutOutbox: 64, then about
a millisecond of deliveries per turn), which are spread over several turns: each subscriber's
messages keep their order, also against what it is sent directly meanwhile and across the
server's loops, and a subscriber that does not read costs no more than its send queue while the
others are served."""
import asyncio
import re
import urllib.request

import websockets

from harness import Bystander, wait_until
from websocket_client import masked, raw_upgrade, url

APP = """
moonwire.options{ heartbeat = { interval = 0 }, websocket = { %s } }
function OnConnect(ws)
  ws:subscribe("room")
  if not ws.headers["x-stuck"] then ws:send("subscribed") end
end
-- "go K": five broadcasts tagged K to the room, then a message to this connection alone.
function OnMessage(ws, text)
  local k = text:match("^go (%%d+)$")
  if k then
    for i = 1, 5 do moonwire.broadcast("g" .. k .. ":" .. i, { channel = "room" }) end
    ws:send("after " .. k)
  elseif text == "fill" then
    local big = string.rep("f", 65536)
    for _ = 1, 80 do ws:send(big) end
  end
end
-- GET /publish?n=N&size=S: N broadcasts "p:I:" padded to S bytes.
moonwire.get("^/publish$", function(req, res)
  local pad = string.rep("x", tonumber(req.query.size))
  for i = 1, tonumber(req.query.n) do moonwire.broadcast("p:" .. i .. ":" .. pad, { channel = "room" }) end
  res:send("ok")
end)
moonwire.get("^/meanwhile$", function(req, res) res:send("here") end)
"""


async def subscribers(server, count):
    """`count` WebSockets subscribed to the room, each having read its "subscribed" (opened
    50 at a time)."""
    async def one():
        ws = await websockets.connect(url(server), compression=None, max_queue=None, open_timeout=30)
        assert await ws.recv() == "subscribed"
        return ws
    sockets = []
    for start in range(0, count, 50):
        sockets += await asyncio.gather(*(one() for _ in range(min(50, count - start))))
    return sockets


def run(coroutine):
    """As websocket_client.run, with a minute: a thousand clients take a while to open on a busy
    machine."""
    return asyncio.run(asyncio.wait_for(coroutine, 60))


async def receive(ws, count):
    return [await asyncio.wait_for(ws.recv(), 20) for _ in range(count)]


def test_a_spread_fanout_keeps_each_subscribers_order(moonwire):
    """1,100 subscribers on two loops (so about 550 a loop, spread over several turns); ten of them
    each start five broadcasts and then send themselves "after K": every subscriber gets each
    sender's five in order, and each sender gets its own five before its "after"."""
    server = moonwire(APP % "", threads=2)
    senders = 10

    async def scenario():
        sockets = await subscribers(server, 1100)
        try:
            for k, ws in enumerate(sockets[-senders:]):
                await ws.send(f"go {k}")
            received = await asyncio.gather(*(receive(ws, senders * 5) for ws in sockets[:-senders]),
                                            *(receive(ws, senders * 5 + 1) for ws in sockets[-senders:]))
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
        for messages in received:
            seen = {}
            for message in messages:
                tag = re.fullmatch(r"g(\d+):(\d+)|after (\d+)", message)
                assert tag, message
                if tag[3] is not None:
                    assert seen.get(tag[3]) == 5, f"'{message}' before the broadcasts: {messages}"
                    continue
                assert int(tag[2]) == seen.get(tag[1], 0) + 1, f"out of order: {messages}"
                seen[tag[1]] = int(tag[2])
            assert all(seen.get(str(k)) == 5 for k in range(senders)), messages
    run(scenario())


def test_a_subscriber_that_does_not_read_costs_its_queue_while_the_others_are_served(moonwire):
    """600 subscribers that read and one that does not (4 KiB receive window, its queue full of
    its own messages first, 1 MiB with the drop policy); 50 broadcasts of 1 KB to all: the readers
    get all 50 in order, the server drops what the other would pile up, its RSS stays near
    where it was, and a request on the same loop is answered meanwhile."""
    server = moonwire(APP % 'send_queue_limit = 1048576, send_queue_policy = "drop"', threads=1)
    stuck = raw_upgrade(server, extra="X-Stuck: 1\r\n", receive_buffer=4096)

    async def scenario():
        sockets = await subscribers(server, 600)
        try:
            stuck.sendall(masked(0x1, b"fill"))
            assert wait_until(lambda: "message dropped" in server.log(), timeout=10), server.log()[-2000:]
            start = server.rss_mib()
            with Bystander(server, interval=0.05) as others:
                reply = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(server.url + "/publish?n=50&size=1000", timeout=20).read())
                assert reply == b"ok"
                received = await asyncio.gather(*(receive(ws, 50) for ws in sockets))
            for messages in received:
                assert [int(m.split(":")[1]) for m in messages] == list(range(1, 51))
            assert others.failures == [] and others.worst < 5.0, others.latencies
            assert others.peak_rss - start < 40, f"RSS {start:.0f} -> {others.peak_rss:.0f} MiB"
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    try:
        run(scenario())
    finally:
        stuck.close()
