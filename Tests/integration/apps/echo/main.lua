-- Every req field and every res method of docs/lua-api.md (test_lua_requests.py).
local json = moonwire.json

local function describe(req)
  -- Scripts may add their own fields to req.
  req.custom_field = "mine"
  return {
    method = req.method,
    path = req.path,
    uri = req.uri,
    query = req.query,
    headers = req.headers,
    header_mixed = req:header("x-MIXED-case"),
    header_upper = req:header("X-MIXED-CASE"),
    header_multi = req:header("X-Multi"),
    header_missing_is_nil = req:header("X-Not-Sent-At-All") == nil,
    body = req.body,
    body_type = type(req.body),
    body_length = #req.body,
    remote_ip = req.remote_ip,
    remote_port = req.remote_port,
    remote_port_type = math.type(req.remote_port),
    version = req.version,
    scheme = req.scheme,
    host = req.host,
    cookies = req.cookies,
    custom_field = req.custom_field,
  }
end

local routes = {}

routes["/res/default"] = function(req, res) res:send("plain text") end
routes["/res/append"] = function(req, res) res:send("a"); res:send("bc"); res:send(""); res:send("d") end
routes["/res/status"] = function(req, res)
  local before = res.status
  res.status = 201
  res:send(tostring(before) .. " " .. tostring(res.status) .. " " .. math.type(res.status))
end
routes["/res/status-only"] = function(req, res) res.status = 404 end
routes["/res/header-replace"] = function(req, res)
  res:header("X-Replaced", "first")
  res:header("x-replaced", "second")
  res:send("ok")
end
routes["/res/header-list"] = function(req, res)
  res:header("Set-Cookie", { "a=1; Path=/", "b=2; HttpOnly" })
  res:header("X-Multi", { "one", "two", "three" })
  res:send("ok")
end
routes["/res/header-remove"] = function(req, res)
  res:header("X-Gone", "present")
  res:header("X-Gone", nil)
  res:header("X-Kept", "kept")
  res:send("ok")
end
routes["/res/content-type"] = function(req, res)
  res:header("Content-Type", "text/html; charset=utf-8")
  res:send("<p>html</p>")
end
routes["/res/json"] = function(req, res)
  res:json({ name = "moonwire", list = { 1, 2, 3 }, nested = { ok = true, n = 1.5 }, text = "é" })
end
routes["/res/json-array"] = function(req, res) res:json({ "x", "y" }) end
routes["/res/redirect"] = function(req, res) res:redirect("/elsewhere?x=1") end
routes["/res/redirect-301"] = function(req, res) res:redirect("https://example.com/moved", 301) end
routes["/res/redirect-307"] = function(req, res) res:redirect("/temp", 307) end
routes["/res/binary"] = function(req, res)
  res:header("Content-Type", "application/octet-stream")
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  res:send(table.concat(bytes))
end
routes["/log"] = function(req, res)
  moonwire.log.info("LOG-TOKEN-INFO", 42, true)
  moonwire.log.warn("LOG-TOKEN-WARN")
  moonwire.log.error("LOG-TOKEN-ERROR")
  res:send("logged")
end
routes["/res/large"] = function(req, res) res:send(string.rep("0123456789", 10000)) end

local function handle(req, res)
  local route = routes[req.path]
  if route then
    route(req, res)
  elseif req.path == "/sleep" then
    moonwire.sleep(tonumber(req.query.s) or 1)
    res:send("slept")
  else
    res:json(describe(req))
  end
end

function OnCommandGet(req, res) handle(req, res) end
function OnCommandOther(req, res) handle(req, res) end
