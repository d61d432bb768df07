"""State that nodes of a cluster share through Redis (docs/lua-api.md, "Rate limits";
docs/authentication.md, "Sessions"): a rate limit's bucket spent by requests spread over two
nodes, the fallback to each node's own buckets while Redis is down (and back to the shared one
after), bad arguments and a context that cannot wait; a session made on one node and used,
regenerated and destroyed on the other, an id OnCreateSession chose, its expiry in Redis, Redis
down, and ws.session waiting for Redis; API keys added, checked and removed on any node, kept in
Redis as digests only, and a key that cannot be checked while Redis is down (503)."""
import hashlib
import time
import uuid

import httpx
import websockets

from cluster_servers import start_cluster_nodes
from harness import free_port, run_cli, wait_until
from websocket_client import run, url

APP = r"""
moonwire.options{cluster = {redis = os.getenv("REDIS_URL"), node = os.getenv("NODE"),
                            password = os.getenv("REDIS_PASSWORD")}}
function OnLoadBalancerConnect() moonwire.log.info("link: connect") end

moonwire.get("/limited", function(req, res)
  local ok, retry_after = moonwire.limit(req.query.key, tonumber(req.query.rate), tonumber(req.query.burst))
  res:header("X-Node", os.getenv("NODE"))
  if not ok then
    res.status = 429
    res:header("Retry-After", tostring(math.ceil(retry_after)))
    return res:send(tostring(retry_after))
  end
  res:send("ok")
end)

moonwire.get("/bad", function(req, res)
  local args = {key = {nil, 1, 1}, rate = {"k", 0, 1}, burst = {"k", 1, 0}}
  moonwire.limit(table.unpack(args[req.query.arg], 1, 3))
  res:send("not reached")
end)

moonwire.get("/in-coroutine", function(req, res)
  res:send(tostring(coroutine.wrap(function() return moonwire.limit("k", 1, 1) end)()))
end)
"""


def spread(nodes, path, count):
    """`count` GETs of `path`, each on the next node in turn: their statuses."""
    return [nodes[i % len(nodes)].get(path).status_code for i in range(count)]


def shared_again(node, redis):
    """Whether both event loops of `node` (each has its own Redis connection, and fresh
    connections go to the loops in turn) spend from Redis again: two requests, each for a key
    of its own, both leave their bucket in Redis."""
    keys = [f"probe-{uuid.uuid4().hex}" for _ in range(2)]
    for key in keys:
        node.get(f"/limited?key={key}&rate=1&burst=5")
    return all(redis.command("EXISTS", f"moonwire:limit:{key}") == 1 for key in keys)


def test_two_nodes_spend_from_one_bucket_in_redis(moonwire, redis_server):
    redis = redis_server()
    nodes = start_cluster_nodes(moonwire, redis, APP, 2)
    statuses = spread(nodes, "/limited?key=shared&rate=0.01&burst=5", 12)
    assert statuses == [200] * 5 + [429] * 7, statuses      # one bucket of 5, not 5 a node
    refused = nodes[1].get("/limited?key=shared&rate=0.01&burst=5")
    assert refused.headers["x-node"] == "node1" and 1 <= int(refused.headers["retry-after"]) <= 100
    # The bucket is a hash in Redis that expires when it would be full again (5 tokens at 0.01 a
    # second: at most 500 s).
    assert 0 < redis.command("PTTL", "moonwire:limit:shared") <= 500_000
    assert spread(nodes, "/limited?key=other&rate=0.01&burst=1", 2) == [200, 429], "another key, another bucket"


def test_tokens_come_back_at_the_rate_on_every_node(moonwire, redis_server):
    redis = redis_server()
    nodes = start_cluster_nodes(moonwire, redis, APP, 2)
    assert spread(nodes, "/limited?key=k&rate=1&burst=2", 3) == [200, 200, 429]
    assert wait_until(lambda: nodes[1].get("/limited?key=k&rate=1&burst=2").status_code == 200, timeout=3)
    # An idle bucket vanishes from Redis once it has refilled (2 tokens at 1 a second: 2 s).
    assert wait_until(lambda: redis.command("EXISTS", "moonwire:limit:k") == 0, timeout=5)


def test_redis_down_falls_back_to_each_nodes_own_bucket_then_shares_again(moonwire, redis_server):
    redis = redis_server()
    nodes = start_cluster_nodes(moonwire, redis, APP, 2)
    path = "/limited?key=down&rate=0.01&burst=2"
    assert spread(nodes, path, 3) == [200, 200, 429]
    marks = [node.log_mark() for node in nodes]
    redis.stop(kill=True)
    # Each node now limits with its own bucket (a fresh one: 2 each), never refusing everyone.
    assert spread(nodes, path, 6) == [200, 200, 200, 200, 429, 429]
    for node, mark in zip(nodes, marks):
        assert node.wait_for_log("limiting with this node's buckets until Redis answers", since=mark)
        assert node.log_since(mark).count("limiting with this node's buckets") == 1, "logged once an outage"
    redis.start()
    # Redis (empty: no persistence) answers again after the client's back-off: a fresh shared
    # bucket of 2 for the two nodes together.
    for node, mark in zip(nodes, marks):
        assert wait_until(lambda: shared_again(node, redis), timeout=15), node.log_since(mark)
        assert "Redis answers again; the buckets are shared by the nodes" in node.log_since(mark)
    assert spread(nodes, path, 3) == [200, 200, 429]
    assert redis.command("EXISTS", "moonwire:limit:down") == 1


def test_bad_arguments_and_a_call_that_cannot_wait_raise(moonwire, redis_server):
    redis = redis_server()
    node = moonwire(APP, dev=True, env={"REDIS_URL": redis.url(), "NODE": "solo"})
    assert node.wait_for_log("link: connect", timeout=10)
    for arg, message in [("key", "moonwire.limit: expected a string key"),
                         ("rate", "moonwire.limit: rate must be a positive number"),
                         ("burst", "moonwire.limit: burst must be a number of at least 1")]:
        reply = node.get(f"/bad?arg={arg}")
        assert reply.status_code == 500 and message in reply.text, reply.text
    reply = node.get("/in-coroutine")
    assert reply.status_code == 500
    assert "moonwire.limit cannot wait here" in reply.text and "with a cluster, moonwire.limit asks Redis" in reply.text, reply.text
    assert node.get("/limited?key=after&rate=1&burst=1").status_code == 200
    assert redis.command("KEYS", "moonwire:limit:*") == [b"moonwire:limit:after"]


def test_a_slow_client_of_a_refused_key_does_not_spend(moonwire, redis_server):
    """A refusal spends nothing, as the node-local bucket: retrying early is not punished."""
    redis = redis_server()
    nodes = start_cluster_nodes(moonwire, redis, APP, 2)
    with httpx.Client(base_url=nodes[0].url, timeout=10) as client:
        assert client.get("/limited?key=r&rate=4&burst=1").status_code == 200
        for _ in range(5):
            client.get("/limited?key=r&rate=4&burst=1")
    assert wait_until(lambda: nodes[1].get("/limited?key=r&rate=4&burst=1").status_code == 200, timeout=1)


SESSIONS = r"""
moonwire.options{cluster = {redis = os.getenv("REDIS_URL"), node = os.getenv("NODE"),
                            password = os.getenv("REDIS_PASSWORD")},
                 sessions = {enabled = true, timeout = tonumber(os.getenv("SESSION_TIMEOUT") or "1800")}}
function OnLoadBalancerConnect() moonwire.log.info("link: connect") end
function OnInvalidSession(req, res, id) moonwire.log.info("invalid session " .. id) end
function OnCreateSession(req) return req.query.want end   -- nil: a random id
function OnSessionStart(session) moonwire.log.info("session start " .. session.id) end
function OnSessionEnd(session, reason)
  moonwire.log.info("session end " .. reason .. " n=" .. tostring(session.data.n))
end

moonwire.get("/count", function(req, res)
  local s = req.session
  if not s then return res:json{node = os.getenv("NODE"), session = false} end
  s.data.n = (s.data.n or 0) + 1
  s.data.bytes = "\0\255" .. (s.data.bytes or "")
  s.data.seen = s.data.seen or {}
  s.data.seen[#s.data.seen + 1] = os.getenv("NODE")
  res:json{node = os.getenv("NODE"), id = s.id, n = s.data.n, seen = s.data.seen, bytes = #s.data.bytes}
end)
function OnMessage(ws, text)
  local s = ws.session
  ws:send(s and (s.id .. " n=" .. s.data.n) or "none")
end
moonwire.get("/destroy", function(req, res) req.session:destroy(); res:send("bye") end)
moonwire.get("/regenerate", function(req, res) res:send(req.session:regenerate()) end)
"""


def session_nodes(moonwire, redis, timeout=1800):
    app = SESSIONS.replace('os.getenv("SESSION_TIMEOUT") or "1800"', f'"{timeout}"')
    return start_cluster_nodes(moonwire, redis, app, 2)


def count(node, session_id=None):
    """GET /count with the session cookie (when given): the JSON and the Set-Cookie field."""
    headers = {"Cookie": f"MWSESSID={session_id}"} if session_id else {}
    reply = node.get("/count", headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json(), reply.headers.get("set-cookie")


def test_a_session_made_on_one_node_is_used_on_the_other(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis)
    first, cookie = count(a)
    assert cookie.startswith(f"MWSESSID={first['id']};") and first["n"] == 1
    second, cookie = count(b, first["id"])
    assert cookie is None, "the session was found: no new cookie"
    assert second == {"node": "node1", "id": first["id"], "n": 2, "seen": ["node0", "node1"], "bytes": 4}
    third, _ = count(a, first["id"])
    assert third["n"] == 3 and third["seen"] == ["node0", "node1", "node0"] and third["bytes"] == 6
    # One key in Redis, its TTL the idle timeout (1800 s), slid at each use.
    assert 1_790_000 < redis.command("PTTL", f"moonwire:session:{first['id']}") <= 1_800_000
    assert redis.command("KEYS", "moonwire:session:*") == [f"moonwire:session:{first['id']}".encode()]


def test_an_id_chosen_by_on_create_session_is_taken_once_in_the_cluster(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis)
    chosen = "chosen-session-id-0001"
    first = a.get(f"/count?want={chosen}")
    assert first.json()["id"] == chosen and first.headers["set-cookie"].startswith(f"MWSESSID={chosen};")
    assert a.wait_for_log(f"session start {chosen}")
    mark = b.log_mark()
    second = b.get(f"/count?want={chosen}").json()     # no cookie: a new session, the id is taken
    assert second["id"] != chosen and len(second["id"]) == 32 and second["n"] == 1
    assert b.wait_for_log("OnCreateSession returned the id of a live session: a random one is used", since=mark)
    assert count(b, chosen)[0]["n"] == 2, "the chosen session is intact"


def test_destroy_on_one_node_is_seen_by_the_other(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis)
    made, _ = count(a)
    count(b, made["id"])
    mark = b.log_mark()
    bye = b.get("/destroy", headers={"Cookie": f"MWSESSID={made['id']}"})
    assert bye.status_code == 200 and "Max-Age=0" in bye.headers["set-cookie"]
    assert b.wait_for_log("session end destroyed n=2", since=mark)
    assert redis.command("EXISTS", f"moonwire:session:{made['id']}") == 0
    mark = a.log_mark()
    fresh, cookie = count(a, made["id"])
    assert fresh["n"] == 1 and fresh["id"] != made["id"] and cookie.startswith(f"MWSESSID={fresh['id']};")
    assert a.wait_for_log(f"invalid session {made['id']}", since=mark)


def test_regenerate_moves_the_data_to_a_new_id_for_every_node(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis)
    made, _ = count(a)
    reply = a.get("/regenerate", headers={"Cookie": f"MWSESSID={made['id']}"})
    fresh_id = reply.text
    assert reply.status_code == 200 and fresh_id != made["id"]
    assert reply.headers["set-cookie"].startswith(f"MWSESSID={fresh_id};")
    moved, cookie = count(b, fresh_id)
    assert cookie is None and moved["id"] == fresh_id and moved["n"] == 2
    stale, _ = count(b, made["id"])
    assert stale["n"] == 1 and stale["id"] not in (made["id"], fresh_id), "the old id stopped working"


def test_redis_expires_an_idle_session_without_on_session_end(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis, timeout=1)
    made, _ = count(a)
    assert 0 < redis.command("PTTL", f"moonwire:session:{made['id']}") <= 1000
    assert wait_until(lambda: redis.command("EXISTS", f"moonwire:session:{made['id']}") == 0, timeout=3)
    again, _ = count(b, made["id"])
    assert again["n"] == 1 and again["id"] != made["id"]
    time.sleep(1.5)           # the sweep of node-local sessions runs once a second: nothing to end
    assert "session end" not in a.log() + b.log()


def test_redis_down_serves_requests_without_a_session(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis)
    made, _ = count(a)
    redis.stop(kill=True)
    for node in (a, b):
        mark = node.log_mark()
        without, cookie = count(node, made["id"])
        assert without["session"] is False and cookie is None
        assert node.wait_for_log("request served without a session", since=mark)
        assert count(node)[0]["session"] is False, "no new session either"
    redis.start()
    assert wait_until(lambda: count(a)[0].get("n") == 1, timeout=15), "sessions again once Redis is back"


def test_ws_session_waits_for_redis_on_another_node(moonwire, redis_server):
    redis = redis_server()
    a, b = session_nodes(moonwire, redis)
    made, _ = count(a)
    count(a, made["id"])

    async def scenario(cookie):
        headers = {"Cookie": f"MWSESSID={cookie}"} if cookie else {}
        async with websockets.connect(url(b), additional_headers=headers) as ws:
            await ws.send("session?")
            return await ws.recv()

    assert run(scenario(made["id"])) == f"{made['id']} n=2"
    assert run(scenario(None)) == "none"
    assert run(scenario("not-a-session")) == "none"


APIKEYS = r"""
moonwire.options{cluster = {redis = os.getenv("REDIS_URL"), node = os.getenv("NODE"),
                            password = os.getenv("REDIS_PASSWORD")},
                 authentication = {enabled = true, except = {"/keys", "/check"}, api_keys = {header = "X-API-Key"}}}
function OnLoadBalancerConnect() moonwire.log.info("link: connect") end
moonwire.apikeys.add("boot-key", {name = "boot", scopes = {"read"}})

moonwire.get("/whoami", function(req, res)
  moonwire.log.info("handler ran")
  res:json{node = os.getenv("NODE"), user = req.user, scopes = req.api_key.scopes}
end)
moonwire.post("/keys", function(req, res)
  moonwire.apikeys.add(req.query.key, {name = req.query.name})
  res:send("added")
end)
moonwire.delete("/keys", function(req, res)
  local removed, err = moonwire.apikeys.remove(req.query.key)
  res:json{removed = removed, err = err}
end)
moonwire.get("/check", function(req, res)
  local info, err = moonwire.apikeys.check(req.query.key)
  res:json{name = info and info.name, err = err}
end)
"""


def whoami(node, key):
    return node.get("/whoami", headers={"X-API-Key": key})


def test_a_key_added_at_load_admits_on_every_node_and_redis_holds_its_digest(moonwire, redis_server):
    redis = redis_server()
    nodes = start_cluster_nodes(moonwire, redis, APIKEYS, 2)
    for node in nodes:
        reply = whoami(node, "boot-key")
        assert reply.status_code == 200, reply.text
        assert reply.json()["user"] == "boot" and reply.json()["scopes"] == ["read"]
        assert whoami(node, "boot-kez").status_code == 401
        assert node.get("/whoami").status_code == 401
    digest = hashlib.sha256(b"boot-key").hexdigest()
    assert redis.command("HKEYS", "moonwire:apikeys") == [digest.encode()]
    assert b"boot-key" not in redis.command("HGET", "moonwire:apikeys", digest)


def test_a_key_added_on_one_node_is_checked_and_removed_on_the_other(moonwire, redis_server):
    redis = redis_server()
    a, b = start_cluster_nodes(moonwire, redis, APIKEYS, 2)
    assert whoami(b, "fresh-key").status_code == 401
    assert a.request("POST", "/keys?key=fresh-key&name=robot").text == "added"
    assert wait_until(lambda: whoami(b, "fresh-key").status_code == 200, timeout=2)
    assert whoami(b, "fresh-key").json()["user"] == "robot"
    assert b.get("/check?key=fresh-key").json() == {"name": "robot"}
    assert b.request("DELETE", "/keys?key=fresh-key").json() == {"removed": True}
    assert b.request("DELETE", "/keys?key=fresh-key").json() == {"removed": False}
    assert whoami(a, "fresh-key").status_code == 401, "removed on b, refused on a at once"
    assert a.get("/check?key=fresh-key").json() == {}


def test_a_key_that_cannot_be_checked_while_redis_is_down_gets_503(moonwire, redis_server):
    redis = redis_server()
    a, _ = start_cluster_nodes(moonwire, redis, APIKEYS, 2)
    assert whoami(a, "boot-key").status_code == 200
    redis.stop(kill=True)
    mark = a.log_mark()
    assert whoami(a, "boot-key").status_code == 503
    assert a.wait_for_log("the API key could not be checked (503)", since=mark)
    assert a.get("/whoami").status_code == 401, "no key: refused as before"
    assert "handler ran" not in a.log_since(mark)
    failure = a.get("/check?key=boot-key").json()
    assert "name" not in failure and failure["err"].startswith("redis ")
    redis.start()
    assert wait_until(lambda: whoami(a, "boot-key").status_code == 200, timeout=15), "admitted once Redis is back"


def test_checking_a_key_while_the_scripts_load_is_a_load_error_with_a_cluster(redis_server, tmp_path):
    redis = redis_server()
    (tmp_path / "main.lua").write_text(
        f'moonwire.options{{cluster = {{redis = "{redis.url()}"}}}}\n'
        'moonwire.apikeys.add("k", {name = "n"})\n'
        'moonwire.apikeys.check("k")\n')
    result = run_cli("serve", "--port", free_port(), "--scripts", tmp_path, "--www", tmp_path)
    assert result.returncode != 0
    assert ("moonwire.apikeys.check waits for Redis with a cluster: call it in a handler or an event, "
            "not while the scripts load") in result.stdout + result.stderr, result.stderr[-2000:]
