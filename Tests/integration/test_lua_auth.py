"""Authentication (docs/lua-api.md#authentication): Basic credentials through OnAuthentication,
other schemes through OnUnknownAuthentication, API keys (moonwire.apikeys) in a header and the
query, `except` patterns, routes and virtual hosts that opt in or out, hooks that fail or wait,
malformed credentials, and 10,000 wrong passwords in a row; with curl, httpx and raw sockets.
WebSocket upgrades are in test_lua_auth_websocket.py."""
import base64
import subprocess
import time

import httpx
import jwt
import pytest

from harness import run_cli, wait_until

CHALLENGE = 'Basic realm="Test Realm", charset="UTF-8"'

APP = r"""
moonwire.options{
  limits = {max_header_size = 262144},
  authentication = {
    enabled = true, realm = "Test Realm",
    except = {[[/public/.*]], "/health"},
    api_keys = {header = "X-API-Key", query = "api_key"},
  },
}
moonwire.apikeys.add("key-alice", {name = "alice", scopes = {"read"}})
moonwire.apikeys.add("key-nameless")
moonwire.apikeys.add("key-removed", {name = "gone"})
moonwire.apikeys.remove("key-removed")

function OnAuthentication(req, user, password)
  if user == "boom" then error("the password store is down") end
  if user == "sleepy" then moonwire.sleep(0.3) end
  return (user == "alice" and password == "s3cr:et") or (user == "sleepy" and password == "zz")
      or (user == "José" and password == "pässwörd")
end

function OnUnknownAuthentication(req, scheme, credentials)
  if credentials == "boom" then error("the token service is down") end
  if scheme == "Bearer" and credentials == "good-token" then return "bearer-user" end
  if scheme == "Bearer" and credentials == "anonymous-token" then return true end
  if scheme == "Custom" then return credentials == "let me in" and "custom-user" or false end
  return "yes" == "no"
end

function OnException(err, req)
  moonwire.shared:incr("exceptions")
  moonwire.shared:set("exception event", err.event)
end

local function whoami(req, res)
  moonwire.shared:incr("handled")
  res:json{user = req.user or false, api_key = req.api_key or false, path = req.path}
end
moonwire.get("/private", whoami)
moonwire.get("/open", whoami, {auth = false})
moonwire.get([[/public/.*]], whoami)
moonwire.get("/health", whoami)
moonwire.get("/handled", function(req, res) res:json{n = moonwire.shared:get("handled") or 0,
  exceptions = moonwire.shared:get("exceptions") or 0, event = moonwire.shared:get("exception event")} end,
  {auth = false})
moonwire.get("/addkey", function(req, res) moonwire.apikeys.add(req.query.k, {name = "runtime"}) res:send("ok") end,
  {auth = false})
moonwire.get("/version", function(req, res) res:send("v1") end, {auth = false})
local docs = moonwire.vhost([[docs\.test]], {auth = false})
docs:get("/private", whoami)
function OnCommandGet(req, res) res:send("fallback " .. (req.user or "-")) end
"""


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(APP)


def handled(server):
    return server.get("/handled").json()["n"]


def curl(server, path, *args):
    """curl's status, headers (lowercase names) and body."""
    result = subprocess.run(["curl", "-s", "-D", "-", "--max-time", "10", *args, server.url + path],
                            capture_output=True, timeout=20)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


# --- Basic ---------------------------------------------------------------------------------------

def test_basic_accepted_with_curl_sets_req_user(server):
    status, _, body = curl(server, "/private", "-u", "alice:s3cr:et")   # the password holds a colon
    assert status == 200 and b'"user":"alice"' in body


def test_basic_refused_answers_401_with_the_realm_and_runs_no_handler(server):
    before = handled(server)
    for args in (["-u", "alice:wrong"], ["-u", "mallory:s3cr:et"], []):
        status, headers, body = curl(server, "/private", *args)
        assert status == 401, args
        assert headers["www-authenticate"] == CHALLENGE
        assert body == b"401 Unauthorized\n"
    assert handled(server) == before


def test_http2_requests_are_authenticated_too(server):
    status, _, body = curl(server, "/private", "--http2-prior-knowledge", "-u", "alice:s3cr:et")
    assert status == 200 and b'"user":"alice"' in body
    status, headers, _ = curl(server, "/private", "--http2-prior-knowledge", "-u", "alice:nope")
    assert status == 401 and headers["www-authenticate"] == CHALLENGE


def test_utf8_credentials_with_httpx_basic_auth(server):
    with httpx.Client(base_url=server.url, auth=("José", "pässwörd"), timeout=10) as client:
        assert client.get("/private").json()["user"] == "José"
    with httpx.Client(base_url=server.url, auth=("José", "passwörd"), timeout=10) as client:
        assert client.get("/private").status_code == 401


def test_no_route_still_authenticates_and_the_fallback_sees_the_user(server):
    assert server.get("/nowhere").status_code == 401
    response = server.get("/nowhere", headers={"Authorization": basic("alice", "s3cr:et")})
    assert response.text == "fallback alice"


def test_a_hook_that_waits_admits_after_its_wait(server):
    started = time.monotonic()
    response = server.get("/private", headers={"Authorization": basic("sleepy", "zz")})
    assert response.status_code == 200 and response.json()["user"] == "sleepy"
    assert time.monotonic() - started >= 0.3
    assert server.get("/private", headers={"Authorization": basic("sleepy", "no")}).status_code == 401


@pytest.mark.parametrize("header", [
    "Basic !!!!", "Basic " + base64.b64encode(b"no colon here").decode(), "Basic", "Basic Zm9vOmJhcg",
    "Basic " + base64.b64encode(b"a:b\x00c").decode(), "Basic " + base64.b64encode(b"\xe9t\xe9:x").decode(),
    "Basic " + base64.b64encode(b"user:" + b"p" * 48 * 1024).decode(),   # 64 KiB of base64
    "(not a scheme)", "",
])
def test_malformed_basic_is_401(server, header):
    response = server.get("/private", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE


def test_an_error_in_on_authentication_refuses(server):
    before = server.get("/handled").json()
    response = server.get("/private", headers={"Authorization": basic("boom", "x")})
    assert response.status_code == 401 and response.headers["www-authenticate"] == CHALLENGE
    after = wait_until(lambda: (lambda a: a if a["exceptions"] > before["exceptions"] else None)(
        server.get("/handled").json()))
    assert after and after["event"] == "OnAuthentication" and after["n"] == before["n"]
    assert "the password store is down" in server.log()


def test_a_hook_cut_off_by_the_cpu_budget_or_the_handler_timeout_refuses(moonwire):
    server = moonwire(r"""
    moonwire.options{limits = {handler_timeout = 0.5, instructions = 100000},
                     authentication = {enabled = true}}
    function OnAuthentication(req, user) if user == "spin" then while true do end end return true end
    function OnUnknownAuthentication(req, scheme) moonwire.sleep(5) return true end
    """)
    assert server.get("/", headers={"Authorization": basic("spin", "x")}).status_code == 401
    started = time.monotonic()
    assert server.get("/", headers={"Authorization": "Bearer slow"}).status_code == 401
    assert time.monotonic() - started < 3
    assert server.get("/", headers={"Authorization": basic("any", "x")}).status_code == 200   # admitted: www/index.html


# --- other schemes -------------------------------------------------------------------------------

def test_bearer_through_on_unknown_authentication_with_curl(server):
    status, _, body = curl(server, "/private", "--oauth2-bearer", "good-token")
    assert status == 200 and b'"user":"bearer-user"' in body
    status, _, body = curl(server, "/private", "--oauth2-bearer", "anonymous-token")
    assert status == 200 and b'"user":false' in body
    status, headers, _ = curl(server, "/private", "--oauth2-bearer", "bad-token")
    assert status == 401 and headers["www-authenticate"] == CHALLENGE


def test_a_custom_scheme(server):
    assert server.get("/private", headers={"Authorization": "Custom let me in"}).json()["user"] == "custom-user"
    assert server.get("/private", headers={"Authorization": "Custom nope"}).status_code == 401


def test_an_error_in_on_unknown_authentication_refuses(server):
    before = server.get("/handled").json()["exceptions"]
    response = server.get("/private", headers={"Authorization": "Bearer boom"})
    assert response.status_code == 401
    assert wait_until(lambda: server.get("/handled").json()["event"] == "OnUnknownAuthentication")
    assert server.get("/handled").json()["exceptions"] > before


def test_a_bearer_jwt_through_on_unknown_authentication(moonwire):
    """The documented JWT pattern: accepted, and refused when expired, forged or `alg: none`."""
    server = moonwire(r"""
    moonwire.options{authentication = {enabled = true}}
    function OnUnknownAuthentication(req, scheme, token)
      if scheme ~= "Bearer" then return false end
      local claims = moonwire.jwt.verify(token, {secret = "k", algorithms = {"HS256"}})
      return claims and claims.sub or false
    end
    moonwire.get("/me", function(req, res) res:send(req.user) end)
    """)

    def me(token):
        return server.get("/me", headers={"Authorization": "Bearer " + token})

    now = int(time.time())
    good = jwt.encode({"sub": "jwt-user", "exp": now + 60}, "k", algorithm="HS256")
    assert me(good).text == "jwt-user"
    assert me(good[:-2] + ("xx" if not good.endswith("xx") else "yy")).status_code == 401
    assert me(jwt.encode({"sub": "jwt-user", "exp": now - 60}, "k", algorithm="HS256")).status_code == 401
    assert me(jwt.encode({"sub": "jwt-user"}, "other", algorithm="HS256")).status_code == 401
    assert me(jwt.encode({"sub": "jwt-user"}, None, algorithm="none")).status_code == 401
    assert me(jwt.encode({"sub": "jwt-user"}, "k", algorithm="HS512")).status_code == 401


# --- API keys ------------------------------------------------------------------------------------

def test_api_key_in_the_header_and_the_query(server):
    response = server.get("/private", headers={"X-API-Key": "key-alice"})
    assert response.status_code == 200
    assert response.json()["user"] == "alice"
    assert response.json()["api_key"] == {"name": "alice", "scopes": ["read"]}
    response = server.get("/private?api_key=key-alice")
    assert response.status_code == 200 and response.json()["user"] == "alice"
    response = server.get("/private", headers={"X-API-Key": "key-nameless"})
    assert response.status_code == 200 and response.json()["user"] is False and response.json()["api_key"] == {}


def test_wrong_removed_or_near_keys_are_refused(server):
    for key in ("key-removed", "key-alic", "key-alice.", "KEY-ALICE", "", "x" * 5000):
        assert server.get("/private", headers={"X-API-Key": key}).status_code == 401, key
    assert server.get("/private?api_key=nope").status_code == 401
    assert server.get("/private?apikey=key-alice").status_code == 401


def test_keys_added_while_serving_survive_a_reload(server):
    assert server.get("/private", headers={"X-API-Key": "late-key"}).status_code == 401
    assert server.get("/addkey?k=late-key").text == "ok"
    assert server.get("/private", headers={"X-API-Key": "late-key"}).json()["user"] == "runtime"
    main = server.scripts / "main.lua"
    main.write_text(main.read_text().replace('res:send("v1")', 'res:send("v2")'))
    assert wait_until(lambda: server.get("/version").text == "v2", timeout=10)
    assert server.get("/private", headers={"X-API-Key": "late-key"}).json()["user"] == "runtime"
    assert server.get("/private", headers={"X-API-Key": "key-alice"}).json()["user"] == "alice"


# --- what skips authentication -------------------------------------------------------------------

def test_except_patterns_match_the_whole_path(server):
    assert server.get("/public/readme").status_code == 200
    assert server.get("/health").json()["user"] is False
    assert server.get("/health/x").status_code == 401            # the whole path, not a prefix
    assert server.get("/private/public/x").status_code == 401


def test_a_route_and_a_vhost_may_opt_out(server):
    assert server.get("/open").status_code == 200
    assert server.get("/private", headers={"Host": "docs.test"}).status_code == 200
    assert server.get("/other", headers={"Host": "docs.test"}).text == "fallback -"


def test_routes_and_vhosts_may_opt_in_when_authentication_is_off(moonwire):
    server = moonwire(r"""
    moonwire.options{authentication = {realm = "opt-in"}}     -- enabled = false
    local admin = moonwire.vhost([[admin\.test]], {auth = true})
    admin:get("/", function(req, res) res:send("admin " .. req.user) end)
    admin:get("/status", function(req, res) res:send("up") end, {auth = false})
    moonwire.get("/", function(req, res) res:send("public") end)
    moonwire.get("/locked", function(req, res) res:send("locked " .. req.user) end, {auth = true})
    function OnAuthentication(req, user, password) return user == "a" and password == "b" end
    """)
    assert server.get("/").text == "public"
    response = server.get("/locked")
    assert response.status_code == 401 and response.headers["www-authenticate"] == 'Basic realm="opt-in", charset="UTF-8"'
    assert server.get("/locked", headers={"Authorization": basic("a", "b")}).text == "locked a"
    assert server.get("/", headers={"Host": "admin.test"}).status_code == 401
    assert server.get("/", headers={"Host": "admin.test", "Authorization": basic("a", "b")}).text == "admin a"
    assert server.get("/status", headers={"Host": "admin.test"}).text == "up"
    # Without OnUnknownAuthentication, another scheme is refused.
    assert server.get("/locked", headers={"Authorization": "Bearer whatever"}).status_code == 401


def test_without_on_authentication_basic_is_refused_and_keys_still_work(moonwire):
    server = moonwire(r"""
    moonwire.options{authentication = {enabled = true, basic = false, api_keys = {}}}
    moonwire.apikeys.add("k")
    moonwire.get("/", function(req, res) res:send("in") end)
    """)
    response = server.get("/", headers={"Authorization": basic("a", "b")})
    assert response.status_code == 401 and "www-authenticate" not in response.headers
    assert server.get("/", headers={"X-API-Key": "k"}).text == "in"
    assert server.get("/?api_key=k").status_code == 401           # the query is off unless named


def test_on_before_command_runs_first_and_may_answer(moonwire):
    server = moonwire(r"""
    moonwire.options{authentication = {enabled = true}}
    function OnBeforeCommand(req, res)
      if req.path == "/ping" then res:send("pong") return true end
      res:header("X-Seen", "yes")
    end
    function OnAuthentication() return false end
    moonwire.get("/", function(req, res) res:send("in") end)
    """)
    assert server.get("/ping").text == "pong"
    assert server.get("/").status_code == 401


# --- bad input and load -------------------------------------------------------------------------

def test_basic_over_the_header_size_limit_is_431(moonwire):
    server = moonwire('moonwire.options{authentication = {enabled = true}}')
    header = "Basic " + base64.b64encode(b"user:" + b"p" * 64 * 1024).decode()
    assert server.get("/", headers={"Authorization": header}).status_code == 431
    assert server.get("/").status_code == 401


def test_ten_thousand_wrong_passwords_in_a_row(server):
    """Pipelined on four keep-alive connections: each gets its 401, the server stays quick, and
    no password reaches the log."""
    mark = server.log_mark()
    total, batch = 10_000, 250
    started = time.monotonic()
    sockets = [server.connect(timeout=30) for _ in range(4)]
    try:
        sent = 0
        while sent < total:
            for s in sockets:
                requests = b"".join(
                    b"GET /private HTTP/1.1\r\nHost: x\r\nAuthorization: "
                    + basic("alice", f"wrong-{sent + i}").encode() + b"\r\n\r\n" for i in range(batch))
                s.sendall(requests)
                data = b""
                while data.count(b"401 Unauthorized\n") < batch:
                    chunk = s.recv(1 << 20)
                    assert chunk, "the server closed the connection"
                    data += chunk
                assert data.count(b"HTTP/1.1 401 ") == batch and b"HTTP/1.1 200" not in data
                sent += batch
    finally:
        for s in sockets:
            s.close()
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"10,000 refusals took {elapsed:.1f} s"
    quick = time.monotonic()
    assert server.get("/private", headers={"Authorization": basic("alice", "s3cr:et")}).status_code == 200
    assert server.get("/health").status_code == 200
    assert time.monotonic() - quick < 2
    assert "wrong-" not in server.log_since(mark)


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, message", [
    ('moonwire.options{authentication = {enabeld = true}}', "unknown option authentication.enabeld"),
    ('moonwire.options{authentication = {api_keys = {headr = "X"}}}', "unknown option authentication.api_keys.headr"),
    ('moonwire.options{authentication = {enabled = "yes"}}', "authentication.enabled must be true or false"),
    ('moonwire.options{authentication = {realm = \'a"b\'}}', "authentication.realm must be"),
    ('moonwire.options{authentication = {except = {"("}}}', "authentication.except:"),
    ('moonwire.get("/", print, {auht = false})', "moonwire.get: unknown option auht"),
    ('moonwire.get("/", print, {auth = 1})', "moonwire.get: auth must be true or false"),
    ('moonwire.vhost("x", {auth = "no"})', "moonwire.vhost: auth must be true or false"),
    ('moonwire.apikeys.add("")', "moonwire.apikeys.add: expected the key"),
    ('moonwire.apikeys.add("k", {f = print})', "moonwire.apikeys.add: info: cannot store a function"),
])
def test_bad_settings_are_load_errors(tmp_path, source, message):
    (tmp_path / "main.lua").write_text(source + "\n")
    result = run_cli("check", "--scripts", tmp_path)
    assert result.returncode == 1
    assert "main.lua:1:" in result.stdout + result.stderr and message in result.stdout + result.stderr

