"""Nodes that share broadcasts through Redis pub/sub (docs/lua-api.md, "Cluster"): a chat whose
members sit on three nodes, exclude and protocol across nodes, event streams, moonwire.write
to a GUID on another node, disconnect_all on every node, Redis stopped and started again (the
link events, local traffic meanwhile, cross-node traffic after the resubscribe), and garbage
PUBLISHed straight on the bus; Redis over TLS (rediss://), verified against a CA, and a node
that does not trust Redis' certificate."""
import asyncio
import signal

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from cluster_servers import start_cluster_nodes
from harness import wait_until
from websocket_client import run, url

APP = r"""
moonwire.options{cluster = {redis = os.getenv("REDIS_URL"), node = os.getenv("NODE"),
                            password = os.getenv("REDIS_PASSWORD"),
                            tls = os.getenv("REDIS_CA") and {ca = os.getenv("REDIS_CA")}}}

function OnLoadBalancerConnect() moonwire.log.info("link: connect") end
function OnLoadBalancerDisconnect() moonwire.log.info("link: disconnect") end
function OnLoadBalancerError(message) moonwire.log.info("link: error " .. message) end

function OnHandshake(req, res)
  local offered = req:header("Sec-WebSocket-Protocol")
  if offered then res:header("Sec-WebSocket-Protocol", offered:match("^[^,]+")) end
end

function OnMessage(ws, text)
  local command, rest = text:match("^(%w+) ?(.*)$")
  if command == "join" then ws:subscribe(rest); ws:send("joined " .. rest)
  elseif command == "leave" then ws:unsubscribe(rest); ws:send("left " .. rest)
  elseif command == "say" then            -- say CHANNEL TEXT: to the channel but me
    local channel, words = rest:match("^(%S+) (.*)$")
    ws:send("sent " .. moonwire.broadcast(words, {channel = channel, exclude = {ws.guid}}))
  elseif command == "except" then         -- except GUID CHANNEL TEXT
    local guid, channel, words = rest:match("^(%S+) (%S+) (.*)$")
    ws:send("sent " .. moonwire.broadcast(words, {channel = channel, exclude = {guid}}))
  elseif command == "proto" then          -- proto PROTOCOL TEXT: to everyone with it
    local protocol, words = rest:match("^(%S+) (.*)$")
    ws:send("sent " .. moonwire.broadcast(words, {protocol = protocol}))
  elseif command == "all" then ws:send("sent " .. moonwire.broadcast(rest))
  elseif command == "me" then ws:send(ws.guid)
  elseif command == "write" then
    local guid, words = rest:match("^(%S+) (.*)$")
    ws:send(tostring(moonwire.write(guid, words)))
  elseif command == "kick" then moonwire.disconnect_all(4000, rest)
  end
end

moonwire.get("/events", function(req, res)
  local stream = res:sse()
  stream:subscribe(req.query.channel)
  stream:send("subscribed")
end)
moonwire.get("/alive", function(req, res) res:send("alive") end)
"""

LINKED = "link: connect"


def start_nodes(moonwire, redis, count):
    """`count` nodes on one Redis, each linked (its OnLoadBalancerConnect has run)."""
    return start_cluster_nodes(moonwire, redis, APP, count, linked=LINKED)


def wait_for_subscribers(redis, topic, count):
    """Waits until `count` nodes listen on the Redis channel `topic` (a join subscribes the
    node a moment after the client is told)."""
    def enough():
        return redis.command("PUBSUB", "NUMSUB", topic)[1] == count
    assert wait_until(enough, timeout=10), f"{topic}: {redis.command('PUBSUB', 'NUMSUB', topic)}"


async def join(ws, channel):
    await ws.send(f"join {channel}")
    assert await ws.recv() == f"joined {channel}"


async def message_across(nodes, redis, words):
    """A client of nodes[0] says `words` to a room whose one member is a client of nodes[1]."""
    async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1])) as b:
        await join(b, "room")
        wait_for_subscribers(redis, "moonwire:0:channel:room", 1)
        await a.send(f"say room {words}")
        assert await a.recv() == "sent 0"
        assert await b.recv() == words


async def nothing_more(*sockets, wait=0.5):
    for ws in sockets:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), wait)


def test_a_chat_across_three_nodes_reaches_each_member_once_in_order(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 3)

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1])) as b, \
                websockets.connect(url(nodes[2])) as c, websockets.connect(url(nodes[2])) as bystander:
            for ws in (a, b, c):
                await join(ws, "room")
            wait_for_subscribers(redis, "moonwire:0:channel:room", 3)
            for i in range(30):
                await a.send(f"say room m{i}")
            for i in range(30):
                assert await a.recv() == "sent 0"        # a is alone on node0, and excluded
            for ws in (b, c):
                assert [await ws.recv() for _ in range(30)] == [f"m{i}" for i in range(30)]
            await c.send("say room from c")
            assert await c.recv() == "sent 0"            # node2's other client is not in the room
            assert await a.recv() == "from c" and await b.recv() == "from c"
            await b.send("me")
            guid_b = await b.recv()
            await a.send(f"except {guid_b} room not for b")   # exclude a member of another node
            assert await a.recv() == "not for b"
            assert await a.recv() == "sent 1"
            assert await c.recv() == "not for b"
            await nothing_more(a, b, c, bystander)
    run(scenario())


def test_leaving_or_closing_unsubscribes_the_node_and_protocol_is_honoured(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 2)

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1])) as b, \
                websockets.connect(url(nodes[1]), subprotocols=["chat"]) as chat, \
                websockets.connect(url(nodes[0]), subprotocols=["chat"]) as local_chat:
            await join(b, "room")
            wait_for_subscribers(redis, "moonwire:0:channel:room", 1)
            await b.send("leave room")
            assert await b.recv() == "left room"
            wait_for_subscribers(redis, "moonwire:0:channel:room", 0)
            async with websockets.connect(url(nodes[1])) as brief:   # the last member goes away
                await join(brief, "lobby")
                wait_for_subscribers(redis, "moonwire:0:channel:lobby", 1)
            wait_for_subscribers(redis, "moonwire:0:channel:lobby", 0)
            await a.send("proto chat hello chat")
            assert await local_chat.recv() == "hello chat"
            assert await a.recv() == "sent 1"
            assert await chat.recv() == "hello chat"
            await a.send("all everyone")
            assert await a.recv() == "everyone"
            assert await a.recv() == "sent 2"
            for ws in (b, chat, local_chat):
                assert await ws.recv() == "everyone"
            await nothing_more(a, b, chat, local_chat)
    run(scenario())


def test_a_broadcast_reaches_event_streams_on_another_node(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 2)
    with httpx.Client(timeout=10) as client, \
            client.stream("GET", nodes[1].url + "/events", params={"channel": "news"}) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:")) == "data: subscribed"
        wait_for_subscribers(redis, "moonwire:0:channel:news", 1)

        async def publish():
            async with websockets.connect(url(nodes[0])) as a:
                await a.send("say news extra extra")
                assert await a.recv() == "sent 0"
        run(publish())
        assert next(line for line in lines if line.startswith("data:")) == "data: extra extra"


def test_a_redis_with_a_password(moonwire, redis_server):
    redis = redis_server(password="s3cret")
    nodes = start_nodes(moonwire, redis, 2)
    wrong = moonwire(APP, env={"REDIS_URL": redis.url(), "REDIS_PASSWORD": "wrong", "NODE": "intruder"})
    assert wrong.wait_for_log("link: error redis 127.0.0.1:", timeout=10)
    assert "the handshake failed: WRONGPASS" in wrong.log() and "s3cret" not in wrong.log()
    assert LINKED not in wrong.log()

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1])) as b, \
                websockets.connect(url(wrong)) as alone:
            await a.send("all hello")
            assert await a.recv() == "hello" and await a.recv() == "sent 1"
            assert await b.recv() == "hello"
            await alone.send("all only here")              # the node without a link serves its own
            assert await alone.recv() == "only here" and await alone.recv() == "sent 1"
            await nothing_more(a, b)
    run(scenario())


def test_redis_over_tls_verified_against_a_ca(moonwire, redis_server, certs):
    redis = redis_server(password="s3cret", tls=certs.localhost)
    nodes = start_cluster_nodes(moonwire, redis, APP, 2, linked=LINKED,
                                env={"REDIS_URL": redis.tls_url(), "REDIS_CA": str(certs.ca)})
    untrusting = moonwire(APP, env={"REDIS_URL": redis.tls_url(), "REDIS_PASSWORD": "s3cret", "NODE": "wary",
                                    "REDIS_CA": str(certs.untrusted_ca)})
    assert untrusting.wait_for_log("link: error redis 127.0.0.1:", timeout=10)
    assert "TLS: CERTIFICATE_VERIFY_FAILED" in untrusting.log(), untrusting.log()[-2000:]
    assert LINKED not in untrusting.log()

    run(message_across(nodes, redis, "over tls"))


def test_write_to_a_guid_on_another_node(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 3)

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[2])) as b:
            await b.send("me")
            guid = await b.recv()
            await a.send(f"write {guid} just for you")
            assert await a.recv() == "true"              # sent to the cluster
            assert await b.recv() == "just for you"
            await a.send("write 00000000-0000-0000-0000-000000000000 nobody")
            assert await a.recv() == "true"              # no node can say no at once
            await nothing_more(a, b)
    run(scenario())


def test_disconnect_all_closes_the_clients_of_every_node(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 3)

    async def scenario():
        sockets = [await websockets.connect(url(node)) for node in nodes for _ in range(2)]
        await sockets[0].send("kick maintenance")
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 4000 and ws.close_reason == "maintenance"
    run(scenario())
    for node in nodes:
        node.assert_alive()


def test_redis_going_away_and_coming_back(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 2)
    marks = [node.log_mark() for node in nodes]

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[0])) as a2, \
                websockets.connect(url(nodes[1])) as b:
            for ws in (a, a2, b):
                await join(ws, "room")
            wait_for_subscribers(redis, "moonwire:0:channel:room", 2)
            redis.stop()
            for node, mark in zip(nodes, marks):
                assert node.wait_for_log("link: disconnect", since=mark, timeout=10), node.log_since(mark)
                assert node.wait_for_log("link: error redis 127.0.0.1:", since=mark, timeout=10)
            # Each node serves its own clients meanwhile; what crosses nodes now is lost.
            await a.send("say room while redis is away")
            assert await a2.recv() == "while redis is away"
            assert await a.recv() == "sent 1"
            for node in nodes:
                node.assert_alive()
            # A channel joined while Redis is away is subscribed to once it is back.
            await join(b, "later")
            again = [node.log_mark() for node in nodes]
            redis.start()
            for node, mark in zip(nodes, again):
                assert node.wait_for_log(LINKED, since=mark, timeout=15), node.log_since(mark)
            wait_for_subscribers(redis, "moonwire:0:channel:room", 2)
            wait_for_subscribers(redis, "moonwire:0:channel:later", 1)
            await a.send("say room back again")
            assert await a.recv() == "sent 1"
            assert await a2.recv() == "back again"
            assert await b.recv() == "back again"        # the message sent while away is not here
            await a.send("say later hello later")
            assert await a.recv() == "sent 0"
            assert await b.recv() == "hello later"
            await nothing_more(a, a2, b)
    run(scenario())


def test_a_redis_that_stops_answering_is_noticed_by_the_heartbeat(moonwire, redis_server):
    """SIGSTOP keeps Redis' sockets open but silent, as a host gone without a reset does: the
    nodes' PING goes unanswered, and the link is declared down within two intervals (5 s)."""
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 2)
    marks = [node.log_mark() for node in nodes]
    redis.process.send_signal(signal.SIGSTOP)
    try:
        for node, mark in zip(nodes, marks):
            assert node.wait_for_log("link: disconnect", since=mark, timeout=15), node.log_since(mark)
        assert "no reply within 5.0 s" in nodes[0].log_since(marks[0])
        again = [node.log_mark() for node in nodes]
    finally:
        redis.process.send_signal(signal.SIGCONT)
    for node, mark in zip(nodes, again):
        assert node.wait_for_log(LINKED, since=mark, timeout=20), node.log_since(mark)

    run(message_across(nodes, redis, "alive again"))


GARBAGE = [b"", b"hello", b"\x01", b"\x02\x01" + bytes(8), b"\x01\x09" + bytes(8), b"\x01\x01" + bytes(8) + b"\x00\xff",
           b"\x01\x02" + bytes(8) + b"\x00\x7fshort", b"\x01\x01" + bytes(8) + b"\x02\x05\xc3\x28abc", bytes(range(256)) * 64,
           b"\x01\x01" + bytes(8) + b"\x00\x00not \xff UTF-8"]


def test_garbage_published_on_the_bus_is_logged_and_ignored(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 2)

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1])) as b:
            await join(b, "room")
            wait_for_subscribers(redis, "moonwire:0:channel:room", 1)
            for garbage in GARBAGE:
                assert redis.command("PUBLISH", "moonwire:0:nodes", garbage) == 2
                assert redis.command("PUBLISH", "moonwire:0:channel:room", garbage) == 1
            await a.send("say room still fine")
            assert await b.recv() == "still fine"
            await nothing_more(b)
    run(scenario())
    for node, heard in zip(nodes, (len(GARBAGE), 2 * len(GARBAGE))):
        assert wait_until(lambda: node.log().count("cluster: a malformed message on moonwire:0:") == heard), node.log()[-3000:]
        node.assert_alive()
    assert "is ignored: version 104, this node speaks 1" in nodes[0].log()
