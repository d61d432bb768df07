-- The demo's handlers, one function per path; main.lua looks the path up in M.routes.

local M = { routes = {} }
local routes = M.routes

-- GET /hello, /hello?name=Ada: plain text (res:send's default content type).
routes["/hello"] = function(req, res)
  local name = req.query.name
  if type(name) == "string" and name ~= "" then
    res:send("Hello, " .. name .. ", from Lua!\n")
  else
    res:send("Hello from Lua!\n")
  end
end

-- GET /api/time: a table answered as JSON.
routes["/api/time"] = function(req, res)
  local now = os.time()
  res:json{ unix = now, utc = os.date("!%Y-%m-%dT%H:%M:%SZ", now) }
end

-- GET /sleep, /sleep?seconds=2: waits without blocking. The handler yields and the event
-- loop serves other requests meanwhile; it resumes when the time is up.
routes["/sleep"] = function(req, res)
  local seconds = tonumber(req.query.seconds) or 0.5
  seconds = math.max(0, math.min(seconds, 5))
  moonwire.sleep(seconds)
  res:send(("Slept %g s; other requests were served meanwhile.\n"):format(seconds))
end

-- GET /error: raises an error to show the 500 answer and OnException.
routes["/error"] = function()
  error("this handler fails on purpose")
end

local function url_decode(text)
  text = text:gsub("%+", " ")
  return (text:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

-- Form fields like req.query: a repeated name becomes a list.
local function parse_form(body)
  local form = {}
  for pair in body:gmatch("[^&]+") do
    local name, value = pair:match("^([^=]*)=?(.*)$")
    name, value = url_decode(name), url_decode(value)
    local previous = form[name]
    if previous == nil then
      form[name] = value
    elseif type(previous) == "table" then
      previous[#previous + 1] = value
    else
      form[name] = { previous, value }
    end
  end
  return form
end

-- POST /echo (any method works): the request back as JSON. Form and JSON bodies are
-- decoded too.
routes["/echo"] = function(req, res)
  local content_type = req:header("content-type") or ""
  local reply = {
    method = req.method,
    path = req.path,
    query = req.query,
    content_type = req:header("content-type"),
    body = req.body,
  }
  if content_type:find("application/x-www-form-urlencoded", 1, true) then
    reply.form = parse_form(req.body)
  elseif content_type:find("application/json", 1, true) then
    local value, err = moonwire.json.decode(req.body)
    reply.json, reply.json_error = value, err
  end
  res:json(reply)
end

return M
