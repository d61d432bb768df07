// The Lua half of `moonwire.testing`: requests built as text, the cookie jar, the assertions
// and their messages (file:line, expected, actual), and how tests are found and run. It runs
// in the test file's own state with the Swift bindings as its argument, and returns the runner
// (`load`, `run`) to LuaTestFile.
let luaTestPrelude = #"""
local api = ...
local t = { null = api.null }
local tests = {}
local jar = {}
local failure_mark = {}

local function location()
  for level = 2, 50 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and info.source ~= "=(moonwire.testing)" then
      return info.short_src .. ":" .. info.currentline
    end
  end
  return "?"
end

local function repr(value, depth, seen)
  depth, seen = depth or 0, seen or {}
  if type(value) == "string" then return (string.format("%q", value):gsub("\\\n", "\\n")) end
  if value == api.null then return "null" end
  if type(value) ~= "table" then return tostring(value) end
  if seen[value] then return "<cycle>" end
  if depth > 4 then return "{...}" end
  seen[value] = true
  local keys = {}
  for key in pairs(value) do keys[#keys + 1] = key end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) < type(b)
  end)
  local parts = {}
  for index, key in ipairs(keys) do
    if index > 20 then parts[#parts + 1] = "..."; break end
    local shown = (key == index) and "" or ((type(key) == "string" and key:match("^[%a_][%w_]*$")) and key .. " = " or "[" .. repr(key, depth + 1, seen) .. "] = ")
    parts[#parts + 1] = shown .. repr(value[key], depth + 1, seen)
  end
  seen[value] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end
t.repr = repr

local function fail(message, expected, actual, user)
  local text = location() .. ": " .. (user and (user .. ": ") or "") .. message
  if expected ~= nil then text = text .. "\n  expected: " .. expected .. "\n  actual:   " .. actual end
  error(setmetatable({ text = text }, failure_mark), 0)
end

local function deep_equal(a, b, seen)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for key, value in pairs(a) do
    if not deep_equal(value, b[key], seen) then return false end
  end
  for key in pairs(b) do
    if a[key] == nil then return false end
  end
  return true
end

function t.eq(actual, expected, message)
  if not deep_equal(actual, expected) then fail("values differ", repr(expected), repr(actual), message) end
end

function t.ok(value, message)
  if not value then fail("expected a true value", "not false or nil", repr(value), message) end
  return value
end

function t.match(text, pattern, message)
  if type(text) ~= "string" or not api.match(text, pattern) then
    fail("no match", "text matching /" .. pattern .. "/", repr(text), message)
  end
end

function t.raises(fn, pattern, message)
  local ok, err = pcall(fn)
  if ok then fail("no error raised", pattern and ("an error matching /" .. pattern .. "/") or "an error", "no error", message) end
  if getmetatable(err) == failure_mark then err = err.text end
  if pattern and not api.match(tostring(err), pattern) then
    fail("the error does not match", "an error matching /" .. pattern .. "/", repr(tostring(err)), message)
  end
  return err
end

function t.fail(message) fail(message or "failed") end

function t.case(name, fn)
  local info = debug.getinfo(fn, "S")
  tests[#tests + 1] = { name = name, fn = fn, line = info.linedefined }
end

t.json = { encode = api.json_encode, decode = api.json_decode, null = api.null }

function t.advance(seconds) api.advance(seconds) end

local function remember_cookies(cookies)
  for _, cookie in ipairs(cookies) do
    local name, value = cookie:match("^%s*([^=;%s]+)=([^;]*)")
    if name then
      local lower = cookie:lower()
      if value == "" or lower:find("max%-age=0") or lower:find("max%-age=%-") then jar[name] = nil else jar[name] = value end
    end
  end
end

local function header_list(headers, host)
  local list = { "Host", host or "localhost" }
  local has_cookie = false
  for name, value in pairs(headers or {}) do
    if name:lower() == "cookie" then has_cookie = true end
    list[#list + 1] = name
    list[#list + 1] = tostring(value)
  end
  if not has_cookie and next(jar) then
    local cookies = {}
    for name, value in pairs(jar) do cookies[#cookies + 1] = name .. "=" .. value end
    table.sort(cookies)
    list[#list + 1] = "Cookie"
    list[#list + 1] = table.concat(cookies, "; ")
  end
  return list
end

local function head(method, path, list)
  local lines = { method .. " " .. path .. " HTTP/1.1" }
  for index = 1, #list, 2 do lines[#lines + 1] = list[index] .. ": " .. list[index + 1] end
  return table.concat(lines, "\r\n") .. "\r\n"
end

function t.request(options)
  if type(options) ~= "table" then error("t.request: expected a table {method=, path=, headers=, body=, host=, http2=}", 2) end
  local method = (options.method or "GET"):upper()
  local path = options.path or "/"
  local body = options.body
  local headers = options.headers or {}
  if type(body) == "table" then
    body = api.json_encode(body)
    local typed = false
    for name in pairs(headers) do if name:lower() == "content-type" then typed = true end end
    if not typed then
      local copy = { ["Content-Type"] = "application/json" }
      for name, value in pairs(headers) do copy[name] = value end
      headers = copy
    end
  end
  local list = header_list(headers, options.host)
  if body ~= nil or method == "POST" or method == "PUT" or method == "PATCH" then
    body = tostring(body or "")
    list[#list + 1] = "Content-Length"
    list[#list + 1] = tostring(#body)
  end
  local status, response_headers, response_body, cookies
  if options.http2 then
    status, response_headers, response_body, cookies = api.exchange2(method, path, list, body or "")
  else
    status, response_headers, response_body, cookies = api.exchange(head(method, path, list) .. "\r\n" .. (body or ""), method == "HEAD")
  end
  remember_cookies(cookies)
  local response = { status = status, headers = response_headers, body = response_body }
  local content_type = response_headers["content-type"] or ""
  if content_type:find("json", 1, true) then response.json = api.json_decode(response_body) end
  return response
end

function t.get(path, options)
  options = options or {}
  return t.request { method = "GET", path = path, headers = options.headers, host = options.host, http2 = options.http2 }
end

function t.post(path, body, options)
  options = options or {}
  return t.request { method = "POST", path = path, body = body, headers = options.headers, host = options.host, http2 = options.http2 }
end

local WebSocket = {}
WebSocket.__index = WebSocket

function WebSocket:send(text) api.ws_send(self.id, tostring(text)) end

function WebSocket:send_binary(data) api.ws_send_binary(self.id, data) end

function WebSocket:receive(timeout)
  local kind, data, reason = api.ws_receive(self.id, timeout or 5)
  if kind == "text" or kind == "binary" then return data end
  if kind == "closed" then return nil, "closed", data, reason end
  return nil, "timeout"
end

function WebSocket:close() api.ws_close(self.id) end

function t.websocket(path, options)
  options = options or {}
  local id = api.ws_open(head("GET", path, header_list(options.headers, options.host)), options.timeout or 5)
  return setmetatable({ id = id }, WebSocket)
end

package.loaded["moonwire.testing"] = t

local runner = {}

function runner.load(chunk)
  chunk()
  local found = {}
  for name, value in pairs(_G) do
    if type(name) == "string" and name:match("^test_") and type(value) == "function" then
      found[#found + 1] = { name = name, fn = value, line = debug.getinfo(value, "S").linedefined }
    end
  end
  table.sort(found, function(a, b) return a.line < b.line end)
  for _, case in ipairs(tests) do found[#found + 1] = case end
  table.sort(found, function(a, b) return a.line < b.line end)
  tests = found
  return tests
end

function runner.run(index)
  jar = {}
  local ok, err = xpcall(tests[index].fn, function(err)
    if getmetatable(err) == failure_mark then return err.text end
    -- The frames below the test (xpcall and this runner) are the harness's, not the test's.
    local trace = debug.traceback(tostring(err), 2)
    local below = trace:find("\n%s*%[C%]: in function 'xpcall'")
    return below and trace:sub(1, below - 1) or trace
  end, t)
  if ok then return nil end
  return err
end

return runner
"""#
