"""Server sessions (docs/authentication.md#sessions): a session created with its cookie's flags,
carried across requests with curl cookie jars, timed out (OnSessionEnd "timeout"), destroyed,
regenerated, an invalid id reported to OnInvalidSession, forged cookies answered with fresh
sessions, sessions kept over a script reload, the same session seen from two event loops, the
Secure flag over TLS, ws.session, and OnCreateSession deciding without auto_start."""
import asyncio
import os
import ssl
import subprocess
import time

import httpx
import websockets

from harness import wait_until
from tls_certs import start_tls
from websocket_client import url

APP = r"""
moonwire.options{sessions = {enabled = true, timeout = {timeout}, same_site = "Strict"}}

local function note(name, value)
  local list = moonwire.shared:get(name) or {}
  list[#list + 1] = value
  moonwire.shared:set(name, list)
end

function OnSessionStart(session) moonwire.shared:incr("started") end
function OnSessionEnd(session, reason) note("ended", reason .. ":" .. tostring(session.data.n)) end
function OnInvalidSession(req, res, id) note("invalid", #id) end

moonwire.get("/count", function(req, res)
  local s = req.session
  s.data.n = (s.data.n or 0) + 1
  s.data.nested = {list = {1, 2}, flag = true}
  res:json{id = s.id, n = s.data.n, version = "{version}"}
end)
moonwire.get("/peek", function(req, res) res:json{id = req.session.id, n = req.session.data.n or 0} end)
moonwire.get("/destroy", function(req, res) req.session:destroy(); res:send("bye") end)
moonwire.get("/regenerate", function(req, res)
  local old = req.session.id
  local new = req.session:regenerate()
  res:json{old = old, new = new, id = req.session.id, n = req.session.data.n}
end)
moonwire.get("/events", function(req, res)
  res:json{ended = moonwire.shared:get("ended") or {}, invalid = moonwire.shared:get("invalid") or {},
           started = moonwire.shared:get("started") or 0}
end)
"""


def app(timeout=1800, version=1):
    return APP.replace("{timeout}", str(timeout)).replace("{version}", str(version))


def curl(server, path, jar, *args):
    result = subprocess.run(["curl", "-s", "-D", "-", "--max-time", "10", "-b", str(jar), "-c", str(jar), *args,
                             server.url + path], capture_output=True, text=True, timeout=20)
    head, _, body = result.stdout.partition("\n\n")
    return head, body


def set_cookies(head):
    return [line.split(":", 1)[1].strip() for line in head.split("\n") if line.lower().startswith("set-cookie:")]


def test_created_with_flags_and_carried_across_requests(moonwire, tmp_path):
    server = moonwire(app())
    jar = tmp_path / "jar"
    head, body = curl(server, "/count", jar)
    cookies = set_cookies(head)
    assert len(cookies) == 1, head
    assert cookies[0].startswith("MWSESSID=")
    assert "HttpOnly" in cookies[0] and "SameSite=Strict" in cookies[0] and "Path=/" in cookies[0]
    assert "Secure" not in cookies[0]                 # plain HTTP
    first = httpx.Response(200, content=body).json()
    assert len(first["id"]) == 32 and first["n"] == 1
    for n in (2, 3):
        head, body = curl(server, "/count", jar)
        assert set_cookies(head) == []               # the session goes on: no new cookie
        assert httpx.Response(200, content=body).json() == {"id": first["id"], "n": n, "version": "1"}
    _, body = curl(server, "/events", jar)              # with the cookie: no other session
    assert httpx.Response(200, content=body).json()["started"] == 1


def test_timeout_ends_the_session_with_on_session_end(moonwire):
    server = moonwire(app(timeout=1))
    with server.client() as client:
        assert client.get("/count").json()["n"] == 1
        assert wait_until(lambda: "timeout:1" in server.get("/events").json()["ended"], timeout=5)
        again = client.get("/count").json()             # the old cookie is now unknown
        assert again["n"] == 1
    assert server.get("/events").json()["invalid"] == [32]


def test_destroy_expires_the_cookie_and_runs_on_session_end(moonwire):
    server = moonwire(app())
    with server.client() as client:
        first = client.get("/count").json()
        response = client.get("/destroy")
        assert response.text == "bye"
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert wait_until(lambda: "destroyed:1" in server.get("/events").json()["ended"])
        assert "MWSESSID" not in client.cookies
        assert client.get("/count").json()["id"] != first["id"]
    # the destroyed id, presented again, is invalid
    response = httpx.get(server.url + "/peek", headers={"cookie": f"MWSESSID={first['id']}"})
    assert response.json()["id"] != first["id"]


def test_regenerate_moves_the_data_to_a_new_id(moonwire):
    server = moonwire(app())
    with server.client() as client:
        client.get("/count")
        client.get("/count")
        moved = client.get("/regenerate").json()
        assert moved["new"] != moved["old"] and moved["id"] == moved["new"] and moved["n"] == 2
        assert client.get("/peek").json() == {"id": moved["new"], "n": 2}
    stale = httpx.get(server.url + "/peek", headers={"cookie": f"MWSESSID={moved['old']}"}).json()
    assert stale["id"] not in (moved["old"], moved["new"]) and stale["n"] == 0


def test_forged_cookies_get_fresh_sessions_and_the_server_stays_up(moonwire):
    server = moonwire(app())
    forged = ["MWSESSID=" + "a" * 32, "MWSESSID=\"quoted-guess\"", "MWSESSID=" + "x" * 6000,
              "; ;; MWSESSID ==", "=" * 100, "; ".join(f"c{i}=v" for i in range(300)),
              "MWSESSID=../../etc/passwd; MWSESSID=second"]
    for cookie in forged:
        response = httpx.get(server.url + "/count", headers={"cookie": cookie})
        assert response.status_code == 200, cookie
        body = response.json()
        assert body["n"] == 1 and body["id"] not in cookie
        assert response.headers["set-cookie"].startswith("MWSESSID=" + body["id"])
    invalid = server.get("/events").json()["invalid"]
    assert 32 in invalid and 4000 not in invalid         # the 6000-byte value is ignored as garbage
    server.assert_alive("/peek")


def test_sessions_survive_a_reload(moonwire):
    server = moonwire(app(version=1))
    with server.client() as client:
        first = client.get("/count").json()
        path, tmp = server.scripts / "main.lua", server.scripts / ".main.lua.tmp"
        tmp.write_text(app(version=2))
        os.replace(tmp, path)
        assert wait_until(lambda: client.get("/count").json()["version"] == "2", timeout=10)
        after = client.get("/count").json()
        assert after["id"] == first["id"] and after["n"] >= 3


def test_two_event_loops_see_the_same_session(moonwire):
    server = moonwire(app(), threads=2)
    cookie = httpx.get(server.url + "/count").headers["set-cookie"].split(";")[0]
    seen = set()
    for _ in range(12):                                 # a new connection each: both loops serve some
        with httpx.Client(headers={"cookie": cookie, "connection": "close"}) as client:
            seen.add(client.get(server.url + "/count").json()["id"])
    assert seen == {cookie.split("=", 1)[1]}
    assert httpx.get(server.url + "/peek", headers={"cookie": cookie}).json()["n"] == 13


def test_the_cookie_is_secure_over_tls(moonwire, certs):
    server = start_tls(moonwire, certs, app())
    with httpx.Client(verify=ssl.create_default_context(cafile=str(certs.ca))) as client:
        tls = client.get(server.tls_url + "/count")
        plain = client.get(server.url + "/count")
    assert "; Secure" in tls.headers["set-cookie"] and "HttpOnly" in tls.headers["set-cookie"]
    assert "Secure" not in plain.headers["set-cookie"]


def test_a_websocket_sees_the_session_of_its_handshake(moonwire):
    server = moonwire(app() + r"""
function OnMessage(ws, text)
  local s = ws.session
  ws:send(s and (s.id .. " " .. tostring(s.data.n)) or "none")
end
""")
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/count").json()
        client.get("/count")
        cookie = "MWSESSID=" + client.cookies["MWSESSID"]

    async def talk(headers):
        async with websockets.connect(url(server), additional_headers=headers) as ws:
            await ws.send("who")
            return await ws.recv()

    assert asyncio.run(talk({"Cookie": cookie})) == first["id"] + " 2"
    assert asyncio.run(talk({})) == "none"
    assert asyncio.run(talk({"Cookie": "MWSESSID=forged"})) == "none"


def test_without_auto_start_on_create_session_decides(moonwire):
    server = moonwire(r"""
moonwire.options{sessions = {enabled = true, auto_start = false}}
function OnCreateSession(req)
  if req.query.login == "chosen" then return "chosen-session-id-0001" end
  return req.query.login == "yes"
end
moonwire.get("/", function(req, res) res:send(req.session and req.session.id or "none") end)
""")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "none" and "set-cookie" not in client.get("/").headers
        started = client.get("/?login=yes").text
        assert len(started) == 32
        assert client.get("/").text == started          # carried by its cookie from now on
    assert httpx.get(server.url + "/?login=chosen").text == "chosen-session-id-0001"
