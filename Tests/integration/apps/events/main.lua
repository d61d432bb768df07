-- Every lifecycle/connection event, recorded to files under $MOONWIRE_TEST_DIR (files, not
-- globals: each event loop has its own VM).
local dir = assert(os.getenv("MOONWIRE_TEST_DIR"), "MOONWIRE_TEST_DIR is not set")

local function record(name, line)
  local f = assert(io.open(dir .. "/" .. name, "a"))
  f:write(line, "\n")
  f:close()
end

local function exists(name)
  local f = io.open(dir .. "/" .. name, "r")
  if f then f:close() return true end
  return false
end

function OnStartup()
  record("lifecycle.log", "startup")
end

function OnShutdown()
  record("lifecycle.log", "shutdown")
end

function OnTCPConnect(conn)
  record("connects.log", string.format("%s %s %s %s", tostring(conn.remote_ip),
    tostring(conn.remote_port), tostring(conn.local_port), math.type(conn.remote_port)))
  if exists("refuse") then
    return false
  end
end

function OnBeforeCommand(req, res)
  record("before.log", req.method .. " " .. req.path)
  if req.path == "/before/answer" then
    res.status = 403
    res:header("X-Answered-By", "before")
    res:send("denied by OnBeforeCommand")
    return true
  elseif req.path == "/before/empty" then
    return true
  elseif req.path == "/before/status" then
    res.status = 202
    return true
  end
  res:header("X-Before", "seen")
end

function OnCommandGet(req, res)
  res:send("get " .. req.method .. " " .. req.path)
end

function OnCommandOther(req, res)
  res:send("other " .. req.method .. " " .. req.path)
end

function OnError(conn, message)
  record("errors.log", tostring(message):gsub("\n", " ") .. "")
end
