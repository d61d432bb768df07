-- Lua errors escaping handlers: 500, OnException(err, req), an error log line, and the
-- server keeps serving.
local dir = assert(os.getenv("MOONWIRE_TEST_DIR"), "MOONWIRE_TEST_DIR is not set")
local json = moonwire.json

local function record(name, line)
  local f = assert(io.open(dir .. "/" .. name, "a"))
  f:write(line, "\n")
  f:close()
end

function OnException(err, req)
  record("exceptions.log", json.encode({
    message = tostring(err.message),
    traceback = tostring(err.traceback),
    message_type = type(err.message),
    traceback_type = type(err.traceback),
    method = req and req.method or "?",
    path = req and req.path or "?",
  }))
end

function OnBeforeCommand(req, res)
  if req.path == "/before-boom" then
    error("before-kaboom-17")
  end
end

local function nested_failure()
  local marker = "the line before the failing one"
  error("kaboom-42")
end

function OnCommandGet(req, res)
  local p = req.path
  if p == "/boom" then
    nested_failure()
  elseif p == "/boom-after-send" then
    res:send("partial output that must not leak")
    error("after-send-kaboom-5")
  elseif p == "/boom-after-sleep" then
    moonwire.sleep(0.05)
    error("late-kaboom-9")
  elseif p == "/nil-index" then
    local t = nil
    return t.field
  elseif p == "/error-object" then
    error({ code = 7 })
  else
    res:send("fine " .. p)
  end
end
