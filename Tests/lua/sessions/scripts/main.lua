-- Sessions (docs/authentication.md#sessions), the app of sessions_test.lua.
moonwire.options{sessions = {enabled = true, timeout = 1800, same_site = "Strict"}}

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
  res:json{id = s.id, n = s.data.n}
end)
moonwire.get("/destroy", function(req, res) req.session:destroy(); res:send("bye") end)
moonwire.get("/regenerate", function(req, res)
  local old = req.session.id
  local new = req.session:regenerate()
  res:json{old = old, new = new, n = req.session.data.n}
end)
moonwire.get("/events", function(req, res)
  res:json{ended = moonwire.shared:get("ended") or {}, invalid = moonwire.shared:get("invalid") or {},
           started = moonwire.shared:get("started") or 0}
end)
