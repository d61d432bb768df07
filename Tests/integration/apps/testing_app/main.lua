-- The app the tests of `moonwire test` run against (test_testing_harness.py): each part of the
-- request path, a session, timers, a TTL, a WebSocket and its heartbeat, an error, an endless loop.
moonwire.options{ sessions = { enabled = true, timeout = 1800 }, heartbeat = { interval = 300, timeout = 30 } }

function OnBeforeCommand(req, res)
  res:header("x-before", "yes")
  if req.path == "/blocked" then
    res.status = 403
    res:send("blocked\n")
    return true
  end
end

function OnAuthentication(req, user, password)
  return user == "ada" and password == "secret"
end

moonwire.get("/hello", function(req, res) res:send("hello\n") end)
moonwire.get("/version", function(req, res) res:send(req.version) end)
moonwire.get("/private", function(req, res) res:send("hi " .. req.user) end, { auth = true })
moonwire.post("/echo", function(req, res)
  res:json{ method = req.method, body = moonwire.json.decode(req.body), type = req.headers["content-type"] }
end)
moonwire.get("/visits", function(req, res)
  local session = req.session
  session.data.n = (session.data.n or 0) + 1
  res:json{ n = session.data.n }
end)
moonwire.get("/hits", function(req, res) res:json{ hits = moonwire.shared:incr("hits") } end)
moonwire.get("/clock", function(req, res)
  res:json{ ticks = moonwire.shared:get("ticks") or 0, fired = moonwire.shared:get("fired") or false }
end)
moonwire.post("/remember", function(req, res)
  moonwire.shared:set("remembered", req.body, 60)
  res.status = 204
end)
moonwire.get("/remembered", function(req, res) res:json{ value = moonwire.shared:get("remembered") } end)
moonwire.get("/error", function(req, res)
  local missing = nil
  res:send(missing.field)
end)
moonwire.get("/loop", function(req, res)
  while true do end
end)

local api = moonwire.vhost([[api\.example\.com]])
api:get("/hello", function(req, res) res:send("api hello\n") end)

moonwire.every(10, function() moonwire.shared:incr("ticks") end)
moonwire.timer(60, function() moonwire.shared:set("fired", true) end)

function OnHandshake(req, res)
  if req.path ~= "/ws" then res.status = 404 end
end

function OnBeforeHeartBeat(ws)
  moonwire.shared:incr("heartbeats")
end
moonwire.get("/heartbeats", function(req, res) res:json{ n = moonwire.shared:get("heartbeats") or 0 } end)

function OnMessage(ws, text)
  ws:send("echo: " .. text)
end

function OnBinary(ws, data)
  ws:send_binary(data)
end
