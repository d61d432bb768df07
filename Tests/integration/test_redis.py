"""moonwire.redis (docs/lua-api.md, "Redis") against Debian's redis-server, started on a free
loopback port for each test (conftest's redis_server): the reply mapping, binary values,
pipelining of concurrent calls, AUTH and SELECT, Redis killed and started again, and a fake
server that answers with bytes that are not RESP."""
import json
import signal
import socket
import threading
import time

import httpx
import pytest

from harness import free_port, run_cli, wait_until

APP = r"""
local redis = moonwire.redis
moonwire.options{cluster = {redis = os.getenv("REDIS_URL"), password = os.getenv("REDIS_PASSWORD"),
                            node = "test-node"}}

local function answer(res, value, err)
  res:json{type = type(value), value = value, err = err}
end

-- POST /call with a JSON array: the command and its arguments.
moonwire.post("/call", function(req, res)
  answer(res, redis:call(table.unpack(moonwire.json.decode(req.body))))
end)

-- PUT /raw/KEY: the body is the value, byte for byte; GET /raw/KEY gives it back.
moonwire.put([[/raw/(?<key>\w+)]], function(req, res)
  answer(res, redis:call("SET", req.params.key, req.body))
end)
moonwire.get([[/raw/(?<key>\w+)]], function(req, res)
  local value, err = redis:call("GET", req.params.key)
  if value == nil then return res:send(err or "nil") end
  res:header("Content-Type", "application/octet-stream")
  res:send(value)
end)

-- A transaction in one handler.
moonwire.get("/multi", function(req, res)
  local steps = {}
  for _, command in ipairs{{"MULTI"}, {"SET", "m:a", "1"}, {"INCR", "m:a"}, {"RPUSH", "m:l", "x", "y"},
                           {"GET", "m:none"}, {"HSET", "m:a", "f", "v"}, {"EXEC"}} do
    local value, err = redis:call(table.unpack(command))
    steps[#steps + 1] = {value = value, err = err}
  end
  res:json(steps)
end)

-- 100 threads, each RPUSHes its number: each gets the list's length as it was pushed.
moonwire.get("/spawn", function(req, res)
  local key = req.query.key
  local threads = {}
  for i = 1, 100 do
    threads[i] = moonwire.spawn(function() return redis:call("RPUSH", key, tostring(i)) end)
  end
  local lengths = {}
  for i = 1, 100 do lengths[i] = threads[i]:wait() end
  res:json{lengths = lengths, list = redis:call("LRANGE", key, "0", "-1")}
end)

-- n threads, each SETs `size` bytes: how their calls ended.
moonwire.get("/flood", function(req, res)
  local value, threads, outcomes = string.rep("v", tonumber(req.query.size)), {}, {}
  for i = 1, tonumber(req.query.n) do
    threads[i] = moonwire.spawn(function() return redis:call("SET", "flood:" .. i, value) end)
  end
  for i = 1, #threads do
    local _, err = threads[i]:wait()
    outcomes[i] = err or "ok"
  end
  res:json(outcomes)
end)

moonwire.get("/alive", function(req, res) res:send("alive") end)
"""


def start(moonwire, url, password=None):
    env = {"REDIS_URL": url}
    if password:
        env["REDIS_PASSWORD"] = password
    return moonwire(main=APP, env=env)


def call(server, *command):
    response = server.request("POST", "/call", content=json.dumps(list(command)), timeout=15)
    assert response.status_code == 200, (response.status_code, response.text, server.log()[-2000:])
    body = response.json()
    return body.get("value"), body.get("err"), body["type"]


def raw_redis(port, *commands):
    """Sends inline commands straight to redis-server; returns what it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"".join(command.encode() + b"\r\n" for command in commands))
        time.sleep(0.2)
        return s.recv(65536)


@pytest.fixture
def redis(redis_server):
    return redis_server()


@pytest.fixture
def server(moonwire, redis):
    return start(moonwire, redis.url())


def test_replies_map_to_lua_values(server):
    assert call(server, "SET", "k", "v") == ("OK", None, "string")
    assert call(server, "GET", "k") == ("v", None, "string")
    assert call(server, "INCR", "n") == (1, None, "number")
    assert call(server, "INCRBY", "n", 41) == (42, None, "number")
    assert call(server, "HSET", "h", "a", "1", "b", "2") == (2, None, "number")
    value, _, kind = call(server, "HGETALL", "h")
    assert kind == "table" and dict(zip(value[::2], value[1::2])) == {"a": "1", "b": "2"}
    assert call(server, "RPUSH", "l", "x", "y", "z") == (3, None, "number")
    assert call(server, "LRANGE", "l", "0", "-1") == (["x", "y", "z"], None, "table")
    assert call(server, "LRANGE", "none", "0", "-1") == ({}, None, "table")  # an empty table
    assert call(server, "PING") == ("PONG", None, "string")


def test_nil_and_error_replies(server):
    assert call(server, "GET", "missing") == (None, None, "nil")
    call(server, "SET", "k1", "one")
    assert call(server, "MGET", "k1", "missing")[0] == ["one", False]  # nil in an array: false
    value, err, kind = call(server, "INCR", "k1")
    assert (value, kind) == (None, "nil") and err == "ERR value is not an integer or out of range"
    value, err, _ = call(server, "NOSUCHCOMMAND", "x")
    assert value is None and err.startswith("ERR unknown command")
    assert call(server, "GET", "k1") == ("one", None, "string")  # the connection goes on


def test_a_transaction_in_one_handler(server):
    steps = server.get("/multi", timeout=15).json()
    assert steps[0]["value"] == "OK"
    assert [step["value"] for step in steps[1:6]] == ["QUEUED"] * 5
    replies = steps[6]["value"]
    assert replies[:4] == ["OK", 2, 2, False] and len(replies) == 5
    assert replies[4]["err"].startswith("WRONGTYPE")


def test_values_are_binary_safe(server):
    small = b"a\x00b\r\n\xff\x00"
    assert server.request("PUT", "/raw/small", content=small).json()["value"] == "OK"
    assert server.get("/raw/small").content == small
    big = bytes(range(256)) * 4096  # 1 MiB, every byte value, NULs included
    assert server.request("PUT", "/raw/big", content=big, timeout=15).json()["value"] == "OK"
    assert server.get("/raw/big", timeout=15).content == big
    assert call(server, "STRLEN", "big") == (len(big), None, "number")


def test_concurrent_calls_from_one_handler_keep_their_order(server):
    body = server.get("/spawn?key=order", timeout=15).json()
    assert body["lengths"] == list(range(1, 101))
    assert body["list"] == [str(i) for i in range(1, 101)]


def test_many_requests_at_once_share_the_loop_connections(server):
    def one(i):
        with httpx.Client(timeout=15) as client:
            r = client.post(server.url + "/call", content=json.dumps(["INCR", "shared"]))
            return r.json()["value"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert call(server, "GET", "shared") == ("20", None, "string")


def test_password_and_database(moonwire, redis_server):
    redis = redis_server(password="s3cret word")
    server = start(moonwire, redis.url(db=2), password="s3cret word")
    assert call(server, "SET", "where", "db2") == ("OK", None, "string")
    answer = raw_redis(redis.port, 'AUTH "s3cret word"', "SELECT 2", "GET where", "SELECT 0", "EXISTS where")
    assert answer == b"+OK\r\n+OK\r\n$3\r\ndb2\r\n+OK\r\n:0\r\n"
    wrong = start(moonwire, redis.url(), password="not-the-password")
    value, err, _ = call(wrong, "GET", "where")
    assert value is None and "AUTH failed" in err and "s3cret" not in err
    assert "not-the-password" not in wrong.log()


def test_redis_killed_mid_run_then_back(server, redis):
    assert call(server, "SET", "before", "1")[0] == "OK"
    redis.stop(kill=True)
    began = time.monotonic()
    value, err, _ = call(server, "GET", "before")
    assert value is None and f"redis 127.0.0.1:{redis.port}" in err, err
    assert time.monotonic() - began < 2
    value, err, _ = call(server, "GET", "before")  # refused now, or failing fast in the back-off
    assert value is None and err
    assert server.get("/alive").text == "alive"
    redis.start()
    assert wait_until(lambda: call(server, "SET", "after", "2")[0] == "OK", timeout=15, interval=0.2), \
        server.log()[-2000:]
    assert call(server, "GET", "after") == ("2", None, "string")
    assert "redis 127.0.0.1" in server.log()


class FakeRedis:
    """A server on a loopback port that reads each connection's first bytes and answers `reply`
    (bytes that are not RESP), or nothing at all when it is None; it counts the connections."""

    def __init__(self, reply):
        self.reply = reply
        self.port = free_port()
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(10)
            try:
                conn.recv(65536)
                if self.reply is not None:
                    conn.sendall(self.reply)
                conn.recv(65536)  # until the client closes (or the timeout)
            except OSError:
                pass

    def stop(self):
        self.listener.close()
        self.thread.join(5)


def test_a_server_speaking_garbage_closes_the_connection(moonwire):
    garbage = FakeRedis(b"?this is not RESP\r\n")
    try:
        server = start(moonwire, f"redis://127.0.0.1:{garbage.port}/0")
        value, err, _ = call(server, "GET", "x")
        assert value is None and "protocol error" in err, err
        assert server.wait_for_log("protocol error")
        assert server.get("/alive").text == "alive"
        time.sleep(0.3)  # past the first back-off: the next call connects again
        value, err, _ = call(server, "GET", "x")
        assert value is None and err
        assert garbage.connections >= 2
    finally:
        garbage.stop()


def test_a_server_that_never_answers_times_out(moonwire):
    silent = FakeRedis(None)
    try:
        server = start(moonwire, f"redis://127.0.0.1:{silent.port}/0")
        began = time.monotonic()
        value, err, _ = call(server, "GET", "x")
        assert value is None and err == f"redis 127.0.0.1:{silent.port}: no reply within 5.0 s", err
        assert 4.5 < time.monotonic() - began < 8
        assert server.get("/alive").text == "alive"
    finally:
        silent.stop()


def test_a_server_that_never_reads_holds_at_most_32_mib_of_commands(moonwire):
    port = free_port()
    deaf = socket.create_server(("127.0.0.1", port))  # never accepts: the kernel's backlog connects
    try:
        server = start(moonwire, f"redis://127.0.0.1:{port}/0")
        before = server.rss_mib()
        began = time.monotonic()
        outcomes = server.get("/flood?n=48&size=1048576", timeout=20).json()
        refused = [o for o in outcomes if o.endswith("MiB of commands await replies: refused")]
        timed_out = [o for o in outcomes if o.endswith("no reply within 5.0 s")]
        assert len(refused) >= 16 and len(refused) + len(timed_out) == 48, outcomes
        assert time.monotonic() - began < 10
        assert server.rss_mib() - before < 100
        assert server.get("/alive").text == "alive"
    finally:
        deaf.close()


def test_cluster_options_are_checked(tmp_path):
    def check(options):
        (tmp_path / "main.lua").write_text(f"moonwire.options{{cluster = {options}}}\n")
        return run_cli("check", "--scripts", tmp_path)

    assert check('{redis = "redis://127.0.0.1:6379/0", node = "a", password = "p"}').returncode == 0
    assert check('{redis = "rediss://127.0.0.1:6379/0", tls = {ca = "ca.pem", server_name = "redis"}}').returncode == 0
    for options, message in [
        ('{redis = "redis://127.0.0.1:6379/0", tls = true}', "cluster.tls must be a table"),
        ('{redis = "rediss://127.0.0.1:6379/0", tls = {verify = false, cert = "x"}}', "unknown option cluster.tls.cert"),
        ('{redis = "redis://127.0.0.1:6379/0", nodes = 1}', "unknown option cluster.nodes"),
        ('{node = "a"}', "cluster.redis is required"),
        ('{redis = "http://x"}', "cluster.redis: expected redis://host[:port][/db]"),
        ('{redis = "redis://h:6379/x"}', "the database must be a number"),
    ]:
        result = check(options)
        assert result.returncode != 0 and message in result.stdout + result.stderr, (options, result)


def test_without_a_redis_configured_a_call_raises(moonwire):
    server = moonwire(main="""
moonwire.get("/", function(req, res)
  local ok, err = pcall(moonwire.redis.call, moonwire.redis, "GET", "x")
  res:send(tostring(ok) .. " " .. err)
end)
moonwire.get("/alive", function(req, res) res:send("alive") end)
""")
    assert server.get("/").text == (
        'false moonwire.redis:call: no Redis is configured '
        '(moonwire.options{cluster = {redis = "redis://127.0.0.1:6379/0"}})')


def client_ids(redis):
    """redis-server's client connections by id, less the one asking."""
    clients = redis.command("CLIENT", "LIST").decode().splitlines()
    fields = [dict(part.split("=", 1) for part in line.split() if "=" in part) for line in clients]
    return {client["id"] for client in fields if not client["cmd"].startswith("client")}


def cluster_connections(redis):
    """The cluster's own connections (the bus's subscriber and the publisher presence uses),
    once the node's presence is in Redis: what moonwire.redis' count leaves out."""
    assert wait_until(lambda: redis.command("SCARD", "moonwire:presence:nodes") >= 1, timeout=10)
    return client_ids(redis)


def test_a_reload_closes_the_old_generations_connection(moonwire, redis):
    server = moonwire(main=APP, env={"REDIS_URL": redis.url()}, threads=1)
    cluster = cluster_connections(redis)
    connected_clients = lambda: len(client_ids(redis) - cluster)
    assert call(server, "PING")[0] == "PONG"
    assert connected_clients() == 1
    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_log("reason=SIGHUP")
    assert call(server, "PING")[0] == "PONG"
    assert wait_until(lambda: connected_clients() == 1, timeout=10), connected_clients()
