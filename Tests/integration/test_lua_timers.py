"""Timers and threads (docs/lua-api.md#waiting): moonwire.timer and moonwire.every with
cancels, no overlap, one loop or every loop, bad arguments, reloads; moonwire.spawn's threads
waiting side by side; OnBeforeHeartBeat waiting; and the bounds on timers and threads per VM."""
import asyncio
import os
import time

import httpx
import websockets

from harness import wait_until
from test_lua_waits import PRELUDE, run
from websocket_client import url


TIMER_APP = PRELUDE + r"""
moonwire.timer(0.1, function(a, b) record("once.log", vm .. " " .. a .. " " .. b) end, "x", "y")
local cancelled = moonwire.timer(0.2, function() record("once.log", "cancelled timer ran") end)
record("cancel.log", tostring(cancelled:cancel()) .. " " .. tostring(cancelled:cancel()))
moonwire.timer(0.1, function() record("everyloop.log", vm) end, {every_loop = true})
local runs = 0
moonwire.every(0.1, function()
  runs = runs + 1
  record("every.log", string.format("start %d %s", runs, vm))
  moonwire.sleep(0.25)                    -- longer than the interval: the next run waits
  record("every.log", string.format("end %d %s", runs, vm))
  if runs == 2 then error("every failed once") end
end)
function OnException(err, req) record("exceptions.log", err.event .. " " .. tostring(req)) end
moonwire.get("/later", function(req, res)
  moonwire.timer(0.05, function() record("handler_timer.log", vm) end)
  record("handler_vm.log", vm)
  res:send("scheduled")
end)
"""


def test_timers_run_once_cancel_and_every_never_overlaps(moonwire):
    server = moonwire(TIMER_APP, threads=2)
    once = server.wait_for_records("once.log", 1)
    assert len(once) == 1 and once[0].endswith(" x y")
    assert set(server.records("cancel.log")) == {"true false"}   # once per VM that loaded
    # Made while loading: one loop runs it, unless every_loop.
    assert len(set(server.wait_for_records("everyloop.log", 2))) == 2
    events = server.wait_for_records("every.log", 8, timeout=10)
    time.sleep(0.4)
    events = server.records("every.log")
    assert len({line.split()[2] for line in events}) == 1, "every made at load ran on more than one loop"
    kinds = [line.split()[0] for line in events]
    # start, end, start, end...: a run starts only after the previous one ended
    assert all(kind == ("start" if i % 2 == 0 else "end") for i, kind in enumerate(kinds[:8])), events
    assert "cancelled timer ran" not in server.records("once.log")
    # The error of run 2 went to OnException and the log; every went on.
    assert "a timer nil" in server.wait_for_records("exceptions.log", 1)
    assert "every failed once" in server.log()
    assert int(events[-1].split()[1]) >= 4


def test_a_timer_made_in_a_handler_runs_on_that_handlers_loop(moonwire):
    server = moonwire(TIMER_APP, threads=2)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(4):
            assert client.get("/later").text == "scheduled"
    handler_vms = server.wait_for_records("handler_vm.log", 4)
    timer_vms = server.wait_for_records("handler_timer.log", 4)
    assert sorted(handler_vms) == sorted(timer_vms)


def test_timer_arguments_are_checked(moonwire):
    server = moonwire(r"""
moonwire.get("/bad", function(req, res)
  local results = {}
  for _, f in ipairs({
    function() moonwire.timer(-1, print) end,
    function() moonwire.every(0, print) end,
    function() moonwire.timer(1, "not a function") end,
    function() local t = moonwire.timer(10, print); t.cancel() end,
  }) do
    local ok, err = pcall(f)
    results[#results + 1] = tostring(ok) .. ": " .. tostring(err)
  end
  res:send(table.concat(results, "\n"))
end)
""")
    lines = httpx.get(server.url + "/bad").text.split("\n")
    assert "expected a number of seconds >= 0" in lines[0]
    assert "expected a number of seconds > 0" in lines[1]
    assert "expected a function as the second argument" in lines[2]
    assert "call it on a timer handle, with a colon" in lines[3]


def test_a_reload_stops_the_old_timers_after_their_run_and_starts_the_new_ones(moonwire):
    template = PRELUDE + r"""
moonwire.every(0.1, function()
  record("gen.log", "start {v}")
  moonwire.sleep(0.3)
  record("gen.log", "end {v}")
end)
moonwire.get("/", function(req, res) res:send("v{v}") end)
"""
    server = moonwire(template.replace("{v}", "1"))
    server.wait_for_records("gen.log", 1)
    path = server.scripts / "main.lua"
    tmp = server.scripts / ".main.tmp"
    tmp.write_text(template.replace("{v}", "2"))
    os.replace(tmp, path)
    assert wait_until(lambda: httpx.get(server.url + "/").text == "v2", 5)
    assert wait_until(lambda: "start 2" in server.records("gen.log"), 5)
    time.sleep(0.8)
    lines = server.records("gen.log")
    first_new = lines.index("start 2")
    # Old runs in progress finished; none started after the new generation's first.
    assert "start 1" not in lines[first_new:], lines
    assert lines.count("start 1") == lines.count("end 1"), lines


# --- threads -----------------------------------------------------------------------------------

def test_spawned_threads_wait_side_by_side_and_return_results_or_errors(moonwire):
    server = moonwire(r"""
moonwire.get("/three", function(req, res)
  local threads = {}
  for i = 1, 3 do
    threads[i] = moonwire.spawn(function(n) moonwire.sleep(0.3); return n * 10, "ok" end, i)
  end
  local failing = moonwire.spawn(function() moonwire.sleep(0.1); error("thread failed") end)
  local out = {}
  for i = 1, 3 do
    local value, tag = threads[i]:wait()
    out[#out + 1] = value .. tag
  end
  local nothing, err = failing:wait()
  out[#out + 1] = tostring(nothing) .. " " .. tostring(err):gsub("^.-: ", "")
  local again, again_err = threads[1]:wait()
  out[#out + 1] = tostring(again) .. " " .. again_err
  res:send(table.concat(out, ","))
end)
moonwire.get("/hundred", function(req, res)
  local threads = {}
  for i = 1, 100 do threads[i] = moonwire.spawn(function() moonwire.sleep(0.2); return i end) end
  local sum = 0
  for i = 1, 100 do sum = sum + threads[i]:wait() end
  res:send(tostring(sum))
end)
moonwire.get("/self", function(req, res)
  local me
  me = moonwire.spawn(function() moonwire.sleep(0.05); return pcall(function() return me:wait() end) end)
  local ok, err = me:wait()
  res:send(tostring(ok) .. " " .. tostring(err))
end)
""")
    started = time.monotonic()
    reply = httpx.get(server.url + "/three", timeout=10).text
    elapsed = time.monotonic() - started
    assert reply == ("10ok,20ok,30ok,nil thread failed,"
                     "nil thread:wait: the thread's results were already taken"), reply
    assert elapsed < 0.9, f"three 0.3 s waits took {elapsed:.2f} s: they ran one after the other"
    assert "a thread spawned in a route's handler failed" in server.log()
    started = time.monotonic()
    assert httpx.get(server.url + "/hundred", timeout=10).text == str(sum(range(1, 101)))
    assert time.monotonic() - started < 3
    reply = httpx.get(server.url + "/self", timeout=10).text
    assert reply.startswith("false ") and reply.endswith("thread:wait: a thread cannot wait for itself"), reply


def test_on_before_heartbeat_may_wait_and_its_answer_still_counts(moonwire):
    server = moonwire(PRELUDE + r"""
moonwire.options{heartbeat = {interval = 0.3, timeout = 0.3}}
function OnBeforeHeartBeat(ws)
  moonwire.sleep(0.05)
  record("heartbeats.log", "asked")
  return true                              -- handled: the server sends no ping
end
function OnMessage(ws, text) ws:send(text) end
""")

    async def scenario():
        async with websockets.connect(url(server), ping_interval=None) as ws:
            await asyncio.sleep(1.5)             # silent: the hook is asked, and answers "handled"
            await ws.send("still here")
            return await ws.recv()

    assert run(scenario()) == "still here"
    assert len(server.records("heartbeats.log")) >= 2


def test_timers_and_threads_are_bounded_per_vm(moonwire):
    server = moonwire(r"""
moonwire.get("/many", function(req, res)
  local handles, last, err = {}, nil, nil
  for i = 1, 10001 do
    last, err = moonwire.timer(3600, print)
    if not last then break end
    handles[#handles + 1] = last
  end
  for _, h in ipairs(handles) do h:cancel() end
  res:send(#handles .. " " .. tostring(err))
end)
""", threads=1)
    assert httpx.get(server.url + "/many", timeout=10).text == "10000 moonwire.timer: too many timers (10000)"
    # Cancelled timers free their places.
    assert httpx.get(server.url + "/many", timeout=10).text == "10000 moonwire.timer: too many timers (10000)"
