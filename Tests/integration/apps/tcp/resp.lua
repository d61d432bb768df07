-- A small Redis client in pure Lua over a LuaSocket-style socket (moonwire.tcp): what
-- test_lua_tcp.py uses to show that such libraries run on moonwire.tcp unchanged. RESP2:
-- commands go out as arrays of bulk strings; replies are read with "*l" and byte counts.
local resp = {}
resp.__index = resp

function resp.connect(host, port, options)
  local sock, err = moonwire.tcp.connect(host, port, options)
  if not sock then return nil, err end
  return setmetatable({ sock = sock }, resp)
end

local function encode(args)
  local parts = { "*" .. #args .. "\r\n" }
  for _, arg in ipairs(args) do
    arg = tostring(arg)
    parts[#parts + 1] = "$" .. #arg .. "\r\n"
    parts[#parts + 1] = arg
    parts[#parts + 1] = "\r\n"
  end
  return parts   -- an array: sock:send takes one, as OpenResty's does
end

function resp:read_reply()
  local line, err = self.sock:receive("*l")
  if not line then return nil, err end
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then return rest end
  if kind == "-" then return false, rest end
  if kind == ":" then return math.tointeger(tonumber(rest)) end
  if kind == "$" then
    local size = tonumber(rest)
    if size < 0 then return nil end
    local data, err2 = self.sock:receive(size + 2)
    if not data then return nil, err2 end
    return data:sub(1, size)
  end
  if kind == "*" then
    local count = tonumber(rest)
    if count < 0 then return nil end
    local list = {}
    for i = 1, count do
      local item, err2 = self:read_reply()
      if item == nil and err2 then return nil, err2 end
      list[i] = item
    end
    return list
  end
  return nil, "bad reply: " .. line
end

--- Sends one command and returns its reply (false, message for an error reply).
function resp:call(...)
  local sent, err = self.sock:send(encode({ ... }))
  if not sent then return nil, err end
  return self:read_reply()
end

--- Sends every command at once, then reads the replies in order.
function resp:pipeline(commands)
  local out = {}
  for _, command in ipairs(commands) do out[#out + 1] = encode(command) end
  local sent, err = self.sock:send(out)
  if not sent then return nil, err end
  local replies = {}
  for i = 1, #commands do
    local reply, err2 = self:read_reply()
    if reply == nil and err2 then return nil, err2 end
    replies[i] = reply == nil and moonwire.json.null or reply
  end
  return replies
end

function resp:close() return self.sock:close() end

return resp
