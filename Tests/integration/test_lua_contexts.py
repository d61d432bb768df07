"""Where each Lua-facing function may run: the reference's context table (docs/lua-api.md),
checked against the real server by calling every function from a context where it may not run.

One app probes every function in the places scripts can reach: at load time, in a request
handler, in OnHandshake, in OnConnect (WebSocket) and in OnTCPConnect (connection), with a
request's `req` and `res` kept (its handler sleeps) and a connection's `ws` kept. Each probe is
a pcall whose error message lands in moonwire.shared; the test reads them all back."""
import json
import pathlib
import re
import threading

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness import wait_until

REFERENCE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "lua-api.md"

# How each function is called in a probe. R, S and W are a kept req, res and ws; H a host.
CALLS = {
    "moonwire.options": "moonwire.options{}",
    "moonwire.listen": "moonwire.listen{port = 1}",
    "moonwire.vhost": "moonwire.vhost('probe')",
    "moonwire.push_preload": "moonwire.push_preload('/a', {'/b'})",
    "moonwire.push_remove": "moonwire.push_remove('/a')",
    "moonwire.sleep": "moonwire.sleep(0)",
    "moonwire.spawn": "moonwire.spawn(print)",
    "thread:wait": "debug.getregistry()['moonwire.thread'].__index.wait(nil)",
    "session:destroy": "debug.getregistry()['moonwire.session'].__index.destroy(nil)",
    "session:regenerate": "debug.getregistry()['moonwire.session'].__index.regenerate(nil)",
    "moonwire.http.request": "moonwire.http.request{url = 'http://127.0.0.1:1/'}",
    "moonwire.http.get": "moonwire.http.get('http://127.0.0.1:1/')",
    "moonwire.http.post": "moonwire.http.post('http://127.0.0.1:1/', 'x')",
    "moonwire.redis:call": "moonwire.redis:call('GET', 'x')",
    "moonwire.reload": "moonwire.reload()",
    "moonwire.broadcast": "moonwire.broadcast('x')",
    "moonwire.write": "moonwire.write('no-such-guid', 'x')",
    "moonwire.ping": "moonwire.ping()",
    "moonwire.disconnect_all": "moonwire.disconnect_all()",
    "moonwire.connections": "moonwire.connections()",
    "moonwire.connections{cluster=true}": "moonwire.connections{cluster = true}",
    "req:header": "R:header('x')",
    "res.status": "local _ = S.status",
    "res:header": "S:header('x', 'y')",
    "res:send": "S:send('x')",
    "res:json": "S:json{}",
    "res:redirect": "S:redirect('/x')",
    "res:file": "S:file('x')",
    "res:write": "S:write('x')",
    "res:finish": "S:finish()",
    "ws.data": "local _ = W.data",
    "ws.session": "local _ = W.session",
    "ws:send": "W:send('x')",
    "ws:send_binary": "W:send_binary('x')",
    "ws:ping": "W:ping()",
    "ws:close": "W:close()",
    "ws:subscribe": "W:subscribe('c')",
    "ws:unsubscribe": "W:unsubscribe('c')",
    "moonwire.tcp.connect": "moonwire.tcp.connect('127.0.0.1', 9)",
    # A socket exists only where connect ran, so no probed place where these may not run holds
    # one (see HOLDS); they check their context as connect does.
    "sock:send": "K:send('x')",
    "sock:receive": "K:receive()",
    # A raw connection exists only in OnUnknownProtocol: its methods are reached through the
    # metatable's __index, and check their context before their object.
    "conn:read": "debug.getregistry()['moonwire.rawconn'].__index(nil, 'read')(nil)",
    "conn:write": "debug.getregistry()['moonwire.rawconn'].__index(nil, 'write')(nil, 'x')",
    "moonwire.limit": "moonwire.limit('probe', 1, 1)",
    "moonwire.stop": "moonwire.stop()",
    "moonwire.restart": "moonwire.restart()",
    "req:read": "R:read()",
    "res:sse": "S:sse()",
    "sse:send": "debug.getregistry()['moonwire.sse'].__index.send(nil, 'x')",
    "sse:subscribe": "debug.getregistry()['moonwire.sse'].__index.subscribe(nil, 'c')",
    "sse:close": "debug.getregistry()['moonwire.sse'].__index.close(nil)",
}
for method in ("get", "post", "put", "delete", "patch", "head", "route"):
    CALLS[f"moonwire.{method}"] = (f"moonwire.route('GET', '/x', print)" if method == "route"
                                   else f"moonwire.{method}('/x', print)")
for method in ("get", "post", "put", "delete", "patch", "head", "route", "options"):
    CALLS[f"host:{method}"] = (f"H:route('GET', '/x', print)" if method == "route" else f"H:{method}('/x', print)")
CALLS["moonwire.proxy"] = "moonwire.proxy('/p', 'http://127.0.0.1:1')"
CALLS["host:proxy"] = "H:proxy('/p', 'http://127.0.0.1:1')"

# The places probed: the context's name in the table, the Lua code path that runs the probes,
# and the event the refusal names. Which objects exist there decides what can be probed.
PLACES = {
    "while the scripts load": ("load", "not while the scripts load"),
    "in a request handler": ("request", "not in OnCommandGet"),
    "in a WebSocket handshake": ("handshake", "not in OnHandshake"),
    "in a WebSocket event": ("websocket", "not in OnConnect"),
    "in a connection event": ("connection", "not in OnTCPConnect"),
}
# The objects each place can hold: the request's own req/res in a handshake; kept ones in a
# WebSocket or connection event; a kept ws in a connection event.
HOLDS = {
    "load": set(),
    "request": set(),
    "handshake": {"req", "res"},
    "websocket": {"req", "res"},
    "connection": {"req", "res", "ws"},
}


def reference_rows():
    text = REFERENCE.read_text()
    table = text[text.index("<!-- contexts table"):]
    rows = []
    for line in table.splitlines()[3:]:
        if not line.startswith("|"):
            break
        name, allowed = re.match(r"\|\s*`([^`]+)`\s*\|\s*(.+?)\s*\|", line).groups()
        rows.append((name, allowed))
    return rows


def forbidden_place(name, allowed):
    """The first probed place where `name` may not run and its objects exist, or None."""
    if allowed == "anywhere":
        return None
    needs = {"req": "req", "res": "res", "ws": "ws", "sock": "sock"}.get(re.split(r"[.:]", name)[0])
    for context, (place, _) in PLACES.items():
        if allowed == "in any event (not while the scripts load)":
            forbidden = context == "while the scripts load"
        else:
            forbidden = context not in allowed
        if forbidden and (needs is None or needs in HOLDS[place]):
            return context
    return None


def probe_call(name):
    if name.startswith("req."):
        return f"local _ = R.{name[4:]}"
    return CALLS[name]


def app(probes):
    blocks = {place: [] for place, _ in PLACES.values()}
    for name, context in probes:
        place = PLACES[context][0]
        blocks[place].append(f"  probe({name!r}, function() {probe_call(name)} end)")
    body = {place: "\n".join(lines) for place, lines in blocks.items()}
    return f"""
H = moonwire.vhost('host-for-probes')
local function probe(name, fn)
  local ok, err = pcall(fn)
  moonwire.shared:set("probe " .. name, ok and "no error" or tostring(err))
end
{body['load'].replace('  probe', 'probe')}
function OnCommandGet(req, res)
  if req.path == "/keep" then
    R, S = req, res
    for _ = 1, 400 do                       -- kept until the test is done, 20 s at most
      if moonwire.shared:get("release") then break end
      moonwire.sleep(0.05)
    end
    res:send("kept")
  elseif req.path == "/release" then
    moonwire.shared:set("release", true)
    res:send("released")
  elseif req.path == "/is-kept" then
    res:send(R and "yes" or "no")
  elseif req.path == "/probe" then
{body['request']}
    res:send("probed")
  elseif req.path == "/results" then
    local out = {{}}
    for _, name in ipairs(moonwire.json.decode(req.query.names)) do out[name] = moonwire.shared:get("probe " .. name) end
    res:json(out)
  end
end
function OnHandshake(req, res)
  if req.path == "/hs" then
    local R, S = req, res
{body['handshake']}
    res.status = 403
  end
end
function OnConnect(ws)
{body['websocket']}
  W = ws
end
function OnTCPConnect(conn)
  if W then
{body['connection']}
  end
end
"""


def test_the_reference_lists_every_function_with_a_probe():
    rows = reference_rows()
    assert len(rows) > 60
    for name, allowed in rows:
        assert name.startswith("req.") or name in CALLS or allowed == "anywhere", f"no probe for {name}"


def test_every_function_refuses_a_context_where_it_may_not_run(moonwire):
    probes = []
    for name, allowed in reference_rows():
        context = forbidden_place(name, allowed)
        if context is not None:
            probes.append((name, context))
    server = moonwire(app(probes), threads=1)
    keeper = threading.Thread(target=lambda: httpx.get(server.url + "/keep", timeout=30))
    keeper.start()
    try:
        # The kept req and res must exist before the events that probe them run.
        assert wait_until(lambda: httpx.get(server.url + "/is-kept", timeout=5).text == "yes", timeout=5)
        assert httpx.get(server.url + "/probe", timeout=5).text == "probed"
        with pytest.raises(InvalidStatus):
            with connect(server.url.replace("http", "ws") + "/hs", open_timeout=5):
                pass
        with connect(server.url.replace("http", "ws") + "/ws", open_timeout=5):
            # Opens a connection after OnConnect kept the ws: OnTCPConnect probes with it.
            results = httpx.get(server.url + "/results", params={"names": json.dumps([n for n, _ in probes])},
                                timeout=5).json()
    finally:
        httpx.get(server.url + "/release", timeout=5)
        keeper.join()
    seen_places = {PLACES[context][0] for _, context in probes}
    assert seen_places == {"load", "request", "handshake", "websocket", "connection"}
    failures = []
    for name, context in probes:
        place = PLACES[context][1]
        allowed = dict(reference_rows())[name]
        if allowed == "in any event (not while the scripts load)":
            expected = f"{name} may not be called while the scripts load"
        else:
            expected = f"{name} may only be called {allowed} ({place})"
        got = results.get(name)
        if got is None or expected not in got:
            failures.append(f"{name} in {context}: expected {expected!r}, got {got!r}")
    assert not failures, "\n".join(failures)
    assert server.process.poll() is None


def test_a_handler_cannot_turn_the_cpu_budget_off(moonwire):
    server = moonwire("""
        moonwire.options{ limits = { instructions = 2000000 } }
        function OnCommandGet(req, res)
          if req.path == "/off" then moonwire.options{ limits = { instructions = 0 } } end
          if req.path == "/listen" then moonwire.listen{ port = 1 } end
          if req.path == "/spin" then while true do end end
          res:send("ok")
        end
    """, threads=1)
    reply = server.get("/off")
    assert reply.status_code == 500
    assert "moonwire.options may only be called while the scripts load (not in OnCommandGet)" in server.log()
    assert server.get("/listen").status_code == 500
    assert "moonwire.listen may only be called while the scripts load" in server.log()
    assert server.get("/spin").status_code == 503


def test_res_write_in_onhandshake_raises(moonwire):
    server = moonwire("""
        function OnHandshake(req, res)
          local ok, err = pcall(res.write, res, "x")
          moonwire.log.warn("write in handshake", ok, err)
          res:send("refused with a body"); res.status = 409
        end
        function OnConnect(ws) end
    """)
    with pytest.raises(InvalidStatus) as refused:
        with connect(server.url.replace("http", "ws") + "/", open_timeout=5):
            pass
    assert refused.value.response.status_code == 409 and refused.value.response.body == b"refused with a body"
    assert server.wait_for_log("write in handshake false")
    assert "res:write may only be called in a request handler (not in OnHandshake)" in server.log()
