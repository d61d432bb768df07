-- moonwire.tcp against the servers test_lua_tcp.py starts: a line server (plain and TLS) and
-- redis-server. Each route answers JSON describing what the socket calls returned.
local json = moonwire.json
local resp = require "resp"

local function answer(res, value) res:json(value) end
local function port(req) return tonumber(req.query.port) end

-- Connect with the options in the query string, send `command` and a line end, and return
-- the socket (or nil and the error).
local function open(req)
  local options = { timeout = tonumber(req.query.timeout) }
  if req.query.tls then
    options.tls = true
    if req.query.ca or req.query.verify then
      options.tls = { ca = req.query.ca, verify = req.query.verify ~= "false" }
    end
  end
  options.server_name = req.query.server_name
  return moonwire.tcp.connect(req.query.host or "127.0.0.1", port(req), options)
end

moonwire.get("/connect", function(req, res)
  local sock, err = open(req)
  if sock then sock:close() end
  answer(res, { ok = sock ~= nil, err = err })
end)

-- One command line, then `reads` receives with the patterns given (comma-separated:
-- l, *l, a, *a, or counts); every result as {data=, err=, partial=}.
moonwire.get("/exchange", function(req, res)
  local sock, err = open(req)
  if not sock then return answer(res, { connect_error = err }) end
  if req.query.settimeout then sock:settimeout(tonumber(req.query.settimeout)) end
  if req.query.settimeouts then sock:settimeouts(nil, nil, tonumber(req.query.settimeouts)) end
  local sent, send_err = sock:send((req.query.command or "PING") .. "\r\n")
  local results = {}
  for pattern in (req.query.reads or "*l"):gmatch("[^,]+") do
    local data, rerr, partial = sock:receive(tonumber(pattern) or pattern)
    results[#results + 1] = { data = data, err = rerr, partial = partial }
  end
  sock:close()
  local after, after_err = sock:receive("*l")
  answer(res, { sent = sent, send_err = send_err, results = results, after_close = { data = after, err = after_err } })
end)

-- LuaSocket's other forms: send(data, i, j), receive with a prefix, `<close>` variables.
moonwire.get("/forms", function(req, res)
  local sock <close> = assert(open(req))
  local sent = sock:send("xxECHO sliced\r\nyy", 3, -3)
  local line = sock:receive("l", "got: ")
  answer(res, { sent = sent, line = line, text = tostring(sock):match("^tcp{client}") ~= nil })
end)

-- A socket kept between requests (in this VM) so that a second request can find it busy.
local held
moonwire.get("/hold", function(req, res)
  held = assert(open(req))
  held:send("SILENT\r\n")
  held:settimeout(tonumber(req.query.wait))
  local data, err = held:receive("*l")
  answer(res, { data = data, err = err })
end)

moonwire.get("/busy", function(req, res)
  local data, err = held:receive("*l")
  local closed = held:close()
  answer(res, { data = data, err = err, closed = closed })
end)

-- A socket the script drops without closing: the collector closes it.
moonwire.get("/drop", function(req, res)
  local sock = assert(open(req))
  sock:send("HELLO dropped\r\n")
  answer(res, { line = sock:receive("*l") })
end)

moonwire.get("/collect", function(req, res)
  collectgarbage("collect")
  collectgarbage("collect")
  answer(res, { collected = true })
end)

moonwire.get("/redis", function(req, res)
  local redis, err = resp.connect("127.0.0.1", port(req))
  if not redis then return answer(res, { connect_error = err }) end
  local key = "moonwire:" .. (req.query.key or "k")
  local big = string.rep("0123456789", 20000)   -- 200 kB, many reads
  local out = {}
  out.ping = redis:call("PING")
  out.set = redis:call("SET", key, "hello\r\nworld")
  out.get = redis:call("GET", key)
  out.missing = redis:call("GET", key .. ":none") == nil
  out.incr = { redis:call("INCR", key .. ":n"), redis:call("INCRBY", key .. ":n", 41) }
  local ok, message = redis:call("LPUSH", key)   -- wrong arity: an error reply
  out.error_reply = { ok = ok, message = message }
  redis:call("SET", key .. ":big", big)
  out.big_ok = redis:call("GET", key .. ":big") == big
  out.pipeline = redis:pipeline({ { "DEL", key .. ":l" }, { "RPUSH", key .. ":l", "a", "b", "c" },
    { "LRANGE", key .. ":l", 0, -1 }, { "GET", key .. ":none" } })
  redis:call("DEL", key, key .. ":n", key .. ":big", key .. ":l")
  redis:close()
  answer(res, out)
end)

moonwire.get("/meanwhile", function(req, res) res:send("ok") end)
