"""Waiting everywhere (docs/lua-api.md#waiting): moonwire.sleep in WebSocket, connection and
lifecycle events with each socket's order kept, handler timeouts and the CPU budget while
waiting. Timers and threads are in test_lua_timers.py."""
import asyncio
import time

import httpx
import pytest
import websockets

from harness import LUA_RECORD
from websocket_client import url

# Every record line carries the VM it came from (a table's address, made once per VM).
PRELUDE = LUA_RECORD + r"""
local vm = tostring({}):match("0x%x+")
"""


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 30))


# --- WebSocket events that wait --------------------------------------------------------------

WS_APP = PRELUDE + r"""
function OnConnect(ws)
  moonwire.sleep(0.2)                    -- messages sent meanwhile wait for OnConnect's end
  ws.data.ready = true
end
function OnMessage(ws, text)
  if text == "boom" then error("message handler failed") end
  moonwire.sleep(tonumber(text:match("^sleep (%S+)")) or 0.05 * (#text % 3))
  ws:send((ws.data.ready and "ready " or "early ") .. text)
end
function OnDisconnect(ws, code)
  moonwire.sleep(0.05)
  record("disconnects.log", tostring(code))
end
moonwire.get("/quick", function(req, res) res:send("quick") end)
"""


def test_a_waiting_on_message_keeps_the_socket_order_and_holds_no_other_socket(moonwire):
    server = moonwire(WS_APP, threads=1)

    async def scenario():
        async with websockets.connect(url(server)) as slow, websockets.connect(url(server)) as other:
            await asyncio.sleep(0.3)                       # both past OnConnect
            messages = [f"m{'x' * i}" for i in range(12)]
            for text in messages:
                await slow.send(text)
            await slow.send("sleep 1")
            await slow.send("after")
            started = time.monotonic()
            await other.send("sleep 0")
            assert await other.recv() == "ready sleep 0"
            other_wait = time.monotonic() - started
            replies = [await slow.recv() for _ in range(len(messages) + 2)]
            return messages, replies, other_wait

    messages, replies, other_wait = run(scenario())
    assert replies == [f"ready {m}" for m in messages] + ["ready sleep 1", "ready after"]
    assert other_wait < 0.8, f"another socket on the same loop waited {other_wait:.2f} s"
    assert httpx.get(server.url + "/quick").text == "quick"
    assert server.wait_for_records("disconnects.log", 2) == ["1000", "1000"]


def test_messages_sent_during_a_waiting_on_connect_come_after_it(moonwire):
    server = moonwire(WS_APP)

    async def scenario():
        async with websockets.connect(url(server)) as ws:
            for text in ["a", "b", "c"]:
                await ws.send(text)
            return [await ws.recv() for _ in range(3)]

    assert run(scenario()) == ["ready a", "ready b", "ready c"]


def test_an_error_after_a_wait_costs_one_message_and_the_socket_goes_on(moonwire):
    server = moonwire(WS_APP)

    async def scenario():
        async with websockets.connect(url(server)) as ws:
            await ws.send("boom")
            await ws.send("fine")
            return await ws.recv()

    assert run(scenario()) == "ready fine"
    assert server.wait_for_log("message handler failed")


def test_a_close_while_a_handler_waits_runs_on_disconnect_after_it(moonwire):
    # The client's close frame is read after the message before it was handled: it comes in
    # order, like any frame, so the waiting handler can still send.
    server = moonwire(PRELUDE + r"""
function OnMessage(ws, text)
  moonwire.sleep(0.5)
  record("order.log", "message " .. tostring(ws:send("late")))
end
function OnDisconnect(ws, code) record("order.log", "disconnect " .. code) end
""")

    async def scenario():
        ws = await websockets.connect(url(server))
        await ws.send("x")
        await asyncio.sleep(0.1)
        await ws.close()

    run(scenario())
    assert server.wait_for_records("order.log", 2) == ["message true", "disconnect 1000"]


def test_a_waiting_event_is_cut_by_the_handler_timeout(moonwire):
    server = moonwire(r"""
moonwire.options{limits = {handler_timeout = 0.5}}
function OnMessage(ws, text)
  if text == "forever" then moonwire.sleep(30) end
  ws:send("echo " .. text)
end
""")

    async def scenario():
        async with websockets.connect(url(server)) as ws:
            await ws.send("forever")
            await ws.send("next")
            started = time.monotonic()
            reply = await ws.recv()
            return reply, time.monotonic() - started

    reply, elapsed = run(scenario())
    assert reply == "echo next"
    assert elapsed < 5
    assert server.wait_for_log("OnMessage timed out after 0.5 seconds")


# --- hooks and lifecycle events that wait ----------------------------------------------------

def test_on_tcp_connect_may_wait_before_it_admits_or_refuses(moonwire):
    server = moonwire(PRELUDE + r"""
function OnTCPConnect(conn)
  moonwire.sleep(0.2)
  local f = io.open(dir .. "/refuse", "r")
  if f then f:close() return false end
  return true
end
moonwire.get("/", function(req, res) res:send("in") end)
""")
    started = time.monotonic()
    assert httpx.get(server.url + "/", timeout=5).text == "in"
    assert time.monotonic() - started >= 0.2
    (server.data_dir / "refuse").write_text("")
    reply = server.raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", idle=3)
    assert reply.data == b"" and reply.closed


def test_on_startup_and_on_handshake_may_wait(moonwire):
    server = moonwire(PRELUDE + r"""
function OnStartup()
  moonwire.sleep(0.1)
  record("startup.log", "after the wait")
end
function OnHandshake(req, res)
  moonwire.sleep(0.1)
  if req.query.deny then res.status = 403 end
end
function OnMessage(ws, text) ws:send(text) end
""")
    assert server.wait_for_records("startup.log", 1) == ["after the wait"]

    async def scenario():
        async with websockets.connect(url(server)) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(url(server, "/?deny=1"))
        return refused.value.response.status_code

    assert run(scenario()) == 403


def test_waiting_where_the_server_needs_an_answer_at_once_raises(moonwire):
    server = moonwire(r"""
local ok, err = pcall(moonwire.sleep, 0)
moonwire.get("/load", function(req, res) res:send(tostring(err)) end)
moonwire.get("/wrapped", function(req, res)
  local ok2, err2 = pcall(coroutine.wrap(function() moonwire.sleep(0) end))
  res:send(tostring(err2))
end)
""")
    assert "moonwire.sleep may only be called in any event that can wait (not while the scripts load)" in \
        httpx.get(server.url + "/load").text
    assert "cannot wait here (in a coroutine the script made" in httpx.get(server.url + "/wrapped").text


def test_the_cpu_budget_counts_cpu_not_waiting(moonwire):
    # 2,000,000 instructions: the handler loops for about 400,000 before and after each wait
    # and waits 1.5 s in all; only the loops count.
    server = moonwire(r"""
moonwire.options{limits = {instructions = 2000000}}
moonwire.get("/work", function(req, res)
  local n = 0
  for round = 1, 3 do
    for i = 1, 100000 do n = n + i end
    moonwire.sleep(0.5)
  end
  res:send(tostring(n))
end)
""")
    reply = httpx.get(server.url + "/work", timeout=10)
    assert reply.status_code == 200 and reply.text == str(3 * 100000 * 100001 // 2)
