"""Presence and a load balancer in front of the cluster (docs/lua-api.md, "Cluster"; docs/
deployment.md): moonwire.connections{cluster = true} lists every node's connections and forgets
a node that dies within the expiry (two-second heartbeats, six-second TTL); three nodes behind
Debian's haproxy, round robin: a chat whose members sit on different nodes, and a node killed
with SIGKILL whose clients reconnect through haproxy to the others."""
import asyncio
import time

import httpx
import websockets

from cluster_servers import start_cluster_nodes
from harness import wait_until
from websocket_client import run, url

APP = r"""
local cluster = os.getenv("REDIS_URL") and {redis = os.getenv("REDIS_URL"), node = os.getenv("NODE")}
if cluster then moonwire.options{cluster = cluster} end

function OnLoadBalancerConnect() moonwire.log.info("link: connect") end

function OnHandshake(req, res)
  local offered = req:header("Sec-WebSocket-Protocol")
  if offered then res:header("Sec-WebSocket-Protocol", offered:match("^[^,]+")) end
end

function OnMessage(ws, text)
  local command, rest = text:match("^(%w+) ?(.*)$")
  if command == "join" then ws:subscribe(rest); ws:send("joined " .. rest)
  elseif command == "say" then            -- say CHANNEL TEXT: to the channel but me
    local channel, words = rest:match("^(%S+) (.*)$")
    moonwire.broadcast(words, {channel = channel, exclude = {ws.guid}})
  elseif command == "node" then ws:send((os.getenv("NODE") or "alone") .. " " .. ws.guid)
  elseif command == "count" then          -- waits in a WebSocket event
    ws:send("count " .. #moonwire.connections{cluster = true})
  end
end

moonwire.get("/presence", function(req, res)
  local list, err = moonwire.connections{cluster = true}
  if not list then res.status = 503; return res:send(err) end
  for _, entry in ipairs(list) do entry.channels = table.concat(entry.channels, ",") end
  res:json(list)
end)
moonwire.get("/in-coroutine", function(req, res)
  local ok, err = pcall(coroutine.wrap(function() return moonwire.connections{cluster = true} end))
  res:send(tostring(ok) .. " " .. tostring(err))
end)

function OnShutdown()
  local ok, err = pcall(moonwire.connections, {cluster = true})
  local file = io.open(os.getenv("MOONWIRE_TEST_DIR") .. "/shutdown", "a")
  file:write(tostring(ok) .. " " .. tostring(err) .. "\n")
  file:close()
end
"""

LINKED = "link: connect"
# Heartbeats every 2 s, entries kept 6 s after the last: a dead node is gone within 6 s (plus
# the time the test takes to look).
EXPIRY = 6.0


def start_nodes(moonwire, redis, count):
    """`count` nodes on one Redis, each linked (its OnLoadBalancerConnect has run)."""
    return start_cluster_nodes(moonwire, redis, APP, count, linked=LINKED)


def presence(node):
    response = httpx.get(node.url + "/presence", timeout=10)
    assert response.status_code == 200, response.text
    # An empty Lua table is encoded as an object.
    return response.json() or []


def seen(node):
    """{guid: node name} as `node` lists the cluster."""
    return {entry["guid"]: entry["node"] for entry in presence(node)}


def wait_for_presence(node, expected, timeout=10.0):
    assert wait_until(lambda: seen(node) == expected, timeout=timeout), f"{seen(node)} != {expected}"


async def whoami(ws):
    await ws.send("node")
    name, guid = (await ws.recv()).split()
    return name, guid


async def six_through(balancer, nodes):
    """Six WebSockets through haproxy, and (node, guid) of each once presence lists them all."""
    sockets = [await websockets.connect(url(balancer)) for _ in range(6)]
    where = [await whoami(ws) for ws in sockets]
    wait_for_presence(nodes[0], {guid: name for name, guid in where})
    return sockets, where


def test_presence_lists_the_connections_of_every_node(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 3)

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1]), subprotocols=["chat"]) as b, \
                websockets.connect(url(nodes[2])) as c, websockets.connect(url(nodes[2])) as d:
            guids = {}
            for ws in (a, b, c, d):
                name, guid = await whoami(ws)
                guids[guid] = name
            for channel in ("room", "news"):
                await b.send(f"join {channel}")
                assert await b.recv() == f"joined {channel}"
            for node in nodes:                  # each node sees the others' and its own
                wait_for_presence(node, guids)
            [entry_b] = [e for e in presence(nodes[0]) if e["node"] == "node1"]
            assert entry_b["remote_ip"] == "127.0.0.1" and entry_b["protocol"] == "chat"
            assert wait_until(lambda: [e for e in presence(nodes[0]) if e["node"] == "node1"][0]["channels"]
                              == "news,room", timeout=5)
            await c.send("count")                # from a WebSocket event, which may wait
            assert await c.recv() == "count 4"
            _, guid_d = await whoami(d)
            await d.close()
            del guids[guid_d]
            started = time.monotonic()
            wait_for_presence(nodes[0], guids)   # a closed connection goes with the next heartbeat
            assert time.monotonic() - started < 4
    run(scenario())
    # The node's hash in Redis: one field per connection, with a TTL of at most six seconds.
    assert redis.command("HLEN", "moonwire:presence:node:node2") == 1
    assert 0 < redis.command("PTTL", "moonwire:presence:node:node2") <= 6000
    # A node that stops leaves at once.
    nodes[1].stop()
    assert redis.command("EXISTS", "moonwire:presence:node:node1") == 0
    assert b"node1" not in redis.command("SMEMBERS", "moonwire:presence:nodes")


def test_without_a_cluster_it_is_the_local_list_and_where_it_cannot_wait_it_says_so(moonwire):
    node = moonwire(APP)

    async def scenario():
        async with websockets.connect(url(node)) as a:
            _, guid = await whoami(a)
            entries = presence(node)
            assert [e["guid"] for e in entries] == [guid] and "node" not in entries[0]
            await a.send("count")
            assert await a.recv() == "count 1"
    run(scenario())
    answer = httpx.get(node.url + "/in-coroutine", timeout=5).text
    assert answer.startswith("false ") and answer.endswith(
        "moonwire.connections{cluster=true} cannot wait here (in a coroutine the script made, "
        "or under a metamethod; use moonwire.spawn)")
    node.stop()
    [shutdown] = node.records("shutdown")
    assert shutdown.startswith("false ") and shutdown.endswith(
        "moonwire.connections{cluster=true} cannot wait in OnShutdown: it must answer at once")


def test_a_chat_through_haproxy_whose_members_sit_on_three_nodes(moonwire, redis_server, haproxy):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 3)
    balancer = haproxy(nodes)

    async def scenario():
        sockets, where = await six_through(balancer, nodes)
        try:
            assert sorted(name for name, _ in where) == ["node0", "node0", "node1", "node1", "node2", "node2"]
            for ws in sockets:
                await ws.send("join room")
                assert await ws.recv() == "joined room"
            assert wait_until(lambda: redis.command("PUBSUB", "NUMSUB", "moonwire:0:channel:room")[1] == 3,
                              timeout=10)
            for i in range(10):
                await sockets[0].send(f"say room m{i}")
            for ws in sockets[1:]:
                assert [await ws.recv() for _ in range(10)] == [f"m{i}" for i in range(10)]
        finally:
            for ws in sockets:
                await ws.close()
    run(scenario())


def test_a_node_killed_leaves_presence_within_the_expiry_and_its_clients_reconnect(moonwire, redis_server, haproxy):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 3)
    balancer = haproxy(nodes)

    async def scenario():
        sockets, where = await six_through(balancer, nodes)
        try:
            nodes[2].process.kill()
            killed = time.monotonic()
            for position, (name, _) in enumerate(where):
                if name != "node2":
                    continue
                # Its client sees the connection end, and reconnects through haproxy.
                try:
                    await asyncio.wait_for(sockets[position].recv(), 5)
                except websockets.exceptions.ConnectionClosed:
                    pass
                sockets[position] = await websockets.connect(url(balancer))
                where[position] = await whoami(sockets[position])
                assert where[position][0] in ("node0", "node1")
                await sockets[position].send("join room")
                assert await sockets[position].recv() == "joined room"
            # The dead node's connections are forgotten, the new ones listed.
            expected = {guid: name for name, guid in where}
            assert wait_until(lambda: seen(nodes[0]) == expected and seen(nodes[1]) == expected, timeout=EXPIRY + 4), \
                f"{seen(nodes[0])} != {expected}"
            assert time.monotonic() - killed <= EXPIRY + 2.5
            assert redis.command("EXISTS", "moonwire:presence:node:node2") == 0
            # The chat goes on among the survivors.
            await sockets[0].send("join room")
            assert await sockets[0].recv() == "joined room"
        finally:
            for ws in sockets:
                await ws.close()
    run(scenario())


def test_presence_comes_back_after_redis_restarts_empty(moonwire, redis_server):
    redis = redis_server()
    nodes = start_nodes(moonwire, redis, 2)

    async def scenario():
        async with websockets.connect(url(nodes[0])) as a, websockets.connect(url(nodes[1])) as b:
            guids = dict([tuple(reversed(await whoami(ws))) for ws in (a, b)])
            wait_for_presence(nodes[0], guids)
            mark = nodes[0].log_mark()
            redis.stop()
            response = httpx.get(nodes[0].url + "/presence", timeout=10)
            assert response.status_code == 503 and response.text.startswith("redis 127.0.0.1:"), response.text
            redis.start()                       # without persistence: the hashes are gone
            assert nodes[0].wait_for_log(LINKED, timeout=15, since=mark)
            # Each node finds its hash gone at its next heartbeat and writes it again whole.
            wait_for_presence(nodes[0], guids)
            wait_for_presence(nodes[1], guids)
    run(scenario())
