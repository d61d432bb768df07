-- moonwire.http driven by the tests (test_lua_http_client.py): POST /call with a JSON body
-- {fn = "request" | "get" | "post", args = [...]} makes that call and answers what it returned
-- as JSON; /raise does the same under pcall and answers the error raised.
local json = moonwire.json

local function outcome(response, err)
  if response == nil then return {err = err} end
  return {status = response.status, headers = response.headers, body = response.body}
end

local function call(spec)
  return moonwire.http[spec.fn](table.unpack(spec.args))
end

moonwire.post("/call", function(req, res)
  res:json(outcome(call(json.decode(req.body))))
end)

moonwire.post("/raise", function(req, res)
  local ok, err = pcall(call, json.decode(req.body))
  res:json{raised = not ok, message = tostring(err)}
end)

-- `n` requests one after the other to `url`; the upstream's connection number of each.
moonwire.get("/sequence", function(req, res)
  local seen = {}
  for i = 1, tonumber(req.query.n) do
    local response, err = moonwire.http.get(req.query.url)
    if not response then return res:json{err = err} end
    seen[i] = json.decode(response.body).connection
  end
  res:json{connections = seen}
end)

-- `n` requests at once with moonwire.spawn (where it exists): how many answered 200.
moonwire.get("/concurrent", function(req, res)
  local threads = {}
  for i = 1, tonumber(req.query.n) do
    threads[i] = moonwire.spawn(function()
      local response, err = moonwire.http.get(req.query.url .. "/slow/0.5/" .. i)
      return response and response.status or err
    end)
  end
  local ok, failures = 0, {}
  for i, thread in ipairs(threads) do
    local status = thread:wait()
    if status == 200 then ok = ok + 1 else failures[#failures + 1] = tostring(status) end
  end
  res:json{ok = ok, failures = failures}
end)

-- Answers at once: served while other handlers wait on slow upstreams.
moonwire.get("/fast", function(req, res) res:send("fast") end)

-- Where no call can wait: the error moonwire.http raises while the scripts load.
local ok, err = pcall(moonwire.http.get, "http://127.0.0.1:1/")
LOAD_ERROR = tostring(err)
moonwire.get("/load-error", function(req, res) res:send(LOAD_ERROR) end)

-- The answer's headers however a script reaches them (they are built on first look): through
-- moonwire.json.encode, pairs, moonwire.shared, directly, and after the script set its own.
moonwire.get("/answer-views", function(req, res)
  local function get() return assert(moonwire.http.get(req.query.url)) end
  local keys = {}
  for key, value in pairs(get()) do keys[#keys + 1] = key .. "=" .. type(value) end
  table.sort(keys)
  moonwire.shared:set("answer", get())
  local own = get()
  own.headers = "mine"
  local direct = get()
  local headers = direct.headers
  res:json{
    json = json.decode(json.encode(get())).headers, pairs = keys, shared = moonwire.shared:get("answer").headers,
    own = own.headers, direct = headers, same = headers == direct.headers, plain = getmetatable(direct) == nil,
    missing = direct.nothing == nil,
  }
end)
