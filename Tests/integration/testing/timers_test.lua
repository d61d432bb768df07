-- Timers on the test clock, in a file of their own: the clock (like moonwire.shared and the
-- sessions) is the file's, and pass_test.lua moves it by hours.
function test_timers_follow_the_clock(t)
  t.eq(t.get("/clock").json, { ticks = 0, fired = false })
  t.advance(10)
  t.eq(t.get("/clock").json, { ticks = 1, fired = false })
  t.advance(50)
  t.eq(t.get("/clock").json, { ticks = 2, fired = true })
end

function test_websocket_heartbeats_follow_the_clock(t)
  local ws = t.websocket("/ws")
  t.eq(t.get("/heartbeats").json, { n = 0 })
  t.advance(301)
  local n = 0
  for _ = 1, 50 do
    n = t.get("/heartbeats").json.n
    if n > 0 then break end
  end
  t.eq(n, 1, "one heartbeat after 301 s of silence on the test clock")
  ws:send("still here")
  t.eq(ws:receive(), "echo: still here")
  ws:close()
end
