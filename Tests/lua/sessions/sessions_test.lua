-- Sessions through moonwire test: the cookie jar carries the session, the test clock times
-- it out. (Cookie flags, TLS, reloads and event loops stay in test_lua_sessions.py.)

function test_carried_across_requests(t)
  local first = t.get("/count")
  t.match(first.headers["set-cookie"], [[^MWSESSID=[0-9a-f]{32}; Path=/; HttpOnly; SameSite=Strict$]])
  t.eq(first.json.n, 1)
  local second = t.get("/count")
  t.eq(second.json, { id = first.json.id, n = 2 })
  t.eq(second.headers["set-cookie"], nil)
  t.eq(t.get("/events").json.started, 1)
end

function test_timeout_runs_on_session_end(t)
  t.eq(t.get("/count").json.n, 1)
  t.eq(t.get("/count").json.n, 2)
  t.advance(1799)
  t.eq(t.get("/count").json.n, 3)       -- the expiry slides with each use
  t.advance(1801)
  -- The sessions of the earlier tests (this file's server is theirs too) end with this one.
  local ended = t.get("/events").json.ended
  t.match(table.concat(ended, " "), [[(^| )timeout:3( |$)]])
end

function test_destroy_and_regenerate(t)
  t.eq(t.get("/count").json.n, 1)
  local moved = t.get("/regenerate").json
  t.ok(moved.old ~= moved.new)
  t.eq(moved.n, 1)
  t.eq(t.get("/count").json.id, moved.new)
  local bye = t.get("/destroy")
  t.match(bye.headers["set-cookie"], "Max-Age=0")
  t.eq(t.get("/count").json.n, 1)
end

function test_forged_cookie_gets_a_fresh_session(t)
  local before = #t.get("/events").json.invalid
  local r = t.get("/count", { headers = { Cookie = "MWSESSID=" .. string.rep("f", 32) } })
  t.eq(r.json.n, 1)
  t.ok(r.json.id ~= string.rep("f", 32))
  local invalid = t.get("/events").json.invalid
  t.eq({ #invalid, invalid[#invalid] }, { before + 1, 32 })
end
